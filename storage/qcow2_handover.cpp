// Live migration's hand-over of a qcow2 image between two processes (BlockDevice::release and
// acquire; QEMU's qcow2_inactivate and qcow2_co_invalidate_cache). The process giving the image
// away must leave nothing behind that only it knows: its reserved clusters (refcount 1, no
// reference) go back to the free pool, and every write is durable. The process taking it over
// cannot trust anything it cached: the other one allocated clusters, grew tables and moved the
// end of the file since, so every table is read again.
#include <mutex>

#include "storage/image_lock.h"
#include "storage/qcow2_image.h"

namespace vmmd::storage::qcow2 {

Result<void> Image::release() {
  {
    std::unique_lock io(io_);
    std::lock_guard meta(meta_);
    if (!readOnly()) {
      if (auto r = releasePool(); !r) return r;
    }
    released_ = true;
  }
  if (auto r = flush(); !r) {
    released_ = false;
    return r;
  }
  if (auto r = unlockImage(file_->fd(), path()); !r) {
    released_ = false;
    return r;
  }
  return {};
}

Result<void> Image::acquire() {
  if (auto r = lockImage(file_->fd(), path(), !readOnly()); !r) return r;
  std::unique_lock io(io_);
  std::lock_guard meta(meta_);
  // Acquired while still ours (never released): a reserved batch would be forgotten below.
  if (!readOnly()) {
    if (auto r = releasePool(); !r) return r;
  }
  auto fsize = file_->size();
  if (!fsize) return fsize.error();
  std::vector<uint8_t> head(std::min<uint64_t>(*fsize, kHeaderReadBytes));
  if (auto r = file_->read(0, head); !r) return r;
  auto h = parseHeader(head, *fsize, path());
  if (!h) return h.error();
  // The geometry is fixed when an image is made: a different one is another image.
  if (h->clusterBits != h_.clusterBits || h->refcountOrder != h_.refcountOrder || h->version != h_.version) {
    return Error(path() + ": the image changed its cluster size, refcount width or version while another process had it");
  }
  if (!readOnly() && (h->incompatible & (kIncompatCorrupt | kIncompatDirty))) {
    return Error(path() + ": the process that had the image left it marked corrupt or dirty; repair it with 'vmm-img check -r all'");
  }
  h_ = *h;
  size_ = h->size;
  hostEnd_ = (*fsize + cs_ - 1) & ~(cs_ - 1);
  l2Cache_.clear();
  refCache_.clear();
  freeHint_ = 0;
  compressedNext_ = 0;
  poolCount_ = 0;
  snapshots_.clear();
  snapshotTableBytes_ = 0;
  if (auto r = loadL1(); !r) return r;
  if (auto r = loadRefTable(); !r) return r;
  if (auto r = loadSnapshots(); !r) return r;
  released_ = false;
  return {};
}

}  // namespace vmmd::storage::qcow2
