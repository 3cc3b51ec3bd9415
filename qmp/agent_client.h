// A blocking client of the QEMU guest agent (qemu-ga) on the host end of its channel: the Unix
// socket of the chardev behind the virtserialport named org.qemu.guest_agent.0 (or qemu-ga's own
// socket in `-m unix-listen` mode). Used by vmctl directly and by vmmd on a worker thread.
//
// The agent has no greeting and keeps no per-client state: whatever a previous client left half
// sent, or replies it never read, may still sit in the channel. sync() resynchronises as the qga
// schema prescribes for guest-sync-delimited: a 0xFF byte (resets the agent's JSON parser), then
// the command with a fresh random id; the agent puts 0xFF before its reply, and everything up to
// the reply with our id is discarded. Requests carry an "id" the agent echoes, so a stale reply
// is never taken for the answer to a later request.
//
//   auto c = AgentClient::connect("/run/vmmd/vms/web1/qga.sock");
//   if (!c) ...                                   // "guest agent is not connected: ..."
//   if (auto s = c->sync(5s); !s) ...             // nobody answering: same wording, ENOTCONN
//   Result<Json> info = c->execute("guest-info", nullptr, 5s);
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "base/unique_fd.h"
#include "qmp/command_registry.h"
#include "qmp/json.h"
#include "qmp/json_stream_reader.h"

namespace vmmd::qmp {

// What precedes guest-sync-delimited's reply (and resets the agent's parser when we send it).
inline constexpr unsigned char kAgentDelimiter = 0xFF;
// The wording of every "nobody there" failure; errors carry ENOTCONN as their code.
inline constexpr std::string_view kAgentNotConnected = "guest agent is not connected";

// True for the commands the agent does not answer when they succeed (qga schema:
// 'success-response': false): guest-shutdown and guest-suspend-{disk,ram,hybrid}.
bool agentCommandHasNoSuccessReply(std::string_view command);

class AgentClient {
 public:
  using Duration = std::chrono::milliseconds;
  // Biggest reply accepted: guest-exec-status may carry 16 MiB of output in base64.
  static constexpr size_t kMaxReplyBytes = size_t{32} << 20;
  // How long a command without a success reply (guest-shutdown) is given to report an error.
  static constexpr Duration kNoReplyGrace = Duration(2000);

  // Connects to an agent socket. A missing or refusing socket means no agent channel: an
  // ENOTCONN error at once. A listener whose queue is full (busy with other clients) is tried
  // again until `busy_wait` has passed.
  static Result<AgentClient> connect(const std::string& path, Duration busy_wait = Duration(0));
  // An already-connected stream socket (tests: one end of a socketpair).
  static AgentClient adopt(UniqueFd fd);

  AgentClient(AgentClient&&) noexcept;
  AgentClient& operator=(AgentClient&&) noexcept;
  ~AgentClient();

  // guest-sync-delimited round trip; on timeout "guest agent is not connected (no answer to
  // guest-sync-delimited within N ms)".
  Status sync(Duration timeout);
  // False after any failure that may have left the channel mid-message; request() then syncs first.
  bool synced() const { return synced_; }

  // Sends one request ({"execute": NAME, "arguments": {...}}; an "id" is added) and returns the
  // whole reply object: {"return": ...} or {"error": {...}}. `timeout` covers the sync too.
  Result<Json> request(const JsonValue& request, Duration timeout);
  // The reply's "return" value, or an Error with the agent's desc (lastError() keeps its class).
  Result<Json> execute(std::string_view command, const JsonValue* args, Duration timeout);
  const std::optional<QmpError>& lastError() const { return lastError_; }

  int fd() const { return fd_.get(); }

 private:
  explicit AgentClient(UniqueFd fd);
  using Clock = std::chrono::steady_clock;

  Status sendAll(std::string_view bytes, Clock::time_point deadline);
  // Reads once (waiting until `deadline`) and feeds the bytes: resets the reader at each 0xFF;
  // while `discard_until_delimiter_` drops everything before the next one.
  Status readOnce(Clock::time_point deadline);
  Result<Json> awaitReply(const std::string& idJson, Clock::time_point deadline);
  Result<Json> awaitNoSuccessReply(const std::string& idJson, Clock::time_point deadline);
  Error fail(Error error);

  UniqueFd fd_;
  std::unique_ptr<JsonStreamReader> reader_;
  std::unique_ptr<std::deque<Result<Json>>> inbox_;  // stable address for the reader's sink
  std::optional<QmpError> lastError_;
  bool synced_ = false;
  bool discard_until_delimiter_ = false;
  uint64_t nextId_;
};

}  // namespace vmmd::qmp
