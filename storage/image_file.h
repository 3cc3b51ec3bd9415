// One image file on the host: positioned I/O that never returns short, an optional O_DIRECT
// descriptor for aligned data I/O, size, truncate, sync, hole punching. Thread-safe (pread/pwrite).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <sys/uio.h>

#include "base/file_opener.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "storage/block_device.h"

namespace vmmd::storage {

class ImageFile {
 public:
  // Opens through `opener` (the worker's fd sets hand over descriptors for paths it may not open).
  static Result<std::unique_ptr<ImageFile>> open(const std::string& path, bool readOnly, CacheMode cache,
                                                 const FileOpener& opener = plainFiles());

  // Bytes past the end of the file read as zeroes.
  Result<void> read(uint64_t offset, std::span<uint8_t> buf) const;
  Result<void> write(uint64_t offset, std::span<const uint8_t> buf) const;
  // The same for a list of buffers covering one contiguous range: one preadv/pwritev per
  // IOV_MAX buffers. O_DIRECT is used when every buffer is aligned.
  Result<void> readv(uint64_t offset, ReadVector bufs) const;
  Result<void> writev(uint64_t offset, WriteVector bufs) const;
  Result<uint64_t> size() const;
  Result<void> truncate(uint64_t size) const;
  Result<void> sync() const;
  // Makes the range read as zeroes without writing them (FALLOC_FL_ZERO_RANGE); false when the
  // file system cannot.
  bool zeroRange(uint64_t offset, uint64_t length) const;
  // Gives the range back to the host file system (best effort: unsupported is not an error).
  Result<void> punchHole(uint64_t offset, uint64_t length) const;
  // Allocated bytes on the host (st_blocks * 512).
  uint64_t allocatedBytes() const;

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  bool readOnly() const { return readOnly_; }

 private:
  ImageFile(std::string path, UniqueFd fd, UniqueFd directFd, bool readOnly)
      : path_(std::move(path)), fd_(std::move(fd)), directFd_(std::move(directFd)), readOnly_(readOnly) {}
  // preadv/pwritev over iov until done or end of file, O_DIRECT while everything left is aligned;
  // returns the bytes transferred and leaves in iov what was not.
  template <class VectorCall>
  Result<uint64_t> transferVector(uint64_t offset, std::span<iovec> iov, VectorCall call, const char* what) const;
  Result<void> readInto(uint64_t offset, std::span<iovec> iov) const;
  Result<void> writeFrom(uint64_t offset, std::span<iovec> iov) const;

  std::string path_;
  UniqueFd fd_;
  UniqueFd directFd_;
  bool readOnly_;
};

}  // namespace vmmd::storage
