#include "qmp/session.h"

#include <sys/time.h>

#include <atomic>
#include <cstdio>

namespace vmmd::qmp {
namespace {

std::atomic<uint64_t> nextSessionId{1};

const JsonValue& emptyObject() {
  static const JsonValue empty(rapidjson::kObjectType);
  return empty;
}

}  // namespace

void appendReturn(std::string& out, const JsonValue& value, std::string_view idJson) {
  out += "{\"return\": ";
  appendJson(out, value);
  if (!idJson.empty()) {
    out += ", \"id\": ";
    out += idJson;
  }
  out += "}\r\n";
}

void appendError(std::string& out, std::string_view errorClass, std::string_view desc, std::string_view idJson) {
  out += '{';
  if (!idJson.empty()) {
    out += "\"id\": ";
    out += idJson;
    out += ", ";
  }
  out += "\"error\": {\"class\": ";
  appendJsonString(out, errorClass);
  out += ", \"desc\": ";
  appendJsonString(out, desc);
  out += "}}\r\n";
}

void appendCommand(std::string& out, std::string_view name, const JsonValue* args, std::string_view idJson) {
  out += "{\"execute\": ";
  appendJsonString(out, name);
  if (args) {
    out += ", \"arguments\": ";
    appendJson(out, *args);
  }
  if (!idJson.empty()) {
    out += ", \"id\": ";
    out += idJson;
  }
  out += "}\r\n";
}

std::string formatEvent(std::string_view name, const JsonValue* data) {
  timeval now{};
  gettimeofday(&now, nullptr);
  char stamp[96];
  std::snprintf(stamp, sizeof stamp, "{\"timestamp\": {\"seconds\": %lld, \"microseconds\": %lld}, \"event\": ",
                static_cast<long long>(now.tv_sec), static_cast<long long>(now.tv_usec));
  std::string out = stamp;
  appendJsonString(out, name);
  if (data) {
    out += ", \"data\": ";
    appendJson(out, *data);
  }
  out += "}\r\n";
  return out;
}

std::string formatGreeting(std::string_view versionJson, bool advertiseOob) {
  std::string out = "{\"QMP\": {\"version\": ";
  out += versionJson;
  out += advertiseOob ? ", \"capabilities\": [\"oob\"]}}\r\n" : ", \"capabilities\": []}}\r\n";
  return out;
}

// ---- Reply ----

Reply::Reply(Reply&& other) noexcept
    : session_(std::move(other.session_)),
      idJson_(std::move(other.idJson_)),
      oob_(other.oob_),
      pending_(std::exchange(other.pending_, false)) {}

Reply& Reply::operator=(Reply&& other) noexcept {
  if (this != &other) {
    if (pending_) error(QmpError::generic("Command produced no reply"));
    session_ = std::move(other.session_);
    idJson_ = std::move(other.idJson_);
    oob_ = other.oob_;
    pending_ = std::exchange(other.pending_, false);
  }
  return *this;
}

Reply::~Reply() {
  if (pending_) error(QmpError::generic("Command produced no reply"));
}

void Reply::success(const JsonValue& value) {
  if (!pending_) return;
  std::string out;
  appendReturn(out, value, idJson_);
  send(std::move(out));
}

void Reply::success() { success(emptyObject()); }

void Reply::error(const QmpError& e) {
  if (!pending_) return;
  std::string out;
  appendError(out, e.errorClass, e.desc, idJson_);
  send(std::move(out));
}

void Reply::complete(const CommandResult& result) {
  if (const auto* value = std::get_if<Json>(&result)) {
    success(*value);
  } else {
    error(std::get<QmpError>(result));
  }
}

void Reply::send(std::string message) {
  pending_ = false;
  if (auto session = session_.lock()) session->replyDone(message, oob_);
  session_.reset();
}

// ---- Session ----

std::shared_ptr<Session> Session::create(const CommandRegistry& registry, SessionOptions options, Output output) {
  return std::shared_ptr<Session>(new Session(registry, std::move(options), std::move(output)));
}

Session::Session(const CommandRegistry& registry, SessionOptions options, Output output)
    : registry_(registry),
      options_(std::move(options)),
      output_(std::move(output)),
      reader_([this](Result<Json>&& item) { onParsed(std::move(item)); }, options_.maxMessageBytes, options_.maxTokens),
      id_(nextSessionId++) {}

Session::~Session() = default;

void Session::start() { write(formatGreeting(options_.versionJson, options_.advertiseOob)); }

void Session::feed(std::string_view bytes) {
  if (closed_) return;
  // Keep this session alive while handlers run, even if the owner drops it meanwhile.
  auto self = shared_from_this();
  reader_.feed(bytes);
}

void Session::sendEvent(std::string_view eventLine) {
  if (negotiated_) write(eventLine);
}

void Session::addPassedFd(UniqueFd fd, size_t limit) {
  passedFds_.push_back(std::move(fd));
  while (passedFds_.size() > limit) passedFds_.pop_front();
}

std::optional<UniqueFd> Session::takePassedFd() {
  if (passedFds_.empty()) return std::nullopt;
  UniqueFd newest = std::move(passedFds_.back());
  passedFds_.clear();
  return newest;
}

void Session::close() {
  closed_ = true;
  passedFds_.clear();
  queue_.clear();
  output_ = nullptr;
}

std::optional<QmpError> Session::negotiate(bool enableOob) {
  if (negotiated_) return QmpError{"CommandNotFound", "Capabilities negotiation is already complete, command ignored"};
  negotiated_ = true;
  oobEnabled_ = enableOob && options_.advertiseOob;
  return std::nullopt;
}

bool Session::isOob(const Result<Json>& item) const {
  if (!oobEnabled_ || !item.ok() || !item->IsObject()) return false;
  return item->HasMember("exec-oob") && !item->HasMember("execute");
}

void Session::onParsed(Result<Json>&& item) {
  ++messagesParsed_;
  if (closed_) return;
  if ((busy_ || !queue_.empty()) && !isOob(item)) {
    queue_.push_back(std::move(item));
    return;
  }
  dispatch(std::move(item));
}

void Session::write(std::string_view message) {
  if (!closed_ && output_) output_(message);
}

void Session::writeError(const std::string& idJson, std::string_view errorClass, std::string_view desc) {
  scratch_.clear();
  appendError(scratch_, errorClass, desc, idJson);
  write(scratch_);
}

// QEMU's order of checks (monitor/qmp.c, qapi/qmp-dispatch.c).
void Session::dispatch(Result<Json>&& item) {
  static const std::string kNoId;
  if (!item.ok()) {
    writeError(kNoId, "GenericError", item.error().message());
    return;
  }
  const Json& request = *item;
  if (!request.IsObject()) {
    writeError(kNoId, "GenericError", "QMP input must be a JSON object");
    return;
  }
  std::string idJson;
  if (auto it = request.FindMember("id"); it != request.MemberEnd()) appendJson(idJson, it->value);

  const JsonValue* execute = nullptr;
  const JsonValue* execOob = nullptr;
  const JsonValue* arguments = &emptyObject();
  for (const auto& member : request.GetObject()) {
    std::string_view key = jsonStringView(member.name);
    if (key == "execute" || (key == "exec-oob" && oobEnabled_)) {
      if (!member.value.IsString()) {
        writeError(idJson, "GenericError", "QMP input member '" + std::string(key) + "' must be a string");
        return;
      }
      if (execute || execOob) {
        writeError(idJson, "GenericError", "QMP input member 'execute' clashes with 'exec-oob'");
        return;
      }
      (key == "execute" ? execute : execOob) = &member.value;
    } else if (key == "arguments") {
      if (!member.value.IsObject()) {
        writeError(idJson, "GenericError", "QMP input member 'arguments' must be an object");
        return;
      }
      arguments = &member.value;
    } else if (key != "id") {
      writeError(idJson, "GenericError", "QMP input member '" + std::string(key) + "' is unexpected");
      return;
    }
  }
  if (!execute && !execOob) {
    writeError(idJson, "GenericError", "QMP input lacks member 'execute'");
    return;
  }
  std::string_view name = jsonStringView(execute ? *execute : *execOob);
  const CommandRegistry::Command* command = registry_.find(name);
  if (!negotiated_ && (!command || !(command->spec.flags & kAllowedBeforeNegotiation))) {
    writeError(idJson, "CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'");
    return;
  }
  if (!command) {
    writeError(idJson, "CommandNotFound", "The command " + std::string(name) + " has not been found");
    return;
  }
  bool oob = execOob != nullptr;
  if (oob && !(command->spec.flags & kAllowOob)) {
    writeError(idJson, "GenericError", "The command " + std::string(name) + " does not support OOB");
    return;
  }
  if (auto error = registry_.checkArguments(*command, *arguments)) {
    writeError(idJson, error->errorClass, error->desc);
    return;
  }
  if (!oob) busy_ = true;
  Reply reply(weak_from_this(), std::move(idJson), oob);
  Request call{name, *arguments, *this, reply};
  command->handler(call);
  // A reply the handler neither completed nor kept is answered by its destructor here.
}

void Session::replyDone(std::string_view message, bool oob) {
  write(message);
  if (oob) return;
  busy_ = false;
  drain();
}

void Session::drain() {
  if (draining_) return;  // the outer loop below picks up the rest
  draining_ = true;
  auto self = shared_from_this();
  while (!busy_ && !queue_.empty() && !closed_) {
    Result<Json> next = std::move(queue_.front());
    queue_.pop_front();
    dispatch(std::move(next));
  }
  draining_ = false;
}

}  // namespace vmmd::qmp
