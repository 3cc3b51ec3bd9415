#include "qmp/uv_client.h"

#include <signal.h>

#include <cerrno>

#include "base/fd_passing.h"
#include "base/uv_handle.h"
#include "qmp/json_stream_reader.h"
#include "qmp/session.h"
#include "qmp/uv_output.h"

namespace vmmd::qmp {
namespace {

constexpr uint64_t kNegotiationId = 0;

}  // namespace

struct UvClient::Connection {
  uv_pipe_t pipe{};
  uv_connect_t connectReq{};
  UvClient* owner;  // null once the owner let go
  JsonStreamReader reader;
  UvOutput output;
  char buffer[64 * 1024];
  bool closing = false;

  explicit Connection(UvClient* o)
      : owner(o),
        reader([this](Result<Json>&& m) {
          if (owner && !closing) owner->onMessage(std::move(m));
        }),
        output(reinterpret_cast<uv_stream_t*>(&pipe), [this](int status) {
          if (status < 0 && owner && !closing) owner->fail(Error(std::string("QMP write: ") + uv_strerror(status)));
        }) {
    pipe.data = this;
    connectReq.data = this;
  }

  void closeHandle() {
    if (closing) return;
    closing = true;
    output.stop();
    closeAndDelete(this, &pipe);
  }
};

UvClient::UvClient(uv_loop_t* loop) : loop_(loop) {
  greeting_.SetObject();
  ::signal(SIGPIPE, SIG_IGN);  // a worker that dies mid-write must not take the daemon with it
}

UvClient::~UvClient() {
  pending_.clear();
  connectDone_ = nullptr;
  onDisconnect = nullptr;
  close();
}

void UvClient::begin(std::function<void(Status)> done) {
  close();
  greeted_ = ready_ = false;
  connectDone_ = std::move(done);
  auto conn = std::make_unique<Connection>(this);
  uv_pipe_init(loop_, &conn->pipe, 0);
  conn_ = conn.release();
}

void UvClient::connect(const std::string& path, std::function<void(Status)> done) {
  begin(std::move(done));
  uv_pipe_connect(&conn_->connectReq, &conn_->pipe, path.c_str(), [](uv_connect_t* req, int status) {
    auto* c = static_cast<Connection*>(req->data);
    if (!c->owner || c->closing) return;
    UvClient* self = c->owner;
    if (status < 0) {
      self->fail(Error(std::string("connect: ") + uv_strerror(status), -status));
      return;
    }
    self->startReading();
  });
}

void UvClient::open(UniqueFd fd, std::function<void(Status)> done) {
  begin(std::move(done));
  if (int rc = uv_pipe_open(&conn_->pipe, fd.get()); rc < 0) {
    fail(Error(std::string("open: ") + uv_strerror(rc), -rc));
    return;
  }
  fd.release();  // the pipe handle closes it
  startReading();
}

void UvClient::startReading() {
  auto* c = conn_;
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&c->pipe),
      readIntoBuffer<Connection>,
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        auto* cc = static_cast<Connection*>(s->data);
        if (!cc->owner || cc->closing) return;
        if (n < 0) {
          cc->owner->fail(Error(n == UV_EOF ? std::string("QMP connection closed")
                                            : std::string("QMP read: ") + uv_strerror(static_cast<int>(n))));
          return;
        }
        cc->reader.feed(std::string_view(buf->base, static_cast<size_t>(n)));
      });
}

void UvClient::sendLine(std::string line) {
  if (!conn_ || conn_->closing) return;
  int rc = conn_->output.send(line);
  if (rc < 0) fail(Error(std::string("QMP write: ") + uv_strerror(rc)));
}

void UvClient::execute(std::string_view command, const JsonValue* args, ReplyCallback callback) {
  if (!conn_) {
    callback(Error("QMP client not connected"));
    return;
  }
  uint64_t id = nextId_++;
  std::string line;
  appendCommand(line, command, args, std::to_string(id));
  pending_.emplace(id, std::move(callback));
  if (!ready_) {
    held_ += line;
    return;
  }
  sendLine(std::move(line));
}

