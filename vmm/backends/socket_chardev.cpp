#include "vmm/backends/socket_chardev.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "qmp/unix_socket.h"

namespace vmmd {

Result<std::unique_ptr<SocketChardev>> SocketChardev::listen(uv_loop_t* loop, const config::ChardevConfig& config) {
  std::string owner = "chardev '" + config.id + "'";
  auto listener = openSocketListener(owner, config, 4);
  if (!listener) return listener.error();
  auto chardev = std::make_unique<SocketChardev>(config.id, qmp::boundPath(listener->get()), loop);
  chardev->owns_path_ = config.fd < 0;  // a socket passed by fd stays where its owner bound it
  auto server = std::make_unique<uv_pipe_t>();
  if (int rc = uv_pipe_init(loop, server.get(), 0); rc < 0) return Error(owner + ": " + uv_strerror(rc));
  chardev->server_.reset(server.release());
  chardev->server_->data = chardev.get();
  if (int rc = uv_pipe_open(chardev->server_.get(), listener->get()); rc < 0) {
    return Error(owner + ": " + chardev->path_ + ": " + uv_strerror(rc));
  }
  listener->release();  // the pipe handle closes it
  int rc = uv_listen(reinterpret_cast<uv_stream_t*>(chardev->server_.get()), 4, [](uv_stream_t* server, int status) {
    if (status == 0) static_cast<SocketChardev*>(server->data)->onConnection();
  });
  if (rc < 0) return Error(owner + ": listen " + chardev->path_ + ": " + uv_strerror(rc));

  auto async = std::make_unique<uv_async_t>();
  uv_async_init(loop, async.get(), [](uv_async_t* handle) {
    auto* self = static_cast<SocketChardev*>(handle->data);
    std::lock_guard lock(self->mutex_);
    if (self->writer_ && !self->backlog_.empty() && !self->writable_poll_) {
      auto poll = std::make_unique<uv_poll_t>();
      if (uv_poll_init(self->loop_, poll.get(), self->writer_.get()) != 0) return;
      self->writable_poll_.reset(poll.release());
      self->writable_poll_->data = self;
      uv_poll_start(self->writable_poll_.get(), UV_WRITABLE, [](uv_poll_t* p, int, int) {
        auto* me = static_cast<SocketChardev*>(p->data);
        std::lock_guard inner(me->mutex_);
        me->flushLocked();
        if (me->backlog_.empty()) me->writable_poll_.reset();
      });
    }
  });
  chardev->flush_async_.reset(async.release());
  chardev->flush_async_->data = chardev.get();
  return chardev;
}

SocketChardev::SocketChardev(std::string id, std::string path, uv_loop_t* loop)
    : Chardev(std::move(id)), path_(std::move(path)), loop_(loop) {}

SocketChardev::~SocketChardev() {
  std::lock_guard lock(mutex_);
  writable_poll_.reset();
  writer_.reset();
  if (server_ && owns_path_) ::unlink(path_.c_str());
}

bool SocketChardev::connected() const {
  std::lock_guard lock(mutex_);
  return writer_.valid();
}

uint64_t SocketChardev::droppedBytes() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

void SocketChardev::onConnection() {
  auto client = std::make_unique<uv_pipe_t>();
  uv_pipe_init(loop_, client.get(), 0);
  UvHandle<uv_pipe_t> accepted(client.release());
  if (uv_accept(reinterpret_cast<uv_stream_t*>(server_.get()), reinterpret_cast<uv_stream_t*>(accepted.get())) != 0) return;
  if (client_) return;  // one client at a time: the newcomer is closed as `accepted` dies
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(accepted.get()), &fd) != 0) return;
  UniqueFd writer(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!writer) return;
  client_ = std::move(accepted);
  client_->data = this;
  {
    std::lock_guard lock(mutex_);
    writer_ = std::move(writer);
    backlog_.clear();
  }
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(client_.get()),
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        static thread_local char buffer[16384];
        *buf = uv_buf_init(buffer, sizeof buffer);
      },
      [](uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
        static_cast<SocketChardev*>(stream->data)->onClientData(nread, buf);
      });
}

void SocketChardev::onClientData(ssize_t nread, const uv_buf_t* buf) {
  if (nread > 0) {
    deliver({reinterpret_cast<const uint8_t*>(buf->base), static_cast<size_t>(nread)});
    return;
  }
  if (nread < 0) dropClient();
}

void SocketChardev::dropClient() {
  {
    std::lock_guard lock(mutex_);
    writable_poll_.reset();
    writer_.reset();
    backlog_.clear();
  }
  client_.reset();
}

void SocketChardev::flushLocked() {
  while (writer_ && !backlog_.empty()) {
    ssize_t n = ::send(writer_.get(), backlog_.data(), backlog_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      backlog_.erase(backlog_.begin(), backlog_.begin() + n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    dropped_ += backlog_.size();  // the peer is gone; the read side notices and cleans up
    backlog_.clear();
    return;
  }
}

void SocketChardev::write(std::span<const uint8_t> bytes) {
  std::lock_guard lock(mutex_);
  if (!writer_) {
    dropped_ += bytes.size();
    return;
  }
  bool was_empty = backlog_.empty();
  size_t room = kMaxBacklog - std::min(kMaxBacklog, backlog_.size());
  size_t kept = std::min(room, bytes.size());
  backlog_.insert(backlog_.end(), bytes.begin(), bytes.begin() + static_cast<long>(kept));
  dropped_ += bytes.size() - kept;
  if (!was_empty) return;  // a flush is already pending
  flushLocked();
  if (!backlog_.empty()) uv_async_send(flush_async_.get());
}

}  // namespace vmmd
