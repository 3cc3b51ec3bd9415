// The qcow2 snapshot table (docs/interop/qcow2.txt, "Snapshots"): parsing with the checks a
// hostile image needs, and serialization. Entries are variable length: a 40-byte fixed part,
// extra data (QEMU 7.2 writes 24 bytes: 64-bit VM state size, virtual disk size, icount), the
// unique ID and the name, padded to 8 bytes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "storage/qcow2_header.h"

namespace vmmd::storage::qcow2 {

constexpr uint32_t kMaxSnapshots = 65536;              // QEMU's QCOW_MAX_SNAPSHOTS
constexpr uint64_t kMaxSnapshotTableBytes = 64u << 20;  // QEMU's QCOW_MAX_SNAPSHOTS_SIZE
constexpr uint32_t kMaxSnapshotExtraData = 1024;       // QEMU's QCOW_MAX_SNAPSHOT_EXTRA_DATA
constexpr uint32_t kSnapshotExtraData = 24;            // what we write (as QEMU 7.2)

struct SnapshotEntry {
  uint64_t l1Offset = 0;
  uint32_t l1Size = 0;
  std::string id;
  std::string name;
  uint32_t dateSec = 0;
  uint32_t dateNsec = 0;
  uint64_t vmClockNsec = 0;
  uint64_t vmStateSize = 0;
  uint64_t diskSize = 0;
  int64_t icount = -1;  // -1: no record/replay instruction count
  // Extra data past the fields we know, kept as read (the spec: unknown fields are ignored, and
  // QEMU writes them back).
  std::vector<uint8_t> unknownExtra;
};

// Bytes of the table holding these entries.
uint64_t snapshotTableBytes(const std::vector<SnapshotEntry>& entries);

// Parses `count` entries from `table` (the bytes at snapshots_offset, at most
// kMaxSnapshotTableBytes). Each entry's L1 table must be cluster aligned, no larger than QEMU's
// L1 limit and inside the file; extra data at most 1 KiB; id and name inside the table. A v3
// image's entries lacking the disk size field get the image's size (as QEMU does).
// *tableBytes: the bytes the entries took (entries written by others may carry less extra data
// than ours).
Result<std::vector<SnapshotEntry>> parseSnapshotTable(std::span<const uint8_t> table, uint32_t count, const Header& h,
                                                      uint64_t fileSize, const std::string& path, uint64_t* tableBytes);

// The table's bytes for `entries` (not padded to a cluster).
std::vector<uint8_t> serializeSnapshotTable(const std::vector<SnapshotEntry>& entries);

}  // namespace vmmd::storage::qcow2
