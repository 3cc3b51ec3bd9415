#include "storage/image_lock.h"

#include <fcntl.h>

#include <cerrno>
#include <vector>

namespace vmmd::storage {
namespace {

constexpr int kPermBase = 100;
constexpr int kSharedBase = 200;
const char* const kPermNames[] = {"consistent read", "write", "write unchanged", "resize"};

int lockByte(int fd, int byte) {
  struct flock fl = {};
  fl.l_type = F_RDLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = byte;
  fl.l_len = 1;
  return ::fcntl(fd, F_OFD_SETLK, &fl) == 0 ? 0 : errno;
}

// True when some other open file description holds a lock on byte (we test for an exclusive one).
Result<bool> byteHeldByOthers(int fd, int byte) {
  struct flock fl = {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = byte;
  fl.l_len = 1;
  if (::fcntl(fd, F_OFD_GETLK, &fl) != 0) return Error::fromErrno("F_OFD_GETLK");
  return fl.l_type != F_UNLCK;
}

}  // namespace

Result<void> lockImage(int fd, const std::string& path, bool write) {
  static const std::vector<int> kWriter = {0, 1, 3}, kReader = {0}, kUnshared = {1, 3};
  const std::vector<int>& used = write ? kWriter : kReader;
  const std::vector<int>& unshared = kUnshared;
  for (int p : used) {
    if (int err = lockByte(fd, kPermBase + p)) return Error::fromErrno(path + ": lock", err);
  }
  for (int p : unshared) {
    if (int err = lockByte(fd, kSharedBase + p)) return Error::fromErrno(path + ": lock", err);
  }
  const std::string hint = ": Is another process using the image [" + path + "]?";
  for (int p : used) {
    auto held = byteHeldByOthers(fd, kSharedBase + p);
    if (!held) return held.error().withContext(path);
    if (*held) return Error(path + ": Failed to get \"" + kPermNames[p] + "\" lock" + hint, EAGAIN);
  }
  for (int p : unshared) {
    auto held = byteHeldByOthers(fd, kPermBase + p);
    if (!held) return held.error().withContext(path);
    if (*held) return Error(path + ": Failed to get shared \"" + kPermNames[p] + "\" lock" + hint, EAGAIN);
  }
  return {};
}

Result<void> unlockImage(int fd, const std::string& path) {
  struct flock fl = {};
  fl.l_type = F_UNLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = kPermBase;
  fl.l_len = kSharedBase + 4 - kPermBase;  // bytes 100-103 and 200-203 (none between is ever locked)
  if (::fcntl(fd, F_OFD_SETLK, &fl) != 0) return Error::fromErrno(path + ": unlock");
  return {};
}

}  // namespace vmmd::storage
