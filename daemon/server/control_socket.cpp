#include "daemon/server/control_socket.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <memory>

#include "base/log.h"

namespace vmmd::daemon {

const PeerCredentials* peerOf(const qmp::Session& session) {
  return static_cast<const PeerCredentials*>(session.userData.get());
}

namespace {
bool isPowerOfTwo(uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }
}  // namespace

ControlSocket::ControlSocket(uv_loop_t* loop, qmp::UvServer& server, ControlSocketLimits limits)
    : loop_(loop), server_(server), limits_(limits), spare_fd_(::open("/dev/null", O_RDONLY | O_CLOEXEC)) {
  rlimit files{};
  uint64_t limit = ::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY ? files.rlim_cur : 1024;
  // What vmmd already holds (store, listeners, sanitizer runtimes) is not the clients' either.
  std::error_code ec;
  uint64_t in_use = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec)) {
    ++in_use;
  }
  uint64_t reserved = std::max<uint64_t>(limit / 4, 16) + in_use;
  max_clients_ = limit > reserved ? limit - reserved : 1;
  server_.onConnect = [this](qmp::Session& session) {
    session.userData = std::make_shared<PeerCredentials>(pending_);
    ++clients_per_uid_[pending_.uid];
    ++clients_;
  };
  server_.onDisconnect = [this](qmp::Session& session) {
    const PeerCredentials* peer = peerOf(session);
    if (!peer) return;
    --clients_;
    auto it = clients_per_uid_.find(peer->uid);
    if (it != clients_per_uid_.end() && --it->second == 0) clients_per_uid_.erase(it);
    if (onClientGone) onClientGone(session);
  };
}

ControlSocket::~ControlSocket() {
  server_.onConnect = nullptr;
  server_.onDisconnect = nullptr;
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
    rc = uv_poll_start(poll_.get(), UV_READABLE, &ControlSocket::onReadable);
  }
  if (rc < 0) return Error(std::string("watch the control socket: ") + uv_strerror(rc), -rc);
  return {};
}

void ControlSocket::onReadable(uv_poll_t* handle, int status, int) {
  if (status < 0) return;
  static_cast<ControlSocket*>(handle->data)->acceptAll();
}

void ControlSocket::acceptAll() {
  for (;;) {
    int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) {
        if (shedWithSpare()) continue;
        pauseAccepting();
        return;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        log::error(Error::fromErrno("accept on the control socket").message());
        pauseAccepting();
      }
      return;
    }
    UniqueFd connection(fd);
    auto credentials = qmp::peerCredentials(fd);
    if (!credentials) {
      log::warning("control client refused: cannot read its credentials: " + credentials.error().message());
      continue;
    }
    if (!admit(*credentials)) continue;
    pending_ = *credentials;
    if (auto st = server_.adoptConnectedFd(connection.release()); !st) log::warning("control client: " + st.error().message());
  }
}

bool ControlSocket::admit(const PeerCredentials& peer) {
  if (clients_ >= max_clients_) {
    if (isPowerOfTwo(++shed_)) {
      log::warning("control client " + peer.describe() + " refused: " + std::to_string(clients_) +
                   " clients hold every descriptor but those kept in reserve (" + std::to_string(shed_) + " refused so far)");
    }
    return false;
  }
  uint64_t cap = peer.uid == 0 ? uint64_t{limits_.per_user} * limits_.root_factor : limits_.per_user;
  auto it = clients_per_uid_.find(peer.uid);
  if (it == clients_per_uid_.end() || it->second < cap) return true;
  uint64_t refused = ++refusals_per_uid_[peer.uid];
  if (isPowerOfTwo(refused)) {
    log::warning("control client " + peer.describe() + " refused: uid " + std::to_string(peer.uid) + " already holds " +
                 std::to_string(it->second) + " connections (the cap; " + std::to_string(refused) + " refused so far)");
  }
  return false;
}

bool ControlSocket::shedWithSpare() {
  if (!spare_fd_) return false;
  spare_fd_.reset();
  int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) ::close(fd);
  spare_fd_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (isPowerOfTwo(++shed_)) {
    log::warning("control socket: out of file descriptors; closed a new connection at once (" + std::to_string(shed_) + " so far)");
  }
  return fd >= 0;
}

// Without a spare descriptor (or on an unexpected accept error) the listener would stay readable
// and the loop spin: stop watching it for 100 ms.
void ControlSocket::pauseAccepting() {
  if (!resume_timer_) {
    resume_timer_ = makeUvHandle<uv_timer_t>();
    uv_timer_init(loop_, resume_timer_.get());
    resume_timer_->data = this;
  }
  uv_poll_stop(poll_.get());
  uv_timer_start(resume_timer_.get(), [](uv_timer_t* timer) {
    auto* self = static_cast<ControlSocket*>(timer->data);
    if (!self->spare_fd_) self->spare_fd_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    uv_poll_start(self->poll_.get(), UV_READABLE, &ControlSocket::onReadable);
  }, 100, 0);
}

}  // namespace vmmd::daemon
