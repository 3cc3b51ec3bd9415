// The interposed calls: each forwards to libc's (found with dlsym(RTLD_NEXT)) and, when it
// succeeded on the recorded file, appends what it did to the log.
#include "tests/storage/powerloss/write_recorder.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/uio.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace vmmd::storage::powerloss {
namespace {

std::mutex gMutex;
bool gActive = false;
std::string gPath;
std::vector<FileEvent> gEvents;

template <class Fn>
Fn realCall(const char* name) {
  void* sym = ::dlsym(RTLD_NEXT, name);
  if (!sym) std::abort();
  return reinterpret_cast<Fn>(sym);
}

FileEvent eventOf(FileEvent::Kind kind, uint64_t offset = 0, uint64_t length = 0) {
  FileEvent e;
  e.kind = kind;
  e.offset = offset;
  e.length = length;
  return e;
}

bool recorded(int fd) {
  if (!gActive) return false;
  char link[64], target[PATH_MAX];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = ::readlink(link, target, sizeof target - 1);
  return n > 0 && std::string(target, static_cast<size_t>(n)) == gPath;
}

void recordWrite(int fd, const iovec* iov, int count, off_t offset, ssize_t done) {
  if (done <= 0) return;
  std::lock_guard lock(gMutex);
  if (!recorded(fd)) return;
  FileEvent e = eventOf(FileEvent::Kind::Write, static_cast<uint64_t>(offset), static_cast<uint64_t>(done));
  e.data.reserve(static_cast<size_t>(done));
  for (int i = 0; i < count && e.data.size() < e.length; ++i) {
    size_t take = std::min<size_t>(iov[i].iov_len, e.length - e.data.size());
    const auto* p = static_cast<const uint8_t*>(iov[i].iov_base);
    e.data.insert(e.data.end(), p, p + take);
  }
  gEvents.push_back(std::move(e));
}

void recordEvent(int fd, FileEvent e) {
  std::lock_guard lock(gMutex);
  if (recorded(fd)) gEvents.push_back(std::move(e));
}

}  // namespace

void startRecording(const std::string& path) {
  std::lock_guard lock(gMutex);
  char resolved[PATH_MAX];
  gPath = ::realpath(path.c_str(), resolved) ? resolved : path;
  gEvents.clear();
  gActive = true;
}

std::vector<FileEvent> stopRecording() {
  std::lock_guard lock(gMutex);
  gActive = false;
  return std::move(gEvents);
}

size_t recordedSoFar() {
  std::lock_guard lock(gMutex);
  return gEvents.size();
}

}  // namespace vmmd::storage::powerloss

using vmmd::storage::powerloss::FileEvent;
using vmmd::storage::powerloss::eventOf;
using vmmd::storage::powerloss::recordEvent;
using vmmd::storage::powerloss::recordWrite;
using vmmd::storage::powerloss::realCall;

extern "C" {

ssize_t pwritev(int fd, const iovec* iov, int count, off_t offset) {
  static auto real = realCall<ssize_t (*)(int, const iovec*, int, off_t)>("pwritev");
  ssize_t n = real(fd, iov, count, offset);
  recordWrite(fd, iov, count, offset, n);
  return n;
}

ssize_t pwritev64(int fd, const iovec* iov, int count, off_t offset) { return pwritev(fd, iov, count, offset); }

ssize_t pwrite(int fd, const void* buf, size_t length, off_t offset) {
  static auto real = realCall<ssize_t (*)(int, const void*, size_t, off_t)>("pwrite");
  ssize_t n = real(fd, buf, length, offset);
  iovec one{const_cast<void*>(buf), length};
  recordWrite(fd, &one, 1, offset, n);
  return n;
}

ssize_t pwrite64(int fd, const void* buf, size_t length, off_t offset) { return pwrite(fd, buf, length, offset); }

int fallocate(int fd, int mode, off_t offset, off_t length) {
  static auto real = realCall<int (*)(int, int, off_t, off_t)>("fallocate");
  int r = real(fd, mode, offset, length);
  if (r == 0 && (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))) {
    FileEvent e = eventOf(FileEvent::Kind::Zero, static_cast<uint64_t>(offset), static_cast<uint64_t>(length));
    e.mayExtend = !(mode & FALLOC_FL_KEEP_SIZE);
    recordEvent(fd, std::move(e));
  }
  return r;
}

int fallocate64(int fd, int mode, off_t offset, off_t length) { return fallocate(fd, mode, offset, length); }

int ftruncate(int fd, off_t size) noexcept {
  static auto real = realCall<int (*)(int, off_t)>("ftruncate");
  int r = real(fd, size);
  if (r == 0) recordEvent(fd, eventOf(FileEvent::Kind::Resize, static_cast<uint64_t>(size)));
  return r;
}

int ftruncate64(int fd, off_t size) noexcept { return ftruncate(fd, size); }

int fdatasync(int fd) {
  static auto real = realCall<int (*)(int)>("fdatasync");
  int r = real(fd);
  if (r == 0) recordEvent(fd, eventOf(FileEvent::Kind::Sync));
  return r;
}

int fsync(int fd) {
  static auto real = realCall<int (*)(int)>("fsync");
  int r = real(fd);
  if (r == 0) recordEvent(fd, eventOf(FileEvent::Kind::Sync));
  return r;
}

}  // extern "C"
