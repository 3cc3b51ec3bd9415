// A QMP server on a libuv loop: listens on a Unix socket (or adopts a listening or an
// already-connected fd), runs one qmp::Session per client, broadcasts events to every
// negotiated client, and bounds what a client can make it hold: past `pauseReadingAbove` bytes of
// unsent output (or `maxQueuedRequests` requests behind a deferred reply) it stops reading that
// client, past `disconnectAbove` it drops the client. Writes go straight out with uv_try_write
// when nothing is queued. A client that leaves mid-command harms nothing (its pending Reply
// becomes a no-op).
//
// The worker: UvServer qmp(loop, registry, {{versionJson}}); qmp.listen("/run/.../qmp.sock");
// then qmp.broadcastEvent("STOP") on state changes. Several `-qmp`/`-mon` sockets: one UvServer
// each, sharing the registry. The daemon does the same for its control socket.
// Constructing one sets SIGPIPE to ignored (a vanished client must not kill the process).
// All calls on the loop thread. Destroying the server closes its handles; run the loop once
// more afterwards so libuv can finish closing them.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "qmp/command_registry.h"
#include "qmp/session.h"

namespace vmmd::qmp {

struct UvServerOptions {
  SessionOptions session = {};
  size_t pauseReadingAbove = size_t{1} << 20;  // unsent output bytes per client
  size_t disconnectAbove = size_t{64} << 20;   // hard per-client output limit
  size_t maxQueuedRequests = 8;                // as QEMU's QMP_REQ_QUEUE_LEN_MAX
  // Bytes a client may send between two complete messages; past it the client gets a GenericError
  // and is disconnected, so its partial message never takes more. 0: only the session's own
  // parser limit (QEMU's 64 MiB, answered with an error, the connection kept), as QEMU does.
  size_t maxMessageBytes = 0;
  // A client that has not negotiated, or holds an unfinished message, this long after its last
  // complete message (or its connection) is disconnected. 0: never. A negotiated client that
  // only waits (for events, for a long command's reply) is not idle.
  uint64_t idleTimeoutMs = 0;
  // Descriptors a client may pass with its messages (SCM_RIGHTS, for QEMU's getfd; see
  // Session::takePassedFd), held per client at most. 0: none are taken (the socket is read
  // without ancillary data, so the kernel closes any that come).
  size_t maxPassedFds = 0;
};

class UvServer {
 public:
  UvServer(uv_loop_t* loop, const CommandRegistry& registry, UvServerOptions options = {});
  ~UvServer();
  UvServer(const UvServer&) = delete;
  UvServer& operator=(const UvServer&) = delete;

  // Binds and listens on `path` (qmp::listenUnix: a stale socket is replaced, any other file refused).
  Status listen(const std::string& path);
  // Takes ownership of a socket that is already bound and listening (an fd passed by the parent,
  // systemd activation); it is closed on failure too. `unlink_path`: the socket file to remove on
  // close(), for one this process bound.
  Status adoptListeningFd(int fd, std::string unlink_path = {});
  // Takes ownership of one already-connected socket and serves it as a client.
  Status adoptConnectedFd(int fd);

  // Sends an event to every negotiated client; `data` may be null (no "data" member).
  void broadcastEvent(std::string_view name, const JsonValue* data = nullptr);
  void broadcastEventLine(std::string_view eventLine);

  // Stops listening (removing the socket file it created) and disconnects every client.
  void close();

  size_t clientCount() const { return clients_.size(); }
  // Visits every connected client's session (e.g. for per-client event filtering).
  void forEachSession(const std::function<void(Session&)>& visit);
  // Unsent output bytes held for all clients (for tests and monitoring).
  size_t bufferedOutputBytes() const;

  // Optional observers, called on the loop thread.
  std::function<void(Session&)> onConnect;
  std::function<void(Session&)> onDisconnect;

 private:
  struct Client;
  struct Listener;
  friend struct Client;

  Status startClient(uv_pipe_t* pipe);
  void dropClient(Client* client);
  void scheduleResume(Client* client);
  void runResumes();
  void startIdleSweep();
  void dropIdleClients();
  static void onConnection(uv_stream_t* server, int status);

  uv_loop_t* loop_;
  const CommandRegistry& registry_;
  UvServerOptions options_;
  std::vector<Listener*> listeners_;  // owned; freed by their close callbacks
  std::vector<Client*> clients_;      // owned; freed by their close callbacks
  std::vector<Client*> toResume_;     // paused clients to re-check on the next loop turn
  struct ResumeTimer;
  ResumeTimer* resumeTimer_ = nullptr;  // owned; freed by its close callback
  ResumeTimer* idleTimer_ = nullptr;    // the idle sweep, same shape; owned likewise
  std::vector<char> readBuffer_;
};

}  // namespace vmmd::qmp
