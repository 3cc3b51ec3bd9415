// qcow2 guest I/O: open, read, write with allocation and copy-on-write, zeroes, discard, resize.
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "storage/endian.h"
#include "storage/qcow2_image.h"

namespace vmmd::storage::qcow2 {

Image::Image(std::unique_ptr<ImageFile> file, const Header& h)
    : file_(std::move(file)), h_(h), cb_(h.clusterBits), cs_(h.clusterSize()), l2Bits_(h.clusterBits - 3),
      size_(h.size), refBits_(1u << h.refcountOrder), refBlockBits_(h.clusterBits + 3 - h.refcountOrder),
      refMax_(refBits_ == 64 ? ~0ull : (1ull << refBits_) - 1), csizeShift_(62 - (h.clusterBits - 8)),
      csizeMask_((1ull << (h.clusterBits - 8)) - 1),
      l2CacheMax_(std::max<uint64_t>(16, (32u << 20) / h.clusterSize())),
      refCacheMax_(std::max<uint64_t>(16, (8u << 20) / h.clusterSize())) {}

Image::~Image() {
  std::lock_guard meta(meta_);
  (void)releasePool();
}

Image::Kind Image::kindOf(uint64_t entry) const {
  if (entry & kOflagCompressed) return Kind::Compressed;
  if (h_.version >= 3 && (entry & kOflagZero)) return Kind::Zero;
  if ((entry & kOffsetMask) == 0) return Kind::Unallocated;
  return Kind::Normal;
}

Error Image::corrupt(const std::string& what) const {
  return Error(path() + ": corrupt qcow2 image: " + what, EUCLEAN);
}

Result<void> Image::noteCorruption(Result<void> r) {
  // As the spec asks: metadata found corrupt while writing sets the corrupt bit, and no further
  // writes happen until the image is repaired.
  if (!r && r.error().code() == EUCLEAN && !readOnly() && !markedCorrupt_.exchange(true)) {
    uint8_t v[8];
    storeBe64(v, h_.incompatible | kIncompatCorrupt);
    (void)file_->write(kOffIncompatible, v);
    (void)file_->sync();
  }
  return r;
}

Result<void> Image::writable() const {
  if (readOnly()) return Error(path() + ": image is read-only", EROFS);
  if (markedCorrupt_) return Error(path() + ": image is marked corrupt; repair it with 'vmm-img check -r all'", EUCLEAN);
  if (released_) return Error(path() + ": image was handed to another process (migration)", EROFS);
  return {};
}

Result<void> Image::rangeCheck(uint64_t offset, uint64_t length, bool forWrite) const {
  if (forWrite) {
    if (auto r = writable(); !r) return r;
  }
  if (offset > size_ || length > size_ - offset) {
    return Error(path() + ": request at offset " + std::to_string(offset) + " length " + std::to_string(length) +
                 " is beyond the end of the disk (" + std::to_string(size_) + " bytes)");
  }
  return {};
}

Result<std::unique_ptr<Image>> Image::open(std::unique_ptr<ImageFile> file, const OpenOptions& options,
                                           const BackingOpener& openBacking) {
  auto fsize = file->size();
  if (!fsize) return fsize.error();
  std::vector<uint8_t> head(std::min<uint64_t>(*fsize, kHeaderReadBytes));
  if (auto r = file->read(0, head); !r) return r.error();
  auto h = parseHeader(head, *fsize, file->path());
  if (!h) return h.error();
  const std::string& path = file->path();
  if (!file->readOnly()) {
    if ((h->incompatible & kIncompatCorrupt) && !options.repair) {
      return Error(path + ": image is marked corrupt; open it read-only or repair it with 'vmm-img check -r all'");
    }
    if ((h->incompatible & kIncompatDirty) && !options.repair) {
      return Error(path + ": image is dirty (its refcounts may be stale); repair it with 'vmm-img check -r all'");
    }
  }
  std::unique_ptr<Image> img(new Image(std::move(file), *h));
  img->writeBarriers_ = options.writeBarriers;
  img->hostEnd_ = (*fsize + img->cs_ - 1) & ~(img->cs_ - 1);
  if (auto r = img->loadL1(); !r) return r.error();
  if (auto r = img->loadRefTable(); !r) return r.error();
  if (auto r = img->loadSnapshots(); !r) return r.error();
  if (!h->backingFile.empty() && options.openBacking) {
    // Never probed: a guest that writes a qcow2 header into its raw base image would choose which
    // file is opened next (QEMU 7.2 still probes on open; it refuses only `create -b` without -F).
    if (h->backingFormat.empty()) {
      return Error(path + ": the backing file '" + h->backingFile +
                   "' has no format in the image, and backing formats are never probed; record it with "
                   "'qemu-img rebase -u -b " + h->backingFile + " -F raw|qcow2 " + path + "'");
    }
    if (h->backingFormat != "raw" && h->backingFormat != "qcow2") {
      return Error(path + ": backing file format '" + h->backingFormat + "' is not supported");
    }
    auto b = openBacking(h->backingFile, h->backingFormat);
    if (!b) return b.error().withContext(path + ": open backing file");
    img->backing_ = std::move(*b);
  }
  if (!img->readOnly() && h->version >= 3 && h->autoclear) {
    // We do not maintain what the autoclear features describe (bitmaps): say so, as the spec asks.
    uint8_t zero[8] = {};
    if (auto r = img->file_->write(kOffAutoclear, zero); !r) return r.error();
    img->h_.autoclear = 0;
  }
  return img;
}

Result<void> Image::readBacking(uint64_t offset, ReadVector bufs) {
  ReadTarget dst(bufs);
  uint64_t have = 0;
  if (backing_) {
    uint64_t bsize = std::min(backing_->size(), size_);
    if (offset < bsize) {
      have = std::min<uint64_t>(dst.size(), bsize - offset);
      if (auto r = backing_->readv(offset, dst.slice(0, have)); !r) return r;
    }
  }
  for (const auto& part : dst.slice(have, dst.size() - have)) std::memset(part.data(), 0, part.size());
  return {};
}

Result<void> Image::readRun(const Run& run, uint64_t offset, ReadVector parts) {
  switch (run.kind) {
    case Kind::Normal: return file_->readv(run.host, parts);
    case Kind::Zero:
      for (const auto& part : parts) std::memset(part.data(), 0, part.size());
      return {};
    case Kind::Unallocated: return readBacking(offset, parts);
    case Kind::Compressed: {
      // Inflated once for all the buffers it covers (a run never leaves its cluster).
      std::vector<uint8_t> cluster(cs_);
      if (auto r = readCompressed(run.entry, cluster); !r) return r;
      uint64_t at = offset & (cs_ - 1);
      for (const auto& part : parts) {
        std::memcpy(part.data(), cluster.data() + at, part.size());
        at += part.size();
      }
      return {};
    }
  }
  return {};
}

Result<void> Image::readRun(const Run& run, uint64_t offset, std::span<uint8_t> buf) {
  const std::span<uint8_t> parts[] = {buf};
  return readRun(run, offset, parts);
}

Result<void> Image::read(uint64_t offset, std::span<uint8_t> buf) {
  const std::span<uint8_t> parts[] = {buf};
  return readv(offset, parts);
}

Result<void> Image::readv(uint64_t offset, ReadVector bufs) {
  ReadTarget dst(bufs);
  if (auto r = rangeCheck(offset, dst.size(), false); !r) return r;
  std::shared_lock io(io_);
  for (uint64_t pos = 0; pos < dst.size();) {
    Result<Run> run = Error("");
    {
      std::shared_lock shared(meta_);
      bool missed = false;
      run = lookup(offset + pos, dst.size() - pos, true, &missed);
      if (missed) {
        shared.unlock();
        std::lock_guard meta(meta_);
        run = lookup(offset + pos, dst.size() - pos);
      }
    }
    if (!run) return run.error();
    if (auto r = readRun(*run, offset + pos, dst.slice(pos, run->length)); !r) return r;
    pos += run->length;
  }
  return {};
}

Result<void> Image::write(uint64_t offset, std::span<const uint8_t> buf) {
  const std::span<const uint8_t> parts[] = {buf};
  return writev(offset, parts);
}

Result<void> Image::writev(uint64_t offset, WriteVector bufs) {
  WriteSource src(bufs);
  if (auto r = rangeCheck(offset, src.size(), true); !r) return r;
  std::shared_lock io(io_);
  return noteCorruption(writeLocked(offset, src));
}

Result<void> Image::writeLocked(uint64_t offset, std::span<const uint8_t> buf) {
  const std::span<const uint8_t> parts[] = {buf};
  return writeLocked(offset, WriteSource(parts));
}

Result<void> Image::writeHost(uint64_t host, const WriteSource& src, uint64_t pos, uint64_t length) {
  auto parts = src.slice(pos, length);
  return file_->writev(host, parts);
}

Result<void> Image::writeLocked(uint64_t offset, const WriteSource& buf) {
  const uint64_t l2n = 1ull << l2Bits_;
  const uint64_t maxAlloc = std::max<uint64_t>(1, std::min<uint64_t>((32u << 20) >> cb_, maxAllocClusters()));
  auto inPlace = [&](uint64_t e) { return kindOf(e) == Kind::Normal && (e & kOflagCopied); };
  for (uint64_t pos = 0; pos < buf.size();) {
    const uint64_t cur = offset + pos, rem = buf.size() - pos;
    const uint64_t gc = cur >> cb_, inOff = cur & (cs_ - 1), l2i = gc & (l2n - 1);
    {
      // Fast path: an allocated cluster whose L2 table is cached, under the shared lock.
      std::shared_lock shared(meta_);
      if (!inflight_.count(gc)) {
        bool missed = false;
        auto run = lookup(cur, rem, true, &missed);
        if (!run) return run.error();
        if (!missed && run->kind == Kind::Normal && (run->entry & kOflagCopied)) {
          shared.unlock();
          if (auto r = writeHost(run->host, buf, pos, run->length); !r) return r;
          pos += run->length;
          continue;
        }
      }
    }
    std::unique_lock meta(meta_);
    // Another writer is allocating this cluster: wait for it to publish its L2 entry.
    if (inflight_.count(gc)) {
      inflightDone_.wait(meta, [&] { return !inflight_.count(gc); });
    }
    auto run = lookup(cur, rem);
    if (!run) return run.error();
    if (run->kind == Kind::Normal && (run->entry & kOflagCopied)) {
      meta.unlock();
      if (auto r = writeHost(run->host, buf, pos, run->length); !r) return r;
      pos += run->length;
      continue;
    }
    // Allocate fresh clusters for a run of clusters that cannot be written in place.
    auto l2off = ensureL2(gc >> l2Bits_);
    if (!l2off) return l2off.error();
    auto table = l2Table(*l2off);
    if (!table) return table.error();
    const uint64_t maxClusters = std::min({l2n - l2i, (inOff + rem + cs_ - 1) >> cb_, maxAlloc});
    std::vector<uint64_t> old{(**table)[l2i]};
    while (old.size() < maxClusters && !inPlace((**table)[l2i + old.size()]) && !inflight_.count(gc + old.size())) {
      old.push_back((**table)[l2i + old.size()]);
    }
    const uint64_t n = old.size();
    const uint64_t dataLen = std::min(rem, n * cs_ - inOff);
    auto host = allocClusters(n);
    if (!host) return host.error();
    const uint64_t refcountsWritten = allocationsWritten();  // these clusters' refcounts are among them
    for (uint64_t i = 0; i < n; ++i) inflight_.insert(gc + i);
    meta.unlock();
    bool copiedOldData = false;
    // Data (with copy-on-write of the partial head and tail) goes out before the L2 entries.
    auto publish = [&]() -> Result<void> {
      if (inOff == 0 && dataLen == n * cs_) return writeHost(*host, buf, pos, dataLen);
      const uint64_t tailStart = inOff + dataLen;
      auto readsZero = [&](uint64_t e) {
        Kind k = kindOf(e);
        return k == Kind::Zero || (k == Kind::Unallocated && !backing_);
      };
      // Copy-on-write of zeroes: let the file system zero the clusters, then write just the data
      // (stays aligned for O_DIRECT).
      if ((inOff == 0 || readsZero(old[0])) && (tailStart == n * cs_ || readsZero(old[n - 1])) &&
          file_->zeroRange(*host, n * cs_)) {
        return writeHost(*host + inOff, buf, pos, dataLen);
      }
      // Copy-on-write: the head and tail of the new clusters around the data are what the guest
      // saw there before. They go out in one pwritev with the data, which is never copied.
      const uint64_t tailLen = n * cs_ - tailStart;
      copiedOldData = (inOff && !readsZero(old[0])) || (tailLen && !readsZero(old[n - 1]));
      const uint64_t tailAt = (inOff + 4095) & ~uint64_t{4095};  // both pieces page-aligned for O_DIRECT
      void* mem = nullptr;
      if (posix_memalign(&mem, 4096, tailAt + tailLen) != 0) return Error(path() + ": out of memory");
      std::unique_ptr<uint8_t, decltype(&std::free)> owned(static_cast<uint8_t*>(mem), &std::free);
      std::span<uint8_t> head(owned.get(), inOff), tail(owned.get() + tailAt, tailLen);
      if (inOff) {
        Run r0{kindOf(old[0]), old[0], (old[0] & kOffsetMask), inOff};
        if (auto r = readRun(r0, gc << cb_, head); !r) return r;
      }
      if (tailLen) {
        uint64_t e = old[n - 1];
        uint64_t guest = (gc << cb_) + tailStart;
        Run rt{kindOf(e), e, (e & kOffsetMask) + (tailStart & (cs_ - 1)), tailLen};
        if (auto r = readRun(rt, guest, tail); !r) return r;
      }
      std::vector<std::span<const uint8_t>> parts = buf.slice(pos, dataLen);
      if (inOff) parts.insert(parts.begin(), head);
      if (tailLen) parts.push_back(tail);
      return file_->writev(*host, parts);
    };
    Result<void> written = publish();
    // Before the L2 entries: the refcounts of the new clusters, and the old data copied into them
    // (else a power loss could leave the entry pointing at clusters that lack what the guest had
    // flushed there). Outside meta_: other requests go on meanwhile.
    if (written) written = copiedOldData ? barrier() : syncAllocations(refcountsWritten);
    meta.lock();
    for (uint64_t i = 0; i < n; ++i) inflight_.erase(gc + i);
    inflightDone_.notify_all();
    if (!written) return written;  // the clusters stay allocated: a leak, not a corruption
    std::vector<uint64_t> fresh(n);
    for (uint64_t i = 0; i < n; ++i) fresh[i] = (*host + (i << cb_)) | kOflagCopied;
    if (auto r = setL2Entries(*l2off, l2i, fresh); !r) return r;
    if (auto r = freeEntries(old); !r) return r;
    pos += dataLen;
  }
  return {};
}

Result<void> Image::clearClusters(uint64_t offset, uint64_t length, bool zero) {
  const uint64_t l2n = 1ull << l2Bits_;
  const bool v3 = h_.version >= 3;
  // What the cleared entries referenced is freed in batches: one barrier (the cleared entries
  // durable before any refcount goes down) per batch, not per L2 table.
  std::vector<uint64_t> toFree;
  auto freeCleared = [&]() -> Result<void> {
    std::lock_guard meta(meta_);
    auto r = freeEntries(toFree);
    toFree.clear();
    return r;
  };
  for (uint64_t pos = offset; pos < offset + length;) {
    if (toFree.size() >= (1u << 16)) {
      if (auto r = freeCleared(); !r) return r;
    }
    const uint64_t gc = pos >> cb_, l2i = gc & (l2n - 1);
    const uint64_t n = std::min(l2n - l2i, (offset + length - pos) >> cb_);
    uint64_t desired;
    if (!backing_) {
      desired = 0;  // unallocated reads as zeroes
    } else if (v3) {
      desired = kOflagZero;
    } else if (zero) {  // v2 over a backing file: only real zeroes hide the backing data
      std::vector<uint8_t> zeroes(std::min<uint64_t>(n << cb_, 4u << 20), 0);
      for (uint64_t done = 0; done < (n << cb_); done += zeroes.size()) {
        uint64_t len = std::min<uint64_t>(zeroes.size(), (n << cb_) - done);
        if (auto r = writeLocked(pos + done, std::span(zeroes.data(), len)); !r) return r;
      }
      pos += n << cb_;
      continue;
    } else {
      pos += n << cb_;  // v2 discard over a backing file: keep the data
      continue;
    }
    std::lock_guard meta(meta_);
    uint64_t l1i = gc >> l2Bits_;
    if (l1i < l1_.size() && (l1_[l1i] & kOffsetMask) == 0 && desired == 0) {
      pos += n << cb_;
      continue;
    }
    auto l2off = ensureL2(l1i);
    if (!l2off) return l2off.error();
    auto table = l2Table(*l2off);
    if (!table) return table.error();
    std::vector<uint64_t> old((**table).begin() + l2i, (**table).begin() + l2i + n);
    if (std::all_of(old.begin(), old.end(), [&](uint64_t e) { return e == desired; })) {
      pos += n << cb_;
      continue;
    }
    std::vector<uint64_t> fresh(n, desired);
    if (auto r = setL2Entries(*l2off, l2i, fresh); !r) return r;
    toFree.insert(toFree.end(), old.begin(), old.end());
    pos += n << cb_;
  }
  return freeCleared();
}

Result<void> Image::writeZeroes(uint64_t offset, uint64_t length) {
  if (auto r = rangeCheck(offset, length, true); !r) return r;
  std::unique_lock io(io_);
  return noteCorruption(zeroesLocked(offset, length));
}

Result<void> Image::zeroesLocked(uint64_t offset, uint64_t length) {
  const uint64_t end = offset + length;
  uint64_t fullStart = (offset + cs_ - 1) & ~(cs_ - 1);
  uint64_t fullEnd = end == size_ ? (end + cs_ - 1) & ~(cs_ - 1) : end & ~(cs_ - 1);
  if (fullStart >= fullEnd) {
    std::vector<uint8_t> z(length, 0);
    return writeLocked(offset, z);
  }
  if (offset < fullStart) {
    std::vector<uint8_t> z(fullStart - offset, 0);
    if (auto r = writeLocked(offset, z); !r) return r;
  }
  if (auto r = clearClusters(fullStart, fullEnd - fullStart, true); !r) return r;
  if (fullEnd < end) {
    std::vector<uint8_t> z(end - fullEnd, 0);
    if (auto r = writeLocked(fullEnd, z); !r) return r;
  }
  return {};
}

Result<void> Image::discard(uint64_t offset, uint64_t length) {
  if (auto r = rangeCheck(offset, length, true); !r) return r;
  std::unique_lock io(io_);
  const uint64_t end = offset + length;
  uint64_t fullStart = (offset + cs_ - 1) & ~(cs_ - 1);
  uint64_t fullEnd = end == size_ ? (end + cs_ - 1) & ~(cs_ - 1) : end & ~(cs_ - 1);
  if (fullStart >= fullEnd) return {};
  return noteCorruption(clearClusters(fullStart, fullEnd - fullStart, false));
}

Result<void> Image::flush() {
  if (readOnly()) return {};
  return syncFile();
}

Result<void> Image::resize(uint64_t newSize) {
  if (readOnly()) return Error(path() + ": image is read-only", EROFS);
  if (released_) return Error(path() + ": image was handed to another process (migration)", EROFS);
  std::unique_lock io(io_);
  std::lock_guard meta(meta_);
  if (newSize < size_) return Error(path() + ": shrinking qcow2 images is not supported");
  if (newSize > kMaxVirtualSize) return Error(path() + ": size " + std::to_string(newSize) + " too large");
  uint64_t needed = l1EntriesFor(newSize, cb_);
  if (needed > l1_.size()) {
    if (auto r = growL1(needed); !r) return r;
  }
  uint8_t raw[8];
  storeBe64(raw, newSize);
  if (auto r = file_->write(kOffSize, raw); !r) return r;
  size_ = newSize;
  h_.size = newSize;
  return {};
}

Result<Extent> Image::blockStatus(uint64_t offset, uint64_t maxLength) {
  if (offset >= size_) return Extent{ExtentKind::Data, 0};
  maxLength = std::min(maxLength, size_ - offset);
  std::lock_guard meta(meta_);
  auto kindFor = [](Kind k) {
    return k == Kind::Zero ? ExtentKind::Zero : k == Kind::Unallocated ? ExtentKind::Unallocated : ExtentKind::Data;
  };
  auto run = lookup(offset, maxLength);
  if (!run) return run.error();
  Extent ext{kindFor(run->kind), run->length};
  while (ext.length < maxLength) {
    auto next = lookup(offset + ext.length, maxLength - ext.length);
    if (!next) return next.error();
    if (kindFor(next->kind) != ext.kind) break;
    ext.length += next->length;
  }
  return ext;
}

}  // namespace vmmd::storage::qcow2

namespace vmmd::storage {

Result<std::unique_ptr<BlockDevice>> openQcow2(std::unique_ptr<ImageFile> file, const OpenOptions& options,
                                               const BackingOpener& openBacking) {
  auto img = qcow2::Image::open(std::move(file), options, openBacking);
  if (!img) return img.error();
  return std::unique_ptr<BlockDevice>(std::move(*img));
}

}  // namespace vmmd::storage
