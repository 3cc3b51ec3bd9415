// Unix sockets by path, for the worker, the daemon, the CLI and the tests: the one place that
// fills a sockaddr_un, binds and listens (replacing a socket file that a dead process left there,
// never any other file), connects, takes over a listening socket passed by fd, and reads a peer's
// credentials. Every socket made here is close-on-exec.
//
//   auto listener = listenUnix("/run/vmmd/vms/web1/qmp.sock");   // non-blocking, listening
//   auto fd = connectUnix("/run/vmmd/vmmd.sock");                 // errno kept: ENOENT, ECONNREFUSED
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace vmmd::qmp {

// A filled sockaddr_un and its length. A leading '@' names an abstract socket (systemd's
// NOTIFY_SOCKET form). A path that does not fit fails with ENAMETOOLONG, naming it.
struct UnixAddress {
  sockaddr_un address{};
  socklen_t length = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&address); }
};
Result<UnixAddress> unixAddress(std::string_view path);

// Makes `path` ready for a bind: it fits, its directory exists, and a socket file there (left by a
// process that is gone) is removed; any other file is refused ("P exists and is not a socket").
Status removeStaleSocket(const std::string& path);

// removeStaleSocket, then a non-blocking stream socket bound at `path` and listening. `mode`: the
// socket file's permissions from the moment it exists (the umask while binding); unset: what the
// process umask gives.
Result<UniqueFd> listenUnix(const std::string& path, int backlog = SOMAXCONN, std::optional<mode_t> mode = std::nullopt);

// Takes over `fd`, inherited from the process that bound it (`-chardev socket,fd=N`): it must be a
// listening Unix stream socket; it is made close-on-exec and non-blocking. On failure the fd is
// left alone.
Result<UniqueFd> adoptListeningUnix(int fd);

// The path a socket is bound to (getsockname); "" for an unnamed or abstract one.
std::string boundPath(int fd);

// A stream socket connected to `path`. Non-blocking when asked: EAGAIN then means the listener's
// queue is full. Errors keep errno (ENOENT, ECONNREFUSED, EAGAIN) for the caller's retry decision.
Result<UniqueFd> connectUnix(const std::string& path, bool nonblocking = false);

// Who is at the other end of a connected Unix socket (SO_PEERCRED), with the supplementary
// groups it had when it connected (SO_PEERGROUPS).
struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  std::string describe() const;  // "uid=1000 gid=1000 pid=4242"
};
Result<PeerCredentials> peerCredentials(int fd);

}  // namespace vmmd::qmp
