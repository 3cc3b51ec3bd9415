#include "qmp/unix_socket.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace vmmd::qmp {
namespace {

Status setFdFlags(int fd) {
  int descriptor_flags = ::fcntl(fd, F_GETFD);
  int status_flags = ::fcntl(fd, F_GETFL);
  if (descriptor_flags < 0 || status_flags < 0 || ::fcntl(fd, F_SETFD, descriptor_flags | FD_CLOEXEC) < 0 ||
      ::fcntl(fd, F_SETFL, status_flags | O_NONBLOCK) < 0) {
    return Error::fromErrno("fd " + std::to_string(fd));
  }
  return {};
}

int socketOption(int fd, int option) {
  int value = -1;
  socklen_t length = sizeof value;
  if (::getsockopt(fd, SOL_SOCKET, option, &value, &length) < 0) return -1;
  return value;
}

}  // namespace

Result<UnixAddress> unixAddress(std::string_view path) {
  UnixAddress result;
  constexpr size_t kCapacity = sizeof result.address.sun_path - 1;  // room for the NUL
  if (path.empty()) return Error("empty socket path", EINVAL);
  if (path.size() > kCapacity) {
    return Error("socket path " + std::string(path) + " is too long (" + std::to_string(path.size()) +
                     " bytes; at most " + std::to_string(kCapacity) + ")",
                 ENAMETOOLONG);
  }
  result.address.sun_family = AF_UNIX;
  std::memcpy(result.address.sun_path, path.data(), path.size());
  size_t used = path.size();
  if (path.front() == '@') {
    result.address.sun_path[0] = '\0';  // abstract: the name is exactly these bytes, no NUL
  } else {
    ++used;
  }
  result.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + used);
  return result;
}

Status removeStaleSocket(const std::string& path) {
  auto address = unixAddress(path);
  if (!address) return address.error();
  size_t slash = path.rfind('/');
  std::string directory = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  struct stat st {};
  if (::stat(directory.c_str(), &st) < 0) return Error::fromErrno("socket " + path + ": directory " + directory);
  if (!S_ISDIR(st.st_mode)) return Error("socket " + path + ": " + directory + " is not a directory", ENOTDIR);
  if (::lstat(path.c_str(), &st) < 0) return {};
  if (!S_ISSOCK(st.st_mode)) return Error(path + " exists and is not a socket", EEXIST);
  // A socket somebody still listens on is not stale: replacing it would cut that process off.
  if (auto probe = connectUnix(path, true); probe || probe.error().code() == EAGAIN) {
    return Error(path + " is in use: a process is listening on it", EADDRINUSE);
  }
  if (::unlink(path.c_str()) < 0 && errno != ENOENT) return Error::fromErrno("remove the stale socket " + path);
  return {};
}

Result<UniqueFd> listenUnix(const std::string& path, int backlog, std::optional<mode_t> mode) {
  auto address = unixAddress(path);
  if (!address) return address.error();
  if (auto st = removeStaleSocket(path); !st) return st.error();
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Error::fromErrno("socket");
  mode_t old_umask = 0;
  if (mode) old_umask = ::umask(static_cast<mode_t>(~*mode & 0777));
  int rc = ::bind(fd.get(), address->get(), address->length);
  int bind_errno = errno;
  if (mode) ::umask(old_umask);
  if (rc < 0) return Error::fromErrno("bind " + path, bind_errno);
  if (::listen(fd.get(), backlog) < 0) {
    Error error = Error::fromErrno("listen " + path);
    ::unlink(path.c_str());
    return error;
  }
  return fd;
}

Result<UniqueFd> adoptListeningUnix(int fd) {
  std::string what = "fd " + std::to_string(fd);
  if (::fcntl(fd, F_GETFD) < 0) return Error::fromErrno(what);
  if (socketOption(fd, SO_DOMAIN) != AF_UNIX || socketOption(fd, SO_TYPE) != SOCK_STREAM) {
    return Error(what + " is not a Unix stream socket", ENOTSOCK);
  }
  if (socketOption(fd, SO_ACCEPTCONN) != 1) return Error(what + " is a socket that is not listening", EINVAL);
  if (auto st = setFdFlags(fd); !st) return st.error();
  return UniqueFd(fd);
}

std::string boundPath(int fd) {
  sockaddr_un address{};
  socklen_t length = sizeof address;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) < 0 || address.sun_family != AF_UNIX) return "";
  size_t size = length > offsetof(sockaddr_un, sun_path) ? length - offsetof(sockaddr_un, sun_path) : 0;
  if (size == 0 || address.sun_path[0] == '\0') return "";
  return std::string(address.sun_path, ::strnlen(address.sun_path, size));
}

Result<UniqueFd> connectUnix(const std::string& path, bool nonblocking) {
  auto address = unixAddress(path);
  if (!address) return address.error();
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0));
  if (!fd) return Error::fromErrno("socket");
  if (::connect(fd.get(), address->get(), address->length) < 0) return Error::fromErrno("connect " + path);
  return fd;
}

std::string PeerCredentials::describe() const {
  return "uid=" + std::to_string(uid) + " gid=" + std::to_string(gid) + " pid=" + std::to_string(pid);
}

Result<PeerCredentials> peerCredentials(int fd) {
  ucred credentials{};
  socklen_t length = sizeof credentials;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) < 0) return Error::fromErrno("SO_PEERCRED");
  PeerCredentials peer{credentials.pid, credentials.uid, credentials.gid, {}};
  // SO_PEERGROUPS fails with ERANGE and the needed length when the buffer is too small.
  std::vector<gid_t> groups(64);
  for (int attempt = 0; attempt < 4; ++attempt) {
    socklen_t bytes = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &bytes) == 0) {
      groups.resize(bytes / sizeof(gid_t));
      peer.groups = std::move(groups);
      return peer;
    }
    if (errno != ERANGE) return Error::fromErrno("SO_PEERGROUPS");
    groups.resize(bytes / sizeof(gid_t) + 1);
  }
  return Error("SO_PEERGROUPS: the group list keeps growing");
}

}  // namespace vmmd::qmp
