#include "daemon/supervisor/stream_listener.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "base/log.h"
#include "qmp/unix_socket.h"

namespace vmmd::daemon {

Result<std::unique_ptr<StreamListener>> StreamListener::listen(uv_loop_t* loop, const std::string& path) {
  auto fd = qmp::listenUnix(path, 4, 0600);
  if (!fd) return fd.error().withContext("migration socket");
  std::unique_ptr<StreamListener> listener(new StreamListener(path, std::move(*fd)));
  listener->poll_ = makeUvHandle<uv_poll_t>();
  if (int rc = uv_poll_init(loop, listener->poll_.get(), listener->fd_.get()); rc < 0) {
    return Error(std::string("migration socket: ") + uv_strerror(rc));
  }
  listener->poll_->data = listener.get();
  return listener;
}

StreamListener::~StreamListener() { stop(); }

void StreamListener::onAccept(std::function<void(UniqueFd)> accepted) {
  accepted_ = std::move(accepted);
  uv_poll_start(poll_.get(), UV_READABLE, [](uv_poll_t* handle, int status, int) {
    if (status < 0) return;
    static_cast<StreamListener*>(handle->data)->acceptOne();
  });
}

void StreamListener::acceptOne() {
  int fd = ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) {
    if (errno != EAGAIN && errno != EINTR) log::warning(Error::fromErrno("accept on " + path_).message());
    return;
  }
  auto accepted = std::move(accepted_);
  stop();
  if (accepted) accepted(UniqueFd(fd));
  else ::close(fd);
}

void StreamListener::stop() {
  if (poll_) uv_poll_stop(poll_.get());
  if (fd_) {
    fd_.reset();
    ::unlink(path_.c_str());
  }
}

}  // namespace vmmd::daemon
