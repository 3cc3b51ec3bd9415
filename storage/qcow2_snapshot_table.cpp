#include "storage/qcow2_snapshot_table.h"

#include "storage/endian.h"

namespace vmmd::storage::qcow2 {
namespace {

constexpr uint64_t kFixedBytes = 40;

uint64_t entryBytes(const SnapshotEntry& e) {
  uint64_t n = kFixedBytes + kSnapshotExtraData + e.unknownExtra.size() + e.id.size() + e.name.size();
  return (n + 7) & ~7ull;
}

}  // namespace

uint64_t snapshotTableBytes(const std::vector<SnapshotEntry>& entries) {
  uint64_t total = 0;
  for (const auto& e : entries) total += entryBytes(e);
  return total;
}

Result<std::vector<SnapshotEntry>> parseSnapshotTable(std::span<const uint8_t> table, uint32_t count, const Header& h,
                                                      uint64_t fileSize, const std::string& path, uint64_t* tableBytes) {
  auto bad = [&](uint32_t i, const std::string& what) {
    return Error(path + ": invalid qcow2 image: snapshot " + std::to_string(i) + ": " + what);
  };
  const uint64_t cs = h.clusterSize();
  std::vector<SnapshotEntry> out;
  out.reserve(count);
  uint64_t off = 0;
  for (uint32_t i = 0; i < count; ++i) {
    if (table.size() - off < kFixedBytes) return bad(i, "entry lies past the end of the snapshot table");
    const uint8_t* p = table.data() + off;
    SnapshotEntry e;
    e.l1Offset = loadBe64(p);
    e.l1Size = loadBe32(p + 8);
    const uint16_t idLen = loadBe16(p + 12), nameLen = loadBe16(p + 14);
    e.dateSec = loadBe32(p + 16);
    e.dateNsec = loadBe32(p + 20);
    e.vmClockNsec = loadBe64(p + 24);
    e.vmStateSize = loadBe32(p + 32);
    const uint32_t extraLen = loadBe32(p + 36);
    off += kFixedBytes;
    if (extraLen > kMaxSnapshotExtraData) return bad(i, "extra data of " + std::to_string(extraLen) + " bytes (at most 1024)");
    if (table.size() - off < uint64_t(extraLen) + idLen + nameLen) return bad(i, "entry lies past the end of the snapshot table");
    const uint8_t* x = table.data() + off;
    e.diskSize = h.size;
    if (extraLen >= 8) e.vmStateSize = loadBe64(x);
    if (extraLen >= 16) e.diskSize = loadBe64(x + 8);
    if (extraLen >= 24) e.icount = static_cast<int64_t>(loadBe64(x + 16));
    if (extraLen > kSnapshotExtraData) e.unknownExtra.assign(x + kSnapshotExtraData, x + extraLen);
    off += extraLen;
    e.id.assign(reinterpret_cast<const char*>(table.data() + off), idLen);
    off += idLen;
    e.name.assign(reinterpret_cast<const char*>(table.data() + off), nameLen);
    off += nameLen;
    off = std::min<uint64_t>((off + 7) & ~7ull, table.size());
    if (e.l1Offset & (cs - 1)) return bad(i, "L1 table offset not cluster aligned");
    if (uint64_t(e.l1Size) * 8 > kMaxL1Bytes) return bad(i, "L1 table too large (" + std::to_string(e.l1Size) + " entries)");
    if (e.l1Size && e.l1Offset == 0) return bad(i, "L1 table overlaps the header");
    if (e.l1Offset > fileSize || uint64_t(e.l1Size) * 8 > fileSize - e.l1Offset) return bad(i, "L1 table lies outside the file");
    if (e.diskSize > kMaxVirtualSize) return bad(i, "virtual size " + std::to_string(e.diskSize) + " too large");
    if (l1EntriesFor(e.diskSize, h.clusterBits) * 8 > kMaxL1Bytes) return bad(i, "virtual size too large for an L1 table");
    out.push_back(std::move(e));
  }
  *tableBytes = off;
  return out;
}

std::vector<uint8_t> serializeSnapshotTable(const std::vector<SnapshotEntry>& entries) {
  std::vector<uint8_t> out(snapshotTableBytes(entries), 0);
  uint64_t off = 0;
  for (const auto& e : entries) {
    uint8_t* p = out.data() + off;
    storeBe64(p, e.l1Offset);
    storeBe32(p + 8, e.l1Size);
    storeBe16(p + 12, static_cast<uint16_t>(e.id.size()));
    storeBe16(p + 14, static_cast<uint16_t>(e.name.size()));
    storeBe32(p + 16, e.dateSec);
    storeBe32(p + 20, e.dateNsec);
    storeBe64(p + 24, e.vmClockNsec);
    // The 32-bit field is superseded by the 64-bit one in the extra data (readers use that).
    storeBe32(p + 32, e.vmStateSize > UINT32_MAX ? 0 : static_cast<uint32_t>(e.vmStateSize));
    storeBe32(p + 36, static_cast<uint32_t>(kSnapshotExtraData + e.unknownExtra.size()));
    uint8_t* x = p + kFixedBytes;
    storeBe64(x, e.vmStateSize);
    storeBe64(x + 8, e.diskSize);
    storeBe64(x + 16, static_cast<uint64_t>(e.icount));
    std::copy(e.unknownExtra.begin(), e.unknownExtra.end(), x + kSnapshotExtraData);
    uint8_t* s = x + kSnapshotExtraData + e.unknownExtra.size();
    std::copy(e.id.begin(), e.id.end(), s);
    std::copy(e.name.begin(), e.name.end(), s + e.id.size());
    off += entryBytes(e);
  }
  return out;
}

}  // namespace vmmd::storage::qcow2
