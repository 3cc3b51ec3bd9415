// A blocking QMP client (vmctl, tests, tools): connects to a Unix socket, reads the greeting,
// negotiates capabilities, then runs commands one at a time. Events that arrive meanwhile are
// queued for readEvent(). Works against QEMU, `vmm` and `vmmd` alike.
//
//   auto c = SyncClient::connect("/run/vmmd/vmmd.sock", 5s);
//   if (!c) fail(c.error());
//   Result<Json> r = c->execute("query-status");   // the "return" value
//   if (!r) ... c->lastError() has the QMP class and desc when the server answered an error
#pragma once

#include <chrono>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "base/unique_fd.h"
#include "qmp/command_registry.h"
#include "qmp/json.h"
#include "qmp/json_stream_reader.h"

namespace vmmd::qmp {

class SyncClient {
 public:
  using Duration = std::chrono::milliseconds;

  // Retries while the socket is missing or refusing until `timeout`; negotiates unless told not.
  // A server that has accepted gets what is left of `timeout` to greet and negotiate, or
  // `answer_timeout` when that is longer (a busy server is there, only slow to answer).
  static Result<SyncClient> connect(const std::string& path, Duration timeout, bool negotiate = true,
                                    Duration answer_timeout = Duration(0));
  // Serves an already-connected socket (reads the greeting from it).
  static Result<SyncClient> adopt(UniqueFd fd, Duration timeout, bool negotiate = true);

  SyncClient(SyncClient&&) noexcept;
  SyncClient& operator=(SyncClient&&) noexcept;
  ~SyncClient();

  const Json& greeting() const { return *greeting_; }
  Status negotiate(bool enableOob = false, Duration timeout = Duration(5000));

  // Runs one command; the value of "return", or an Error whose message is the QMP desc (then
  // lastError() holds class and desc) or what failed on the socket.
  Result<Json> execute(std::string_view command, const JsonValue* args = nullptr, Duration timeout = Duration(30000));
  const std::optional<QmpError>& lastError() const { return lastError_; }
  // Sends `request` (an object; an "id" is added when missing) and returns the whole reply object.
  Result<Json> request(const JsonValue& request, Duration timeout = Duration(30000));

  // The next event (queued ones first), or an Error on timeout.
  Result<Json> readEvent(Duration timeout);
  size_t queuedEvents() const { return events_.size(); }

  // Low level, for tests: raw bytes out, the next message in (events included).
  Status sendRaw(std::string_view bytes);
  Result<Json> readMessage(Duration timeout);

  int fd() const { return fd_.get(); }

 private:
  explicit SyncClient(UniqueFd fd);
  Result<Json> readReply(const std::string& idJson, Duration timeout);

  UniqueFd fd_;
  std::unique_ptr<JsonStreamReader> reader_;
  std::unique_ptr<std::deque<Result<Json>>> inbox_;  // stable address for the reader's sink
  std::deque<Json> events_;
  std::optional<Json> greeting_;
  std::optional<QmpError> lastError_;
  uint64_t nextId_ = 1;
};

}  // namespace vmmd::qmp
