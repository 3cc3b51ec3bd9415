#include "storage/qcow2_header.h"

#include <cstring>

#include "storage/endian.h"

namespace vmmd::storage::qcow2 {

uint64_t l1EntriesFor(uint64_t size, uint32_t clusterBits) {
  uint64_t perL2 = 1ull << (clusterBits + clusterBits - 3);  // bytes covered by one L2 table
  return (size + perL2 - 1) / perL2;
}

Result<Header> parseHeader(std::span<const uint8_t> head, uint64_t fileSize, const std::string& path) {
  auto bad = [&](const std::string& what) { return Error(path + ": invalid qcow2 image: " + what); };
  if (head.size() < kV2HeaderLength) return bad("file too short for a qcow2 header");
  const uint8_t* p = head.data();
  if (loadBe32(p) != kMagic) return bad("bad magic");
  Header h;
  h.version = loadBe32(p + 4);
  if (h.version != 2 && h.version != 3) return bad("unsupported version " + std::to_string(h.version));
  h.backingFileOffset = loadBe64(p + 8);
  h.backingFileSize = loadBe32(p + 16);
  h.clusterBits = loadBe32(p + 20);
  h.size = loadBe64(p + 24);
  h.cryptMethod = loadBe32(p + 32);
  h.l1Size = loadBe32(p + 36);
  h.l1TableOffset = loadBe64(p + 40);
  h.refcountTableOffset = loadBe64(p + 48);
  h.refcountTableClusters = loadBe32(p + 56);
  h.nbSnapshots = loadBe32(p + 60);
  h.snapshotsOffset = loadBe64(p + 64);
  if (h.version == 2) {
    h.headerLength = kV2HeaderLength;
    h.refcountOrder = 4;
  } else {
    if (head.size() < 104) return bad("file too short for a version 3 header");
    h.incompatible = loadBe64(p + 72);
    h.compatible = loadBe64(p + 80);
    h.autoclear = loadBe64(p + 88);
    h.refcountOrder = loadBe32(p + 96);
    h.headerLength = loadBe32(p + 100);
    if (h.headerLength < 104 || h.headerLength % 8 != 0) {
      return bad("header length " + std::to_string(h.headerLength) + " invalid");
    }
    if (h.headerLength > 104) h.compressionType = head.size() > 104 ? p[104] : 0;
  }
  if (h.clusterBits < kMinClusterBits || h.clusterBits > kMaxClusterBits) {
    return bad("cluster_bits " + std::to_string(h.clusterBits) + " out of range 9..21");
  }
  const uint64_t cs = h.clusterSize();
  if (h.headerLength > cs) return bad("header length larger than a cluster");
  if (h.headerLength > head.size()) return bad("file too short for its header");
  if (h.refcountOrder > 6) return bad("refcount_order " + std::to_string(h.refcountOrder) + " out of range 0..6");
  if (h.cryptMethod != 0) return bad("encrypted images are not supported");
  if (h.size > kMaxVirtualSize) return bad("virtual size " + std::to_string(h.size) + " too large");
  if (h.incompatible & kIncompatDataFile) return bad("external data files are not supported");
  if (h.incompatible & kIncompatExtendedL2) return bad("extended L2 entries are not supported");
  if ((h.incompatible & kIncompatCompression) || h.compressionType != 0) {
    if (h.compressionType != 0) return bad("compression type " + std::to_string(h.compressionType) + " (zstd) is not supported");
  }
  uint64_t unknown = h.incompatible & ~(kIncompatDirty | kIncompatCorrupt | kIncompatCompression);
  if (unknown) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(unknown));
    return bad(std::string("unsupported incompatible features ") + buf);
  }
  auto aligned = [&](uint64_t off) { return (off & (cs - 1)) == 0; };
  // L1 table.
  if (uint64_t(h.l1Size) * 8 > kMaxL1Bytes) return bad("L1 table too large (" + std::to_string(h.l1Size) + " entries)");
  if (l1EntriesFor(h.size, h.clusterBits) > h.l1Size) return bad("L1 table too small for the virtual size");
  if (h.l1Size > 0) {
    if (!aligned(h.l1TableOffset)) return bad("L1 table offset not cluster aligned");
    if (h.l1TableOffset == 0) return bad("L1 table overlaps the header");
    if (h.l1TableOffset > fileSize || uint64_t(h.l1Size) * 8 > fileSize - h.l1TableOffset) {
      return bad("L1 table lies outside the file");
    }
  }
  // Refcount table.
  if (h.refcountTableClusters == 0) return bad("no refcount table");
  if (uint64_t(h.refcountTableClusters) * cs > kMaxRefTableBytes) return bad("refcount table too large");
  if (!aligned(h.refcountTableOffset)) return bad("refcount table offset not cluster aligned");
  if (h.refcountTableOffset == 0) return bad("refcount table overlaps the header");
  if (h.refcountTableOffset > fileSize || uint64_t(h.refcountTableClusters) * cs > fileSize - h.refcountTableOffset) {
    return bad("refcount table lies outside the file");
  }
  if (h.nbSnapshots > 65536) return bad("too many snapshots");
  if (h.nbSnapshots && !aligned(h.snapshotsOffset)) return bad("snapshot table offset not cluster aligned");
  // Backing file name.
  if (h.backingFileOffset) {
    if (h.backingFileSize > kMaxBackingNameLength) return bad("backing file name too long");
    if (h.backingFileOffset > cs || h.backingFileSize > cs - h.backingFileOffset ||
        h.backingFileOffset + h.backingFileSize > head.size()) {
      return bad("backing file name lies outside the first cluster");
    }
    h.backingFile.assign(reinterpret_cast<const char*>(p + h.backingFileOffset), h.backingFileSize);
    if (h.backingFile.find('\0') != std::string::npos) return bad("backing file name contains a NUL byte");
  }
  // Header extensions (between the header and the backing file name, or the cluster end).
  uint64_t end = h.backingFileOffset ? h.backingFileOffset : std::min<uint64_t>(cs, head.size());
  uint64_t off = h.headerLength;
  while (off + 8 <= end) {
    uint32_t type = loadBe32(p + off);
    uint32_t len = loadBe32(p + off + 4);
    off += 8;
    if (type == kExtEnd) break;
    if (len > end - off) return bad("header extension overflows the first cluster");
    if (type == kExtBackingFormat) {
      if (len > 16) return bad("backing format name too long");
      h.backingFormat.assign(reinterpret_cast<const char*>(p + off), len);
      h.backingFormat.resize(std::strlen(h.backingFormat.c_str()));
    } else if (type == kExtBitmaps) {
      h.hasBitmaps = true;
    } else if (type == kExtEncryption) {
      return bad("encrypted images are not supported");
    } else if (type == kExtDataFile) {
      return bad("external data files are not supported");
    }
    off += (uint64_t(len) + 7) & ~7ull;
  }
  return h;
}

