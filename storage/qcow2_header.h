// The qcow2 header (docs/interop/qcow2.txt in QEMU): parsing with every check a hostile image
// needs, and serialization for create.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace vmmd::storage::qcow2 {

constexpr uint32_t kMagic = 0x514649fb;  // "QFI\xfb"
constexpr uint32_t kMinClusterBits = 9;
constexpr uint32_t kMaxClusterBits = 21;
constexpr uint64_t kMaxL1Bytes = 32u << 20;        // QEMU's QCOW_MAX_L1_SIZE
constexpr uint64_t kMaxRefTableBytes = 8u << 20;   // QEMU's QCOW_MAX_REFTABLE_SIZE
constexpr uint32_t kMaxBackingNameLength = 1023;
constexpr uint64_t kHeaderReadBytes = 2u << 20;  // parseHeader reads min(file size, this)
constexpr uint64_t kMaxVirtualSize = 1ull << 55;   // well past anything real; keeps arithmetic safe

// Field offsets, for in-place updates of single fields.
constexpr uint64_t kOffSize = 24;
constexpr uint64_t kOffL1Size = 36;         // l1_size u32, then l1_table_offset u64
constexpr uint64_t kOffRefTable = 48;       // refcount_table_offset u64, then clusters u32
constexpr uint64_t kOffIncompatible = 72;
constexpr uint64_t kOffAutoclear = 88;
constexpr uint32_t kV2HeaderLength = 72;
constexpr uint32_t kV3HeaderLength = 112;   // with compression_type, padded to 8 (as QEMU writes)

// Incompatible feature bits.
constexpr uint64_t kIncompatDirty = 1ull << 0;
constexpr uint64_t kIncompatCorrupt = 1ull << 1;
constexpr uint64_t kIncompatDataFile = 1ull << 2;
constexpr uint64_t kIncompatCompression = 1ull << 3;
constexpr uint64_t kIncompatExtendedL2 = 1ull << 4;
constexpr uint64_t kCompatLazyRefcounts = 1ull << 0;

// Header extensions.
constexpr uint32_t kExtEnd = 0;
constexpr uint32_t kExtBackingFormat = 0xe2792aca;
constexpr uint32_t kExtFeatureTable = 0x6803f857;
constexpr uint32_t kExtBitmaps = 0x23852875;
constexpr uint32_t kExtEncryption = 0x0537be77;
constexpr uint32_t kExtDataFile = 0x44415441;

// Table entries.
constexpr uint64_t kOflagCopied = 1ull << 63;
constexpr uint64_t kOflagCompressed = 1ull << 62;
constexpr uint64_t kOflagZero = 1ull << 0;
constexpr uint64_t kOffsetMask = 0x00fffffffffffe00ull;
constexpr uint64_t kRefTableOffsetMask = 0xfffffffffffffe00ull;

struct Header {
  uint32_t version = 3;
  uint64_t backingFileOffset = 0;
  uint32_t backingFileSize = 0;
  uint32_t clusterBits = 16;
  uint64_t size = 0;
  uint32_t cryptMethod = 0;
  uint32_t l1Size = 0;
  uint64_t l1TableOffset = 0;
  uint64_t refcountTableOffset = 0;
  uint32_t refcountTableClusters = 0;
  uint32_t nbSnapshots = 0;
  uint64_t snapshotsOffset = 0;
  uint64_t incompatible = 0;
  uint64_t compatible = 0;
  uint64_t autoclear = 0;
  uint32_t refcountOrder = 4;
  uint32_t headerLength = kV3HeaderLength;
  uint8_t compressionType = 0;
  std::string backingFile;
  std::string backingFormat;  // from the backing format extension; empty when absent
  bool hasBitmaps = false;

  uint64_t clusterSize() const { return 1ull << clusterBits; }
};

// Parses and validates the header in the first cluster of an image (`head` holds the first
// min(file size, kHeaderReadBytes) bytes). fileSize bounds every table. path only names the file in errors.
Result<Header> parseHeader(std::span<const uint8_t> head, uint64_t fileSize, const std::string& path);

// The bytes of cluster 0 for a new image: header, backing format and feature name extensions,
// backing file name. Error when they do not fit in one cluster.
Result<std::vector<uint8_t>> serializeHeader(const Header& h);

// L1 entries needed for a virtual size.
uint64_t l1EntriesFor(uint64_t size, uint32_t clusterBits);

}  // namespace vmmd::storage::qcow2
