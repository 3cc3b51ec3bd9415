#include "daemon/launch/log_rotation.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "base/unique_fd.h"

namespace vmmd::daemon {

Result<bool> rotateLogIfOver(const std::string& path, uint64_t limit) {
  UniqueFd log(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!log) {
    if (errno == ENOENT) return false;
    return Error::fromErrno("open " + path);
  }
  struct stat st{};
  if (::fstat(log.get(), &st) < 0) return Error::fromErrno("stat " + path);
  if (static_cast<uint64_t>(st.st_size) <= limit) return false;
  std::string old_path = path + ".1";
  std::string temp_path = old_path + ".tmp";
  UniqueFd old(::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  if (!old) return Error::fromErrno("open " + temp_path);
  char buffer[65536];
  for (;;) {
    ssize_t n = ::read(log.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::fromErrno("read " + path);
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(old.get(), buffer + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return Error::fromErrno("write " + temp_path);
      done += w;
    }
  }
  if (::rename(temp_path.c_str(), old_path.c_str()) < 0) return Error::fromErrno("rename " + temp_path);
  if (::ftruncate(log.get(), 0) < 0) return Error::fromErrno("truncate " + path);
  return true;
}

}  // namespace vmmd::daemon
