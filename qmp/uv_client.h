// An asynchronous QMP client on a libuv loop, for the daemon talking to its workers: connect,
// negotiate, then send commands whose replies come back to per-command callbacks (matched by
// id, so several may be in flight), events to `onEvent`, and loss of the connection to
// `onDisconnect` (every pending command then completes with an Error).
//
//   UvClient worker(loop);
//   worker.onEvent = [&](const Json& e) { ... };
//   worker.connect("/run/vmmd/vms/db1/qmp.sock", [&](Status s) { ... });
//   worker.execute("query-status", nullptr, [&](Result<CommandResult>&& r) { ... });
// All calls and callbacks on the loop thread. Destroying the client closes the socket without
// running pending callbacks.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "base/unique_fd.h"
#include "qmp/command_registry.h"
#include "qmp/json.h"

namespace vmmd::qmp {

class UvClient {
 public:
  // The server's answer ({"return": V} as Json V, {"error": ...} as QmpError), or an Error when
  // the connection failed before it came.
  using ReplyCallback = std::function<void(Result<CommandResult>&& reply)>;

  explicit UvClient(uv_loop_t* loop);
  ~UvClient();
  UvClient(const UvClient&) = delete;
  UvClient& operator=(const UvClient&) = delete;

  // Connects, reads the greeting and negotiates; `done` gets the outcome.
  void connect(const std::string& path, std::function<void(Status)> done);
  // The same over a connected stream socket or pipe the caller made (a socketpair end whose other
  // end is an ssh process's stdin and stdout); the client owns and closes it.
  void open(UniqueFd fd, std::function<void(Status)> done);
  // Commands sent before negotiation completes are queued behind it.
  void execute(std::string_view command, const JsonValue* args, ReplyCallback callback);
  // As execute, with `fd` passed along (SCM_RIGHTS on the same message), as QEMU's `getfd` and
  // `add-fd` expect; the caller keeps its own copy. Only once negotiated and with nothing queued
  // to send (the descriptor must arrive with this command's first byte), else an Error (EAGAIN).
  void executeWithFd(std::string_view command, const JsonValue* args, int fd, ReplyCallback callback);
  void close();

  bool connected() const { return ready_; }
  const Json& greeting() const { return greeting_; }
  size_t pendingCommands() const { return pending_.size(); }

  std::function<void(const Json& event)> onEvent;
  std::function<void(const Error& why)> onDisconnect;

 private:
  struct Connection;
  void onMessage(Result<Json>&& message);
  void fail(const Error& why);
  void sendLine(std::string line);
  // A fresh connection object for connect/open (any previous one closed); `done` awaits the greeting.
  void begin(std::function<void(Status)> done);
  void startReading();

  uv_loop_t* loop_;
  Connection* conn_ = nullptr;  // owned; freed by its close callback
  Json greeting_;
  bool greeted_ = false;
  bool ready_ = false;
  std::function<void(Status)> connectDone_;
  std::string held_;  // requests issued before negotiation completed
  std::map<uint64_t, ReplyCallback> pending_;
  uint64_t nextId_ = 1;
};

}  // namespace vmmd::qmp
