#include "daemon/supervisor/console_relay.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <memory>

#include "base/uv_handle.h"
#include "qmp/unix_socket.h"

namespace vmmd::daemon {
namespace {

// An attached client that cannot keep up is dropped rather than letting its queue grow.
constexpr size_t kMaxClientQueue = 1 << 20;

}  // namespace

struct ConsoleRelay::Pipe {
  uv_pipe_t pipe{};
  uv_connect_t connect{};
  ConsoleRelay* relay = nullptr;  // null once the relay let go
  std::function<void(Status)> connected;
  bool closing = false;
  char buffer[16 * 1024];

  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&pipe); }
  void close() {
    if (closing) return;
    closing = true;
    closeAndDelete(this, &pipe);
  }
};

namespace {

struct WriteRequest {
  uv_write_t req{};
  std::string bytes;
};

}  // namespace

ConsoleRelay::ConsoleRelay(uv_loop_t* loop, std::string log_path) : loop_(loop), log_path_(std::move(log_path)) {
  log_.reset(::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
}

ConsoleRelay::~ConsoleRelay() {
  for (Pipe* p : {worker_, listener_}) {
    if (p) {
      p->relay = nullptr;
      p->close();
    }
  }
  for (Pipe* c : clients_) {
    c->relay = nullptr;
    c->close();
  }
  if (!attach_path_.empty()) ::unlink(attach_path_.c_str());
}

Status ConsoleRelay::listen(const std::string& attach_path, std::optional<gid_t> gid, std::optional<uid_t> owner_uid) {
  // Without an owner, the control socket's default: vmmd and its group.
  auto fd = qmp::listenUnix(attach_path, 16, owner_uid ? 0600 : 0660);
  if (!fd) return fd.error();
  attach_path_ = attach_path;
  auto listener = std::make_unique<Pipe>();
  listener->relay = this;
  uv_pipe_init(loop_, &listener->pipe, 0);
  listener->pipe.data = listener.get();
  listener_ = listener.release();
  int rc = uv_pipe_open(&listener_->pipe, fd->get());
  if (rc == 0) {
    fd->release();  // the pipe handle closes it
    rc = uv_listen(listener_->stream(), 16, &ConsoleRelay::onAccept);
  }
  if (rc < 0) {
    listener_->close();
    listener_ = nullptr;
    return Error("listen on " + attach_path + ": " + uv_strerror(rc), -rc);
  }
  if ((gid || owner_uid) &&
      ::chown(attach_path.c_str(), owner_uid.value_or(static_cast<uid_t>(-1)), gid.value_or(static_cast<gid_t>(-1))) < 0) {
    return Error::fromErrno("chown " + attach_path);
  }
  return {};
}

void ConsoleRelay::onAccept(uv_stream_t* server, int status) {
  auto* listener = static_cast<Pipe*>(server->data);
  ConsoleRelay* self = listener->relay;
  if (!self || status < 0) return;
  auto client = std::make_unique<Pipe>();
  client->relay = self;
  uv_pipe_init(self->loop_, &client->pipe, 0);
  client->pipe.data = client.get();
  Pipe* raw = client.release();
  if (uv_accept(server, raw->stream()) < 0) {
    raw->close();
    return;
  }
  self->clients_.push_back(raw);
  uv_read_start(raw->stream(), readIntoBuffer<ConsoleRelay::Pipe>, [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
    auto* c = static_cast<Pipe*>(s->data);
    if (!c->relay || c->closing) return;
    if (n < 0) {
      c->relay->drop(c);
      return;
    }
    c->relay->onClientInput(std::string_view(buf->base, static_cast<size_t>(n)));
  });
  self->send(raw, self->backlog_);
}

void ConsoleRelay::connectWorker(const std::string& console_socket, std::function<void(Status)> done) {
  auto worker = std::make_unique<Pipe>();
  worker->relay = this;
  worker->connected = std::move(done);
  uv_pipe_init(loop_, &worker->pipe, 0);
  worker->pipe.data = worker.get();
  worker->connect.data = worker.get();
  worker_ = worker.release();
  uv_pipe_connect(&worker_->connect, &worker_->pipe, console_socket.c_str(), [](uv_connect_t* req, int status) {
    auto* w = static_cast<Pipe*>(req->data);
    if (!w->relay || w->closing) return;
    auto done = std::move(w->connected);
    if (status < 0) {
      done(Error(std::string("connect to the console: ") + uv_strerror(status), -status));
      return;
    }
    uv_read_start(w->stream(), readIntoBuffer<ConsoleRelay::Pipe>, [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
      auto* ww = static_cast<Pipe*>(s->data);
      if (!ww->relay || ww->closing) return;
      if (n < 0) {
        // The worker is going away; its exit is reported through the process, not here.
        uv_read_stop(s);
        return;
      }
      ww->relay->onGuestOutput(std::string_view(buf->base, static_cast<size_t>(n)));
    });
    done({});
  });
}

void ConsoleRelay::onGuestOutput(std::string_view bytes) {
  backlog_.append(bytes);
  if (backlog_.size() > kBacklogBytes) backlog_.erase(0, backlog_.size() - kBacklogBytes);
  if (log_) {
    struct stat st{};
    if (::fstat(log_.get(), &st) == 0 && st.st_size > kMaxLogBytes) (void)!::ftruncate(log_.get(), 0);
    // Best effort: a full disk must not stop the console.
    (void)!::write(log_.get(), bytes.data(), bytes.size());
  }
  std::vector<Pipe*> targets = clients_;
  for (Pipe* c : targets) send(c, bytes);
}

void ConsoleRelay::onClientInput(std::string_view bytes) {
  if (worker_ && !worker_->closing) send(worker_, bytes);
}

void ConsoleRelay::send(Pipe* pipe, std::string_view bytes) {
  if (bytes.empty() || pipe->closing) return;
  if (uv_stream_get_write_queue_size(pipe->stream()) > kMaxClientQueue) {
    if (pipe != worker_) drop(pipe);
    return;
  }
  auto request = std::make_unique<WriteRequest>();
  request->bytes.assign(bytes);
  request->req.data = request.get();
  uv_buf_t buf = uv_buf_init(request->bytes.data(), static_cast<unsigned>(request->bytes.size()));
  int rc = uv_write(&request->req, pipe->stream(), &buf, 1,
                    [](uv_write_t* req, int) { std::unique_ptr<WriteRequest> done(static_cast<WriteRequest*>(req->data)); });
  if (rc == 0) {
    request.release();  // freed by the write callback
  } else if (pipe != worker_) {
    drop(pipe);
  }
}

void ConsoleRelay::drop(Pipe* pipe) {
  clients_.erase(std::remove(clients_.begin(), clients_.end(), pipe), clients_.end());
  pipe->relay = nullptr;
  pipe->close();
}

}  // namespace vmmd::daemon
