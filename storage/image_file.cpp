#include "storage/image_file.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

namespace vmmd::storage {

constexpr uint64_t kDirectAlign = 512;

Result<std::unique_ptr<ImageFile>> ImageFile::open(const std::string& path, bool readOnly, CacheMode cache,
                                                   const FileOpener& opener) {
  int flags = readOnly ? O_RDONLY : O_RDWR;
  auto opened = opener.open(path, flags);
  if (!opened) return Error("open " + opened.error().message(), opened.error().code());
  UniqueFd fd = std::move(*opened);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Error::fromErrno("stat " + path);
  if (S_ISDIR(st.st_mode)) return Error("open " + path + ": Is a directory", EISDIR);
  UniqueFd direct;
  if (cache == CacheMode::None) {
    // tmpfs and friends refuse, and so does an fd set without an O_DIRECT descriptor: stay buffered.
    if (auto opened_direct = opener.open(path, flags | O_DIRECT)) direct = std::move(*opened_direct);
  }
  return std::unique_ptr<ImageFile>(new ImageFile(path, std::move(fd), std::move(direct), readOnly));
}

namespace {

template <class Buffers>
std::vector<iovec> iovecsOf(Buffers bufs) {
  std::vector<iovec> iov;
  iov.reserve(bufs.size());
  for (const auto& b : bufs) {
    if (!b.empty()) iov.push_back({const_cast<uint8_t*>(b.data()), b.size()});  // pwritev only reads
  }
  return iov;
}

bool alignedForDirect(uint64_t offset, std::span<const iovec> iov) {
  uint64_t bits = offset;
  for (const iovec& v : iov) bits |= reinterpret_cast<uintptr_t>(v.iov_base) | v.iov_len;
  return (bits & (kDirectAlign - 1)) == 0;
}

// Drops the first `n` bytes from iov[first...]; returns the new first index.
size_t advance(std::span<iovec> iov, size_t first, uint64_t n) {
  while (n > 0 && first < iov.size()) {
    uint64_t take = std::min<uint64_t>(n, iov[first].iov_len);
    iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + take;
    iov[first].iov_len -= take;
    n -= take;
    if (iov[first].iov_len == 0) ++first;
  }
  return first;
}

}  // namespace

template <class VectorCall>
Result<uint64_t> ImageFile::transferVector(uint64_t offset, std::span<iovec> iov, VectorCall call,
                                           const char* what) const {
  int fd = directFd_ && alignedForDirect(offset, iov) ? directFd_.get() : fd_.get();
  uint64_t done = 0;
  for (size_t first = 0; first < iov.size();) {
    int count = static_cast<int>(std::min<size_t>(iov.size() - first, IOV_MAX));
    ssize_t n = call(fd, &iov[first], count, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL && fd != fd_.get()) {  // O_DIRECT alignment stricter than we thought
        fd = fd_.get();
        continue;
      }
      return Error::fromErrno(path_ + ": " + what + " at offset " + std::to_string(offset + done));
    }
    if (n == 0) break;  // end of file
    done += static_cast<uint64_t>(n);
    first = advance(iov, first, static_cast<uint64_t>(n));
    // A short transfer can leave the rest unaligned: finish it buffered.
    if (fd != fd_.get() && first < iov.size() && !alignedForDirect(offset + done, iov.subspan(first))) fd = fd_.get();
  }
  return done;
}

Result<void> ImageFile::readInto(uint64_t offset, std::span<iovec> iov) const {
  auto done = transferVector(offset, iov, ::preadv, "read");
  if (!done) return done.error();
  // Bytes past the end of the file read as zeroes (iov now holds only what was not read).
  for (iovec& v : iov) {
    if (v.iov_len) std::memset(v.iov_base, 0, v.iov_len);  // (an empty iovec may have no base)
  }
  return {};
}

Result<void> ImageFile::writeFrom(uint64_t offset, std::span<iovec> iov) const {
  uint64_t total = 0;
  for (const iovec& v : iov) total += v.iov_len;
  auto done = transferVector(offset, iov, ::pwritev, "write");
  if (!done) return done.error();
  if (*done != total) return Error(path_ + ": write at offset " + std::to_string(offset + *done) + " made no progress", EIO);
  return {};
}

Result<void> ImageFile::read(uint64_t offset, std::span<uint8_t> buf) const {
  iovec one{buf.data(), buf.size()};
  return readInto(offset, {&one, 1});
}

Result<void> ImageFile::write(uint64_t offset, std::span<const uint8_t> buf) const {
  iovec one{const_cast<uint8_t*>(buf.data()), buf.size()};  // pwritev only reads it
  return writeFrom(offset, {&one, 1});
}

Result<void> ImageFile::readv(uint64_t offset, ReadVector bufs) const {
  std::vector<iovec> iov = iovecsOf(bufs);
  return readInto(offset, iov);
}

Result<void> ImageFile::writev(uint64_t offset, WriteVector bufs) const {
  std::vector<iovec> iov = iovecsOf(bufs);
  return writeFrom(offset, iov);
}

Result<uint64_t> ImageFile::size() const {
  struct stat st;
  if (::fstat(fd_.get(), &st) != 0) return Error::fromErrno("stat " + path_);
  if (S_ISBLK(st.st_mode)) {
    off_t end = ::lseek(fd_.get(), 0, SEEK_END);
    if (end < 0) return Error::fromErrno("seek " + path_);
    return static_cast<uint64_t>(end);
  }
  return static_cast<uint64_t>(st.st_size);
}

uint64_t ImageFile::allocatedBytes() const {
  struct stat st;
  if (::fstat(fd_.get(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

Result<void> ImageFile::truncate(uint64_t size) const {
  if (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0) return Error::fromErrno("truncate " + path_);
  return {};
}

Result<void> ImageFile::sync() const {
  if (::fdatasync(fd_.get()) != 0) return Error::fromErrno("sync " + path_);
  return {};
}

bool ImageFile::zeroRange(uint64_t offset, uint64_t length) const {
  return ::fallocate(fd_.get(), FALLOC_FL_ZERO_RANGE, static_cast<off_t>(offset), static_cast<off_t>(length)) == 0;
}

Result<void> ImageFile::punchHole(uint64_t offset, uint64_t length) const {
  if (::fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(length)) != 0) {
    if (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL) return {};
    return Error::fromErrno(path_ + ": punch hole");
  }
  return {};
}

}  // namespace vmmd::storage
