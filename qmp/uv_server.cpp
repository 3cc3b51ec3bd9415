#include "qmp/uv_server.h"

#include "base/uv_handle.h"
#include "qmp/unix_socket.h"
#include "qmp/uv_output.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>

namespace vmmd::qmp {
namespace {

constexpr size_t kReadChunk = 64 * 1024;
// Input is handed to the session in slices so that a burst of requests cannot produce
// unbounded output before the backlog check runs.
constexpr size_t kFeedSlice = 4 * 1024;

Error uvError(std::string_view what, int rc) { return Error(std::string(what) + ": " + uv_strerror(rc), -rc); }

}  // namespace

struct UvServer::Listener {
  uv_pipe_t pipe{};
  UvServer* server = nullptr;
  std::string unlinkPath;
};

// Re-checks paused clients on the next loop turn rather than from inside the output call
// that made room (which may run inside another session's handler).
struct UvServer::ResumeTimer {
  uv_timer_t timer{};
  UvServer* server = nullptr;
};

struct UvServer::Client {
  uv_pipe_t pipe{};
  UvServer* server = nullptr;
  std::shared_ptr<Session> session;
  UvOutput output{reinterpret_cast<uv_stream_t*>(&pipe), [this](int status) { onWritten(status); }};
  std::string unprocessed;  // input read but not yet fed (while paused)
  uint64_t seenMessages = 0;     // session->messagesParsed() at the last check
  size_t partialBytes = 0;       // raw bytes fed since the last complete message
  uint64_t lastProgressMs = 0;   // uv_now of the connection or the last complete message
  bool reading = false;
  bool closing = false;

  // Feeds one slice to the session and applies maxMessageBytes. False once the client is dropped.
  bool feedSlice(std::string_view slice) {
    session->feed(slice);
    if (closing) return false;
    if (session->messagesParsed() != seenMessages) {
      seenMessages = session->messagesParsed();
      partialBytes = session->bufferedInputBytes();  // what of the slice began the next message
      lastProgressMs = uv_now(server->loop_);
    } else {
      partialBytes += slice.size();
    }
    size_t limit = server->options_.maxMessageBytes;
    if (limit && partialBytes > limit) {
      std::string error;
      appendError(error, "GenericError", "message longer than " + std::to_string(limit) + " bytes: disconnecting", "");
      send(error);
      server->dropClient(this);
      return false;
    }
    return true;
  }

  bool idleSince(uint64_t nowMs) const {
    return (!session->negotiated() || partialBytes > 0) && nowMs - lastProgressMs >= server->options_.idleTimeoutMs;
  }

  size_t backlog() const { return output.backlog(); }

  void send(std::string_view message) {
    if (closing) return;
    if (output.send(message) < 0 || backlog() > server->options_.disconnectAbove) {
      server->dropClient(this);
      return;
    }
    // A reply can end a wait that paused this client (a deferred reply completing).
    if (!reading || !unprocessed.empty()) server->scheduleResume(this);
  }

  void onWritten(int status) {
    if (closing) return;
    if (status < 0) {
      server->dropClient(this);
      return;
    }
    process();
  }

  bool overLimits() const {
    return backlog() > server->options_.pauseReadingAbove ||
           session->queuedRequests() >= server->options_.maxQueuedRequests;
  }

  // Feeds stashed input, then resumes or pauses reading according to the limits.
  void process() {
    size_t done = 0;
    while (done < unprocessed.size() && !closing && !overLimits()) {
      size_t n = std::min(kFeedSlice, unprocessed.size() - done);
      if (!feedSlice(std::string_view(unprocessed).substr(done, n))) return;
      done += n;
    }
    if (closing) return;
    unprocessed.erase(0, done);
    updateReading();
  }

  void updateReading() {
    bool want = unprocessed.empty() && !overLimits();
    if (want && !reading) {
      if (uv_read_start(reinterpret_cast<uv_stream_t*>(&pipe), &Client::onAlloc, &Client::onRead) == 0) reading = true;
    } else if (!want && reading) {
      uv_read_stop(reinterpret_cast<uv_stream_t*>(&pipe));
      reading = false;
    }
  }

  static void onAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
    auto* self = static_cast<Client*>(handle->data);
    auto& b = self->server->readBuffer_;
    *buf = uv_buf_init(b.data(), static_cast<unsigned>(b.size()));
  }

