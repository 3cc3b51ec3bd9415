#include "daemon/server/control_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <memory>

#include "base/log.h"

namespace vmmd::daemon {

const PeerCredentials* peerOf(const qmp::Session& session) {
  return static_cast<const PeerCredentials*>(session.userData.get());
}

ControlSocket::ControlSocket(uv_loop_t* loop, qmp::UvServer& server) : loop_(loop), server_(server) {
  server_.onConnect = [this](qmp::Session& session) { session.userData = std::make_shared<PeerCredentials>(pending_); };
}

ControlSocket::~ControlSocket() {
  server_.onConnect = nullptr;
  if (!unlink_path_.empty()) ::unlink(unlink_path_.c_str());
}

Status ControlSocket::listen(const std::string& path, std::optional<gid_t> gid) {
  // A socket left by an earlier vmmd is replaced (the pid-file lock ensures it is not running).
  // Bound with no access for others from the first instant; chmod widens to the group below.
  auto fd = qmp::listenUnix(path, 128, 0600);
  if (!fd) return fd.error();
  unlink_path_ = path;
  if (gid && ::chown(path.c_str(), static_cast<uid_t>(-1), *gid) < 0) return Error::fromErrno("chown " + path + " to gid " + std::to_string(*gid));
  if (::chmod(path.c_str(), 0660) < 0) return Error::fromErrno("chmod " + path);
  listen_fd_ = std::move(*fd);
  return watch();
}

Status ControlSocket::adopt(int fd) {
  listen_fd_.reset(fd);
  return watch();
}

Status ControlSocket::watch() {
  poll_ = makeUvHandle<uv_poll_t>();
  poll_->data = this;
  int rc = uv_poll_init(loop_, poll_.get(), listen_fd_.get());
  if (rc == 0) {
    rc = uv_poll_start(poll_.get(), UV_READABLE, [](uv_poll_t* handle, int status, int) {
      if (status < 0) return;
      static_cast<ControlSocket*>(handle->data)->acceptAll();
    });
  }
  if (rc < 0) return Error(std::string("watch the control socket: ") + uv_strerror(rc), -rc);
  return {};
}

void ControlSocket::acceptAll() {
  for (;;) {
    int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) log::error(Error::fromErrno("accept on the control socket").message());
      return;  // EMFILE and friends: try again at the next readiness
    }
    auto credentials = qmp::peerCredentials(fd);
    pending_ = credentials ? *credentials : PeerCredentials{};
    if (auto st = server_.adoptConnectedFd(fd); !st) log::warning("control client: " + st.error().message());
  }
}

}  // namespace vmmd::daemon
