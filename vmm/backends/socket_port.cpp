#include "vmm/backends/socket_port.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "qmp/unix_socket.h"
#include "vmm/backends/chardev.h"

namespace vmmd {

Result<std::unique_ptr<SocketPort>> SocketPort::listen(uv_loop_t* loop, const config::ChardevConfig& config) {
  auto port = std::make_unique<SocketPort>(loop);
  auto update = UvLoopTrigger::create(loop, [raw = port.get()] { raw->updatePoll(); });
  if (!update) return update.error().withContext("chardev '" + config.id + "'");
  port->update_ = std::move(*update);
  auto listener = openSocketListener("chardev '" + config.id + "'", config, 4);
  if (!listener) return listener.error();
  port->listener_ = std::move(*listener);
  port->path_ = qmp::boundPath(port->listener_.get());
  port->owns_path_ = config.fd < 0;  // a socket passed by fd stays where its owner bound it
  auto poll = std::make_unique<uv_poll_t>();
  if (uv_poll_init(loop, poll.get(), port->listener_.get()) != 0) return Error("chardev '" + config.id + "': uv_poll_init");
  port->listen_poll_.reset(poll.release());
  port->listen_poll_->data = port.get();
  uv_poll_start(port->listen_poll_.get(), UV_READABLE, [](uv_poll_t* h, int status, int) {
    if (status == 0) static_cast<SocketPort*>(h->data)->accept();
  });
  return port;
}

SocketPort::~SocketPort() {
  client_poll_.reset();
  listen_poll_.reset();
  if (listener_ && owns_path_) ::unlink(path_.c_str());
}

void SocketPort::accept() {
  if (client_) {
    // One peer at a time: later ones wait in the backlog; stop polling until this one leaves.
    uv_poll_stop(listen_poll_.get());
    return;
  }
  UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  if (!fd) return;
  auto poll = std::make_unique<uv_poll_t>();
  if (uv_poll_init(loop_, poll.get(), fd.get()) != 0) return;
  client_ = std::move(fd);
  client_poll_.reset(poll.release());
  client_poll_->data = this;
  uv_poll_stop(listen_poll_.get());
  want_read_ = want_write_ = false;
  updatePoll();
  if (on_connection) on_connection(true);
}

void SocketPort::disconnect() {
  if (!client_) return;
  client_poll_.reset();  // closes the poll handle before its fd goes
  client_.reset();
  want_read_ = want_write_ = false;
  uv_poll_start(listen_poll_.get(), UV_READABLE, [](uv_poll_t* h, int status, int) {
    if (status == 0) static_cast<SocketPort*>(h->data)->accept();
  });
  if (on_connection) on_connection(false);
}

void SocketPort::updatePoll() {
  if (!client_poll_) return;
  // Always watch for hang-ups: a peer that leaves must be noticed even when nobody reads.
  int events = UV_DISCONNECT | (want_read_ ? UV_READABLE : 0) | (want_write_ ? UV_WRITABLE : 0);
  uv_poll_start(client_poll_.get(), events, [](uv_poll_t* h, int status, int ready) {
    auto* self = static_cast<SocketPort*>(h->data);
    if (status < 0 || (ready & UV_DISCONNECT && self->available() == 0)) {
      self->disconnect();
      return;
    }
    if ((ready & UV_WRITABLE) && self->want_write_) {
      self->want_write_ = false;
      self->updatePoll();
      if (self->on_writable) self->on_writable();
      if (!self->client_) return;
    }
    if ((ready & UV_READABLE) && self->want_read_ && self->on_readable) {
      if (self->available() == 0) {
        // Readable with nothing to read: the peer closed its end.
        char probe;
        if (::recv(self->client_.get(), &probe, 1, MSG_PEEK | MSG_DONTWAIT) == 0) {
          self->disconnect();
          return;
        }
      }
      self->on_readable();
    }
  });
}

size_t SocketPort::tryWrite(std::span<const uint8_t> bytes) {
  if (!client_ || bytes.empty()) return bytes.size();
  ssize_t n = ::send(client_.get(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n >= 0) return static_cast<size_t>(n);
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
  return bytes.size();  // the peer is gone; the poll reports the hang-up and we disconnect
}

size_t SocketPort::available() const {
  if (!client_) return 0;
  int waiting = 0;
  if (::ioctl(client_.get(), FIONREAD, &waiting) < 0) return 0;
  return static_cast<size_t>(waiting);
}

size_t SocketPort::tryRead(std::span<uint8_t> out) {
  if (!client_ || out.empty()) return 0;
  ssize_t n = ::recv(client_.get(), out.data(), out.size(), MSG_DONTWAIT);
  return n > 0 ? static_cast<size_t>(n) : 0;
}

void SocketPort::waitWritable() {
  want_write_ = true;
  update_->request();
}

void SocketPort::waitReadable(bool wanted) {
  if (want_read_.exchange(wanted) == wanted) return;
  update_->request();
}

}  // namespace vmmd