  // The descriptors that came with the bytes being read go to the session before those bytes
  // (a getfd in them takes its descriptor).
  void takePassedFds() {
    auto* stream = reinterpret_cast<uv_stream_t*>(&pipe);
    while (uv_pipe_pending_count(&pipe) > 0) {
      auto holder = std::make_unique<uv_pipe_t>();
      uv_pipe_init(pipe.loop, holder.get(), 0);
      uv_os_fd_t fd = -1;
      if (uv_accept(stream, reinterpret_cast<uv_stream_t*>(holder.get())) == 0 &&
          uv_fileno(reinterpret_cast<uv_handle_t*>(holder.get()), &fd) == 0) {
        UniqueFd copy(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
        if (copy) session->addPassedFd(std::move(copy), server->options_.maxPassedFds);
      }
      uv_close(reinterpret_cast<uv_handle_t*>(holder.release()),
               [](uv_handle_t* h) { std::unique_ptr<uv_pipe_t> done(reinterpret_cast<uv_pipe_t*>(h)); });
    }
  }

  static void onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* self = static_cast<Client*>(stream->data);
    if (self->server->options_.maxPassedFds > 0 && !self->closing) self->takePassedFds();
    if (nread < 0) {
      self->server->dropClient(self);
      return;
    }
    std::string_view data(buf->base, static_cast<size_t>(nread));
    while (!data.empty() && !self->closing && !self->overLimits()) {
      size_t n = std::min(kFeedSlice, data.size());
      if (!self->feedSlice(data.substr(0, n))) return;
      data.remove_prefix(n);
    }
    if (self->closing) return;
    if (!data.empty()) self->unprocessed.append(data);
    self->updateReading();
  }

};

UvServer::UvServer(uv_loop_t* loop, const CommandRegistry& registry, UvServerOptions options)
    : loop_(loop), registry_(registry), options_(std::move(options)), readBuffer_(kReadChunk) {
  // A client that disconnects while we write to it must not kill the process (QEMU ignores
  // SIGPIPE too); libuv reports EPIPE instead.
  ::signal(SIGPIPE, SIG_IGN);
}

UvServer::~UvServer() {
  close();
  for (ResumeTimer* timer : {resumeTimer_, idleTimer_}) {
    if (!timer) continue;
    timer->server = nullptr;
    closeAndDelete(timer, &timer->timer);
  }
}

// One timer for every client: each sweep drops those idle past the timeout. A few sweeps per
// timeout bound the overshoot; the timer never keeps the loop alive on its own.
void UvServer::startIdleSweep() {
  if (options_.idleTimeoutMs == 0 || idleTimer_) return;
  auto timer = std::make_unique<ResumeTimer>();
  timer->server = this;
  uv_timer_init(loop_, &timer->timer);
  timer->timer.data = timer.get();
  idleTimer_ = timer.release();
  uint64_t period = std::clamp<uint64_t>(options_.idleTimeoutMs / 4, 10, 1000);
  uv_timer_start(&idleTimer_->timer, [](uv_timer_t* t) {
    auto* self = static_cast<ResumeTimer*>(t->data);
    if (self->server) self->server->dropIdleClients();
  }, period, period);
  uv_unref(reinterpret_cast<uv_handle_t*>(&idleTimer_->timer));
}

void UvServer::dropIdleClients() {
  uint64_t now = uv_now(loop_);
  std::vector<Client*> idle;
  for (Client* c : clients_) {
    if (!c->closing && c->idleSince(now)) idle.push_back(c);
  }
  for (Client* c : idle) dropClient(c);
}

void UvServer::scheduleResume(Client* client) {
  if (std::find(toResume_.begin(), toResume_.end(), client) == toResume_.end()) toResume_.push_back(client);
  if (!resumeTimer_) {
    auto timer = std::make_unique<ResumeTimer>();
    timer->server = this;
    uv_timer_init(loop_, &timer->timer);
    timer->timer.data = timer.get();
    resumeTimer_ = timer.release();
  }
  uv_timer_start(&resumeTimer_->timer, [](uv_timer_t* t) {
    auto* self = static_cast<ResumeTimer*>(t->data);
    if (self->server) self->server->runResumes();
  }, 0, 0);
}

void UvServer::runResumes() {
  std::vector<Client*> clients = std::move(toResume_);
  toResume_.clear();
  for (Client* c : clients) {
    if (!c->closing) c->process();
  }
}

