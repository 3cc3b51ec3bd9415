#include "storage/image_file.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vmmd::storage {

constexpr uint64_t kDirectAlign = 512;

Result<std::unique_ptr<ImageFile>> ImageFile::open(const std::string& path, bool readOnly, CacheMode cache) {
  int flags = (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  UniqueFd fd(::open(path.c_str(), flags));
  if (!fd) return Error::fromErrno("open " + path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Error::fromErrno("stat " + path);
  if (S_ISDIR(st.st_mode)) return Error("open " + path + ": Is a directory", EISDIR);
  UniqueFd direct;
  if (cache == CacheMode::None) {
    direct.reset(::open(path.c_str(), flags | O_DIRECT));  // tmpfs and friends refuse: stay buffered
  }
  return std::unique_ptr<ImageFile>(new ImageFile(path, std::move(fd), std::move(direct), readOnly));
}

int ImageFile::fdFor(uint64_t offset, const void* buf, size_t len) const {
  if (directFd_ && ((offset | len | reinterpret_cast<uintptr_t>(buf)) & (kDirectAlign - 1)) == 0) {
    return directFd_.get();
  }
  return fd_.get();
}

Result<void> ImageFile::read(uint64_t offset, std::span<uint8_t> buf) const {
  size_t done = 0;
  int fd = fdFor(offset, buf.data(), buf.size());
  while (done < buf.size()) {
    ssize_t n = ::pread(fd, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL && fd != fd_.get()) {  // O_DIRECT alignment stricter than we thought
        fd = fd_.get();
        continue;
      }
      return Error::fromErrno(path_ + ": read at offset " + std::to_string(offset + done));
    }
    if (n == 0) {  // end of file
      std::memset(buf.data() + done, 0, buf.size() - done);
      break;
    }
    done += static_cast<size_t>(n);
    if (fd != fd_.get() && (done & (kDirectAlign - 1))) fd = fd_.get();
  }
  return {};
}

Result<void> ImageFile::write(uint64_t offset, std::span<const uint8_t> buf) const {
  size_t done = 0;
  int fd = fdFor(offset, buf.data(), buf.size());
  while (done < buf.size()) {
    ssize_t n = ::pwrite(fd, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL && fd != fd_.get()) {
        fd = fd_.get();
        continue;
      }
      return Error::fromErrno(path_ + ": write at offset " + std::to_string(offset + done));
    }
    done += static_cast<size_t>(n);
    if (fd != fd_.get() && (done & (kDirectAlign - 1))) fd = fd_.get();
  }
  return {};
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
