#include "storage/raw.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <vector>

#include "base/unique_fd.h"
#include "storage/image_lock.h"

namespace vmmd::storage {
namespace {

class RawDevice final : public BlockDevice {
 public:
  RawDevice(std::unique_ptr<ImageFile> file, uint64_t size) : file_(std::move(file)), size_(size) {}

  Result<void> read(uint64_t offset, std::span<uint8_t> buf) override {
    if (auto r = checkRange(offset, buf.size()); !r) return r;
    return file_->read(offset, buf);
  }
  Result<void> write(uint64_t offset, std::span<const uint8_t> buf) override {
    if (auto r = checkWrite(offset, buf.size()); !r) return r;
    return file_->write(offset, buf);
  }
  Result<void> readv(uint64_t offset, ReadVector bufs) override {
    if (auto r = checkRange(offset, totalBytes<uint8_t>(bufs)); !r) return r;
    return file_->readv(offset, bufs);
  }
  Result<void> writev(uint64_t offset, WriteVector bufs) override {
    if (auto r = checkWrite(offset, totalBytes<const uint8_t>(bufs)); !r) return r;
    return file_->writev(offset, bufs);
  }
  Result<void> writeZeroes(uint64_t offset, uint64_t length) override {
    if (auto r = checkWrite(offset, length); !r) return r;
    if (::fallocate(file_->fd(), FALLOC_FL_ZERO_RANGE, static_cast<off_t>(offset), static_cast<off_t>(length)) == 0) {
      return {};
    }
    if (::fallocate(file_->fd(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                    static_cast<off_t>(length)) == 0) {
      return {};
    }
    std::vector<uint8_t> zeroes(std::min<uint64_t>(length, 1 << 20));
    for (uint64_t done = 0; done < length;) {
      uint64_t n = std::min<uint64_t>(zeroes.size(), length - done);
      if (auto r = file_->write(offset + done, std::span(zeroes.data(), n)); !r) return r;
      done += n;
    }
    return {};
  }
  Result<void> discard(uint64_t offset, uint64_t length) override {
    if (auto r = checkWrite(offset, length); !r) return r;
    return file_->punchHole(offset, length);
  }
  Result<void> flush() override { return readOnly() ? Result<void>() : file_->sync(); }
  Result<void> resize(uint64_t newSize) override {
    if (auto r = checkWrite(0, 0); !r) return r;
    if (auto r = file_->truncate(newSize); !r) return r;
    size_ = newSize;
    return {};
  }
  uint64_t size() const override { return size_; }
  bool readOnly() const override { return file_->readOnly(); }
  ImageFormat format() const override { return ImageFormat::Raw; }
  const std::string& path() const override { return file_->path(); }

  Result<void> release() override {
    if (auto r = flush(); !r) return r;
    if (auto r = unlockImage(file_->fd(), path()); !r) return r;
    released_ = true;
    return {};
  }
  Result<void> acquire() override {
    if (auto r = lockImage(file_->fd(), path(), !readOnly()); !r) return r;
    released_ = false;
    return {};
  }
  bool released() const override { return released_; }

  Result<Extent> blockStatus(uint64_t offset, uint64_t maxLength) override {
    const uint64_t size = size_;
    uint64_t end = std::min(size - std::min(offset, size), maxLength) + offset;
    if (offset >= end) return Extent{ExtentKind::Data, 0};
    off_t data = ::lseek(file_->fd(), static_cast<off_t>(offset), SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) return Extent{ExtentKind::Zero, end - offset};  // hole up to EOF
      return Extent{ExtentKind::Data, end - offset};
    }
    if (static_cast<uint64_t>(data) > offset) {
      return Extent{ExtentKind::Zero, std::min<uint64_t>(data, end) - offset};
    }
    off_t hole = ::lseek(file_->fd(), static_cast<off_t>(offset), SEEK_HOLE);
    if (hole < 0) return Extent{ExtentKind::Data, end - offset};
    return Extent{ExtentKind::Data, std::min<uint64_t>(std::max<uint64_t>(hole, offset + 1), end) - offset};
  }

 private:
  Result<void> checkRange(uint64_t offset, uint64_t length) const {
    if (offset > size_ || length > size_ - offset) {
      return Error(file_->path() + ": request at offset " + std::to_string(offset) + " length " +
                   std::to_string(length) + " is beyond the end of the disk (" + std::to_string(size_) + " bytes)");
    }
    return {};
  }
  Result<void> checkWrite(uint64_t offset, uint64_t length) const {
    if (readOnly()) return Error(file_->path() + ": image is read-only", EROFS);
    if (released_) return Error(file_->path() + ": image was handed to another process (migration)", EROFS);
    return checkRange(offset, length);
  }

  std::unique_ptr<ImageFile> file_;
  std::atomic<uint64_t> size_;
  std::atomic<bool> released_{false};
};

}  // namespace

Result<std::unique_ptr<BlockDevice>> openRaw(std::unique_ptr<ImageFile> file) {
  auto size = file->size();
  if (!size) return size.error();
  return std::unique_ptr<BlockDevice>(new RawDevice(std::move(file), *size));
}

Result<void> createRaw(const std::string& path, uint64_t size) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return Error::fromErrno("create " + path);
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) return Error::fromErrno("truncate " + path);
  return {};
}

}  // namespace vmmd::storage