Status UvServer::listen(const std::string& path) {
  auto fd = listenUnix(path);
  if (!fd) return fd.error();
  return adoptListeningFd(fd->release(), path);
}

Status UvServer::adoptListeningFd(int fd, std::string unlink_path) {
  auto listener = std::make_unique<Listener>();
  listener->server = this;
  uv_pipe_init(loop_, &listener->pipe, 0);
  listener->pipe.data = listener.get();
  int rc = uv_pipe_open(&listener->pipe, fd);
  if (rc < 0) ::close(fd);  // not the handle's: closing the handle below leaves it open
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener->pipe), 128, &UvServer::onConnection);
  if (rc < 0) {
    Listener* failed = listener.release();
    closeAndDelete(failed, &failed->pipe);
    if (!unlink_path.empty()) ::unlink(unlink_path.c_str());
    return uvError("listen on fd " + std::to_string(fd), rc);
  }
  listener->unlinkPath = std::move(unlink_path);
  listeners_.push_back(listener.release());
  return {};
}

Status UvServer::adoptConnectedFd(int fd) {
  auto client = std::make_unique<Client>();
  // ipc: read with recvmsg, so descriptors passed with the bytes can be taken.
  uv_pipe_init(loop_, &client->pipe, options_.maxPassedFds > 0 ? 1 : 0);
  client->pipe.data = client.get();
  int rc = uv_pipe_open(&client->pipe, fd);
  Client* raw = client.release();  // owned by the handle from here on
  if (rc < 0) {
    closeAndDelete(raw, &raw->pipe);
    return uvError("adopt fd " + std::to_string(fd), rc);
  }
  return startClient(&raw->pipe);
}

void UvServer::onConnection(uv_stream_t* stream, int status) {
  auto* listener = static_cast<Listener*>(stream->data);
  UvServer* self = listener->server;
  if (status < 0) return;
  auto client = std::make_unique<Client>();
  uv_pipe_init(self->loop_, &client->pipe, self->options_.maxPassedFds > 0 ? 1 : 0);
  client->pipe.data = client.get();
  Client* raw = client.release();
  if (uv_accept(stream, reinterpret_cast<uv_stream_t*>(&raw->pipe)) < 0) {
    closeAndDelete(raw, &raw->pipe);
    return;
  }
  (void)self->startClient(&raw->pipe);
}

Status UvServer::startClient(uv_pipe_t* pipe) {
  auto* client = static_cast<Client*>(pipe->data);
  client->server = this;
  client->session = Session::create(registry_, options_.session,
                                    [client](std::string_view message) { client->send(message); });
  client->lastProgressMs = uv_now(loop_);
  clients_.push_back(client);
  startIdleSweep();
  if (onConnect) onConnect(*client->session);
  client->session->start();
  if (!client->closing) client->updateReading();
  return {};
}

void UvServer::dropClient(Client* client) {
  if (client->closing) return;
  client->closing = true;
  client->output.stop();
  if (onDisconnect) onDisconnect(*client->session);
  client->session->close();
  clients_.erase(std::remove(clients_.begin(), clients_.end(), client), clients_.end());
  toResume_.erase(std::remove(toResume_.begin(), toResume_.end(), client), toResume_.end());
  closeAndDelete(client, &client->pipe);
}

void UvServer::broadcastEvent(std::string_view name, const JsonValue* data) {
  broadcastEventLine(formatEvent(name, data));
}

void UvServer::broadcastEventLine(std::string_view eventLine) {
  // A send can drop a client (hard limit); forEachSession copes with that.
  forEachSession([&](Session& session) { session.sendEvent(eventLine); });
}

void UvServer::forEachSession(const std::function<void(Session&)>& visit) {
  std::vector<Client*> targets = clients_;  // a visit may drop a client
  for (Client* c : targets) {
    if (!c->closing) visit(*c->session);
  }
}

size_t UvServer::bufferedOutputBytes() const {
  size_t total = 0;
  for (const Client* c : clients_) total += c->backlog();
  return total;
}

void UvServer::close() {
  for (Listener* l : listeners_) {
    if (!l->unlinkPath.empty()) ::unlink(l->unlinkPath.c_str());
    closeAndDelete(l, &l->pipe);
  }
  listeners_.clear();
  while (!clients_.empty()) dropClient(clients_.back());
}

}  // namespace vmmd::qmp
