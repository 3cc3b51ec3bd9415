#include "daemon/server/systemd_integration.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "base/unique_fd.h"
#include "qmp/unix_socket.h"

namespace vmmd::daemon {

Status notifySystemd(std::string_view state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || !*path) return {};
  auto address = qmp::unixAddress(path);  // "@name": the abstract namespace
  if (!address) return address.error().withContext("NOTIFY_SOCKET");
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error::fromErrno("notify socket");
  if (::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL, address->get(), address->length) < 0) {
    return Error::fromErrno(std::string("notify systemd at ") + path);
  }
  return {};
}

std::optional<int> takeActivatedSocket() {
  const char* pid = std::getenv("LISTEN_PID");
  const char* fds = std::getenv("LISTEN_FDS");
  if (!pid || !fds) return std::nullopt;
  bool ours = std::strtol(pid, nullptr, 10) == ::getpid();
  long count = std::strtol(fds, nullptr, 10);
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  if (!ours || count < 1) return std::nullopt;
  constexpr int kFirstFd = 3;  // SD_LISTEN_FDS_START
  ::fcntl(kFirstFd, F_SETFD, FD_CLOEXEC);
  ::fcntl(kFirstFd, F_SETFL, ::fcntl(kFirstFd, F_GETFL) | O_NONBLOCK);
  return kFirstFd;
}

}  // namespace vmmd::daemon
