// Write ordering for power loss. Metadata is written through (pwrite), so after a process is
// killed the page cache still holds every write in order; after a power loss only what an
// fdatasync made durable is sure, and the rest may have reached the disk in any subset. The qcow2
// spec's invariants then need barriers on the dependency edges QEMU's qcow2 caches keep:
//   refcount raised, new table written  -> barrier -> L2/L1/refcount-table entry or header pointer
//   copy-on-write of old data written   -> barrier -> the L2 entry that publishes it
//   L2/L1 entry cleared, pointer switched -> barrier -> refcount lowered (the cluster may be reused)
// Allocation writes are counted, so one fdatasync covers all that came before it: the cluster
// pool (refcounts raised per batch) costs one barrier per batch, and writes into allocated
// clusters none at all.
#include "storage/qcow2_image.h"

namespace vmmd::storage::qcow2 {

Result<void> Image::syncFile() {
  const uint64_t covered = allocGen_.load();  // every allocation write counted so far has completed
  if (auto r = file_->sync(); !r) return r;
  uint64_t durable = durableGen_.load();
  while (durable < covered && !durableGen_.compare_exchange_weak(durable, covered)) {
  }
  return {};
}

Result<void> Image::barrier() {
  if (!writeBarriers_) return {};
  return syncFile();
}

Result<void> Image::syncAllocations(uint64_t generation) {
  if (durableGen_.load() >= generation) return {};
  return barrier();
}

}  // namespace vmmd::storage::qcow2