Result<std::vector<uint8_t>> serializeHeader(const Header& h) {
  const uint64_t cs = h.clusterSize();
  std::vector<uint8_t> out(cs, 0);
  uint8_t* p = out.data();
  storeBe32(p, kMagic);
  storeBe32(p + 4, h.version);
  storeBe32(p + 20, h.clusterBits);
  storeBe64(p + 24, h.size);
  storeBe32(p + 36, h.l1Size);
  storeBe64(p + 40, h.l1TableOffset);
  storeBe64(p + 48, h.refcountTableOffset);
  storeBe32(p + 56, h.refcountTableClusters);
  uint64_t off = kV2HeaderLength;
  if (h.version == 3) {
    storeBe64(p + 72, h.incompatible);
    storeBe64(p + 80, h.compatible);
    storeBe64(p + 88, h.autoclear);
    storeBe32(p + 96, h.refcountOrder);
    storeBe32(p + 100, kV3HeaderLength);
    off = kV3HeaderLength;
  }
  auto ext = [&](uint32_t type, const void* data, uint32_t len) -> bool {
    uint64_t padded = (uint64_t(len) + 7) & ~7ull;
    if (off + 8 + padded + 8 > cs) return false;
    storeBe32(p + off, type);
    storeBe32(p + off + 4, len);
    std::memcpy(p + off + 8, data, len);
    off += 8 + padded;
    return true;
  };
  if (!h.backingFormat.empty() && !ext(kExtBackingFormat, h.backingFormat.data(), uint32_t(h.backingFormat.size()))) {
    return Error("qcow2 header does not fit in one cluster");
  }
  if (h.version == 3) {
    struct Feature { uint8_t type, bit; const char* name; };
    static const Feature features[] = {
        {0, 0, "dirty bit"}, {0, 1, "corrupt bit"}, {0, 2, "external data file"},
        {0, 3, "compression type"}, {0, 4, "extended L2 entries"}, {1, 0, "lazy refcounts"},
        {2, 0, "bitmaps"}, {2, 1, "raw external data"}};
    std::vector<uint8_t> table(sizeof features / sizeof features[0] * 48, 0);
    for (size_t i = 0; i < sizeof features / sizeof features[0]; ++i) {
      table[i * 48] = features[i].type;
      table[i * 48 + 1] = features[i].bit;
      std::memcpy(&table[i * 48 + 2], features[i].name, std::strlen(features[i].name));
    }
    // Optional: small clusters (512 bytes) have no room for it next to a backing file name.
    uint64_t need = off + 8 + table.size() + 8 + h.backingFile.size();
    if (need <= cs) ext(kExtFeatureTable, table.data(), uint32_t(table.size()));
  }
  off += 8;  // end-of-extensions marker (zeroes)
  if (!h.backingFile.empty()) {
    if (h.backingFile.size() > kMaxBackingNameLength) return Error("backing file name too long (over 1023 bytes)");
    if (off + h.backingFile.size() > cs) return Error("backing file name does not fit in the first cluster");
    storeBe64(p + 8, off);
    storeBe32(p + 16, uint32_t(h.backingFile.size()));
    std::memcpy(p + off, h.backingFile.data(), h.backingFile.size());
  }
  return out;
}

}  // namespace vmmd::storage::qcow2
