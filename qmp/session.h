// One QMP connection's protocol state, independent of any I/O: feed it the bytes a client sent
// and it calls `output` with each complete server message (one JSON object + CRLF, formatted
// byte for byte as QEMU 7.2 does). It sends the greeting, handles capability negotiation (with
// "oob" when advertised), checks each request's shape and arguments with QEMU's error wording,
// echoes `id` verbatim, and runs the registry's handlers. In-band commands are answered in order:
// while a handler's reply is deferred, later in-band requests wait in `queuedRequests()` (the
// I/O owner should stop reading past a few, as QEMU stops at 8); "exec-oob" ones run at once.
//
// UvServer owns sessions for the worker and the daemon; a test can drive one directly:
//   auto s = Session::create(registry, {version}, [&](std::string_view m) { sent += m; });
//   s->start(); s->feed(R"({"execute": "qmp_capabilities"})");
// Sessions live on one thread (the loop's); create them with Session::create (Reply handles
// keep weak references to them).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/unique_fd.h"
#include "qmp/command_registry.h"
#include "qmp/json.h"
#include "qmp/json_stream_reader.h"

namespace vmmd::qmp {

struct SessionOptions {
  // The greeting's "version" object, e.g. {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}.
  std::string versionJson = R"({"qemu": {"micro": 0, "minor": 0, "major": 0}, "package": ""})";
  bool advertiseOob = true;
  size_t maxMessageBytes = JsonStreamReader::kDefaultMaxMessageBytes;
  size_t maxTokens = JsonStreamReader::kMaxTokens;
};

// One whole event line: {"timestamp": {...}, "event": NAME[, "data": DATA]} + CRLF, stamped now.
std::string formatEvent(std::string_view name, const JsonValue* data = nullptr);
// The greeting line for a version object given as JSON text.
std::string formatGreeting(std::string_view versionJson, bool advertiseOob);

class Session : public std::enable_shared_from_this<Session> {
 public:
  using Output = std::function<void(std::string_view message)>;

  static std::shared_ptr<Session> create(const CommandRegistry& registry, SessionOptions options, Output output);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Sends the greeting.
  void start();
  // Parses and dispatches every complete request in `bytes`.
  void feed(std::string_view bytes);
  // Sends a line made by formatEvent; dropped until negotiation completes (as QEMU).
  void sendEvent(std::string_view eventLine);
  void sendEvent(std::string_view name, const JsonValue* data) { sendEvent(formatEvent(name, data)); }
  // The client is gone: no further output; pending replies become no-ops.
  void close();

  bool negotiated() const { return negotiated_; }
  bool oobEnabled() const { return oobEnabled_; }
  bool closed() const { return closed_; }
  // In-band requests waiting behind a deferred reply.
  size_t queuedRequests() const { return queue_.size(); }
  bool replyPending() const { return busy_; }
  // Complete top-level values (requests or malformed ones) read so far: an owner that counts raw
  // bytes between two of them bounds a message without parsing (UvServer's maxMessageBytes).
  uint64_t messagesParsed() const { return messagesParsed_; }
  // Bytes held for the message being read (0 between messages).
  size_t bufferedInputBytes() const { return reader_.bufferedBytes(); }
  // Unique per process; lets owners key per-connection state.
  uint64_t id() const { return id_; }

  // Descriptors the client passed (SCM_RIGHTS; UvServerOptions::maxPassedFds) for QEMU's getfd:
  // the newest is taken, older ones are closed with it; at most `limit` are held.
  void addPassedFd(UniqueFd fd, size_t limit);
  std::optional<UniqueFd> takePassedFd();

  // Used by the built-in qmp_capabilities; the error when negotiation was already done.
  std::optional<QmpError> negotiate(bool enableOob);

  // Owner-defined per-connection data (e.g. the daemon's subscriptions).
  std::shared_ptr<void> userData;

 private:
  std::deque<UniqueFd> passedFds_;
  friend class Reply;
  Session(const CommandRegistry& registry, SessionOptions options, Output output);
  void onParsed(Result<Json>&& item);
  bool isOob(const Result<Json>& item) const;
  void dispatch(Result<Json>&& item);
  void replyDone(std::string_view message, bool oob);
  void drain();
  void write(std::string_view message);
  void writeError(const std::string& idJson, std::string_view errorClass, std::string_view desc);

  const CommandRegistry& registry_;
  SessionOptions options_;
  Output output_;
  JsonStreamReader reader_;
  std::deque<Result<Json>> queue_;
  std::string scratch_;
  uint64_t id_;
  uint64_t messagesParsed_ = 0;
  bool negotiated_ = false;
  bool oobEnabled_ = false;
  bool busy_ = false;
  bool draining_ = false;
  bool closed_ = false;
};

// Formats a reply exactly as QEMU: {"return": V, "id": ID} or {"id": ID, "error": {...}}, + CRLF.
void appendReturn(std::string& out, const JsonValue& value, std::string_view idJson);
void appendError(std::string& out, std::string_view errorClass, std::string_view desc, std::string_view idJson);
// A client's request line: {"execute": NAME[, "arguments": ARGS][, "id": ID]} + CRLF.
void appendCommand(std::string& out, std::string_view name, const JsonValue* args, std::string_view idJson);

}  // namespace vmmd::qmp
