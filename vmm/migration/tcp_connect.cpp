#include "vmm/migration/tcp_connect.h"

#include <fcntl.h>
#include <poll.h>

#include <cerrno>
#include <cstring>

namespace vmmd::migration {
namespace {

constexpr int kCancelCheckMs = 100;

Status setNonBlocking(int fd, bool on) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return Error::fromErrno("fcntl(F_GETFL)");
  int wanted = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (wanted != flags && ::fcntl(fd, F_SETFL, wanted) != 0) return Error::fromErrno("fcntl(F_SETFL)");
  return {};
}

}  // namespace

Status connectCancellable(const UniqueFd& fd, const sockaddr* address, socklen_t length, const std::atomic<bool>& cancelled,
                          const std::string& what) {
  const std::string context = "Failed to connect to '" + what + "'";
  if (auto st = setNonBlocking(fd.get(), true); !st) return st.error().withContext(context);
  if (::connect(fd.get(), address, length) != 0) {
    if (errno != EINPROGRESS) return Error::fromErrno(context);
    for (;;) {
      if (cancelled.load()) return Error(context + ": cancelled while connecting");
      pollfd p{fd.get(), POLLOUT, 0};
      int n = ::poll(&p, 1, kCancelCheckMs);
      if (n < 0 && errno != EINTR) return Error::fromErrno(context + ": poll");
      if (n > 0) break;
    }
    int error = 0;
    socklen_t size = sizeof error;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &size) != 0) return Error::fromErrno(context + ": getsockopt");
    if (error != 0) return Error(context + ": " + std::strerror(error));
  }
  if (auto st = setNonBlocking(fd.get(), false); !st) return st.error().withContext(context);
  return {};
}

}  // namespace vmmd::migration
