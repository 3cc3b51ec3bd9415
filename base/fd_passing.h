// Sending a descriptor with bytes over a Unix socket (SCM_RIGHTS). Header-only and allocation-free,
// so a forked child may use it too.
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace vmmd {

// One sendmsg of `size` bytes at `data` with `fd` attached (none when fd < 0), retried on EINTR,
// without SIGPIPE. Returns what sendmsg returned (errno set on -1).
inline ssize_t sendWithFd(int socket, const void* data, size_t size, int fd) {
  iovec iov{const_cast<void*>(data), size};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  }
  ssize_t sent;
  do sent = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR);
  return sent;
}

}  // namespace vmmd
