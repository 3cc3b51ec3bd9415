// The qcow2 format: create, open (v2 and v3), check and repair.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "storage/block_device.h"
#include "storage/image_file.h"
#include "storage/qcow2_header.h"
#include "storage/qcow2_snapshot_table.h"

namespace vmmd::storage {

struct Qcow2CreateOptions {
  uint64_t size = 0;
  uint32_t clusterSize = 65536;
  uint32_t version = 3;           // 2 = compat=0.10, 3 = compat=1.1
  uint32_t refcountBits = 16;
  std::string backingFile;        // stored as given; resolved against the image's folder
  std::string backingFormat;      // "raw" / "qcow2" / empty
};
Result<void> createQcow2(const std::string& path, const Qcow2CreateOptions& options);

enum class RepairMode { None, Leaks, All };

struct CheckResult {
  uint64_t corruptions = 0;
  uint64_t leaks = 0;
  uint64_t corruptionsFixed = 0;
  uint64_t leaksFixed = 0;
  uint64_t totalClusters = 0;       // guest clusters
  uint64_t allocatedClusters = 0;
  uint64_t fragmentedClusters = 0;
  uint64_t compressedClusters = 0;
  uint64_t imageEndOffset = 0;
  std::vector<std::string> messages;  // one per problem, in qemu-img's words
};

// A new internal snapshot. The date defaults to now; the VM clock and state size stay 0 for a
// disk-only snapshot (vmm keeps the memory state in a file beside the image, not in it).
struct SnapshotRequest {
  std::string name;
  std::string id;  // empty: the next free number, as QEMU picks
  uint64_t vmClockNsec = 0;
  uint64_t vmStateSize = 0;
  int64_t icount = -1;
  uint32_t dateSec = 0;  // 0: now
  uint32_t dateNsec = 0;
};

// The first snapshot whose id is `id` (when not empty) and whose name is `name` (when not
// empty): QEMU's find_snapshot_by_id_and_name. -1 when none.
int findSnapshot(const std::vector<qcow2::SnapshotEntry>& list, const std::string& id, const std::string& name);
// qemu-img's TAG: an id first, else a name.
int findSnapshotByIdOrName(const std::vector<qcow2::SnapshotEntry>& list, const std::string& tag);

class Qcow2Device : public BlockDevice {
 public:
  virtual const qcow2::Header& header() const = 0;
  virtual uint32_t clusterSize() const = 0;
  // Compares every refcount with the references the tables make; repairs as asked (needs a
  // writable image).
  virtual Result<CheckResult> check(RepairMode repair) = 0;
  // Writes one whole guest cluster deflate-compressed (as convert -c); data.size() must be the
  // cluster size (or the rest of the disk for the last cluster). Falls back to a normal write
  // when the data does not compress.
  virtual Result<void> writeCompressed(uint64_t offset, std::span<const uint8_t> data) = 0;

  // Internal snapshots (the qcow2 snapshot table). Each operation quiesces the image's I/O (it
  // waits for requests in flight and holds new ones until it is done) and is crash safe: a kill
  // or power loss at any point leaves the old or the new table, and at worst leaked clusters.
  virtual std::vector<qcow2::SnapshotEntry> snapshots() const = 0;
  // Copies the active L1 table, raises the refcount of every cluster it reaches, so that later
  // guest writes copy on write. Error (EEXIST) when the id is taken.
  virtual Result<qcow2::SnapshotEntry> createSnapshot(const SnapshotRequest& request) = 0;
  // Makes the snapshot's disk the active one (the disk's size too); what the active disk held
  // since is freed. The snapshot stays.
  virtual Result<void> applySnapshot(const std::string& id) = 0;
  // Removes the first snapshot matching id and name (either may be empty, not both) and frees
  // what only it referenced; returns what it was.
  virtual Result<qcow2::SnapshotEntry> deleteSnapshot(const std::string& id, const std::string& name) = 0;
};

// Opens a name from the header's backing file field with the header's backing format (never
// empty: an image without one is refused, not probed).
using BackingOpener =
    std::function<Result<std::unique_ptr<BlockDevice>>(const std::string& name, const std::string& format)>;
Result<std::unique_ptr<BlockDevice>> openQcow2(std::unique_ptr<ImageFile> file, const OpenOptions& options,
                                               const BackingOpener& openBacking);

}  // namespace vmmd::storage