void UvClient::executeWithFd(std::string_view command, const JsonValue* args, int fd, ReplyCallback callback) {
  if (!conn_ || conn_->closing || !ready_) {
    callback(Error("QMP client not connected", ENOTCONN));
    return;
  }
  if (conn_->output.backlog() > 0) {
    callback(Error("cannot pass a descriptor with '" + std::string(command) + "' now: output is queued", EAGAIN));
    return;
  }
  uv_os_fd_t socket_fd = -1;
  if (int rc = uv_fileno(reinterpret_cast<uv_handle_t*>(&conn_->pipe), &socket_fd); rc < 0) {
    callback(Error(std::string("QMP socket: ") + uv_strerror(rc)));
    return;
  }
  uint64_t id = nextId_++;
  std::string line;
  appendCommand(line, command, args, std::to_string(id));
  ssize_t sent = sendWithFd(socket_fd, line.data(), line.size(), fd);
  if (sent < 0) {
    callback(Error::fromErrno("QMP write of '" + std::string(command) + "' with a descriptor"));
    return;
  }
  pending_.emplace(id, std::move(callback));
  // The descriptor went with the first byte; the rest (a full socket buffer) follows as usual.
  if (static_cast<size_t>(sent) < line.size()) sendLine(line.substr(static_cast<size_t>(sent)));
}

void UvClient::onMessage(Result<Json>&& message) {
  if (!message) {
    fail(message.error().withContext("bad JSON from QMP server"));
    return;
  }
  Json& m = *message;
  if (!m.IsObject()) return;
  if (!greeted_) {
    // QEMU 7.2 can send an event before its greeting to a client that connects while it starts:
    // passed on like any other event.
    if (m.HasMember("event")) {
      if (onEvent) onEvent(m);
      return;
    }
    if (!m.HasMember("QMP")) {
      fail(Error("not a QMP greeting: " + toJson(m)));
      return;
    }
    greeted_ = true;
    greeting_ = std::move(m);
    sendLine("{\"execute\": \"qmp_capabilities\", \"id\": " + std::to_string(kNegotiationId) + "}\r\n");
    return;
  }
  if (m.HasMember("event")) {
    if (onEvent) onEvent(m);
    return;
  }
  auto idIt = m.FindMember("id");
  if (idIt == m.MemberEnd() || !idIt->value.IsUint64()) return;  // not one of ours
  uint64_t id = idIt->value.GetUint64();
  auto ret = m.FindMember("return");
  auto err = m.FindMember("error");
  if (!ready_ && id == kNegotiationId) {
    if (ret == m.MemberEnd()) {
      fail(Error("qmp_capabilities: " + (err != m.MemberEnd() ? QmpError::fromJson(err->value).desc : toJson(m))));
      return;
    }
    ready_ = true;
    if (!held_.empty()) sendLine(std::exchange(held_, {}));
    if (auto done = std::exchange(connectDone_, nullptr)) done({});
    return;
  }
  auto p = pending_.find(id);
  if (p == pending_.end()) return;
  ReplyCallback callback = std::move(p->second);
  pending_.erase(p);
  if (ret != m.MemberEnd()) {
    callback(CommandResult(jsonCopy(ret->value)));
  } else if (err != m.MemberEnd()) {
    callback(CommandResult(QmpError::fromJson(err->value)));
  } else {
    callback(Error("malformed QMP reply: " + toJson(m)));
  }
}

void UvClient::fail(const Error& why) {
  bool wasOpen = conn_ != nullptr;
  close();
  auto pending = std::move(pending_);
  pending_.clear();
  held_.clear();
  if (auto done = std::exchange(connectDone_, nullptr)) done(why);
  for (auto& [id, callback] : pending) callback(why);
  if (wasOpen && onDisconnect) onDisconnect(why);
}

void UvClient::close() {
  if (!conn_) return;
  conn_->owner = nullptr;
  conn_->closeHandle();
  conn_ = nullptr;
  ready_ = false;
}

}  // namespace vmmd::qmp
