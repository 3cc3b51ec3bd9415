// Machine::releaseDisks / claimDisks: the disk images' hand-over between the two ends of a
// migration (see machine.h).
#include <fcntl.h>

#include "storage/image_lock.h"
#include "vmm/machine/machine.h"

namespace vmmd {
namespace {

// Opens `disk`'s image again (locked or not) and gives it to its device and to `disk`.
Status reopen(DiskInfo& disk, bool lock) {
  storage::OpenOptions options = disk.open;
  options.lock = lock;
  auto fresh = storage::openImage(disk.path, options);
  if (!fresh) return fresh.error().withContext("drive " + disk.device);
  std::shared_ptr<storage::BlockDevice> image = std::move(*fresh);
  if (disk.blk) {
    if (auto st = disk.blk->replaceDisk(image); !st) return st.error().withContext("drive " + disk.device);
  }
  disk.image = std::move(image);
  disk.open.lock = lock;
  return {};
}

}  // namespace

Status Machine::releaseDisks() {
  for (DiskInfo& disk : disks_) {
    if (!disk.open.lock) continue;
    if (auto r = disk.image->releaseReserved(); !r) return r.error().withContext("drive " + disk.device);
    if (auto r = disk.image->flush(); !r) return r.error().withContext("drive " + disk.device);
    // The locks belong to the open file description: with the image passed in an fd set, every
    // descriptor of it (a new one from the opener included) shares the one that holds them.
    // Opened by path, the description is the image's own and goes with it below.
    const FileOpener& files = disk.open.opener ? *disk.open.opener : plainFiles();
    auto fd = files.open(disk.path, O_RDONLY);
    if (!fd) return fd.error().withContext("drive " + disk.device);
    if (auto r = storage::unlockImage(fd->get(), disk.path); !r) return r.error().withContext("drive " + disk.device);
    if (auto st = reopen(disk, false); !st) return st;
  }
  return {};
}

Status Machine::claimDisks() {
  for (DiskInfo& disk : disks_) {
    if (disk.open.lock) continue;
    if (auto st = reopen(disk, true); !st) return st;
  }
  return {};
}

}  // namespace vmmd
