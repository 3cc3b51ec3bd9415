#include "qmp/sync_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>

#include "qmp/session.h"
#include "qmp/unix_socket.h"

namespace vmmd::qmp {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

SyncClient::SyncClient(UniqueFd fd)
    : fd_(std::move(fd)), inbox_(std::make_unique<std::deque<Result<Json>>>()) {
  auto* inbox = inbox_.get();
  reader_ = std::make_unique<JsonStreamReader>([inbox](Result<Json>&& m) { inbox->push_back(std::move(m)); });
}

SyncClient::SyncClient(SyncClient&&) noexcept = default;
SyncClient& SyncClient::operator=(SyncClient&&) noexcept = default;
SyncClient::~SyncClient() = default;

Result<SyncClient> SyncClient::connect(const std::string& path, Duration timeout, bool negotiate, Duration answer_timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    Result<UniqueFd> fd = connectUnix(path);
    if (fd) {
      auto left = std::chrono::duration_cast<Duration>(deadline - Clock::now());
      return adopt(std::move(*fd), std::max({left, answer_timeout, Duration(1)}), negotiate);
    }
    int err = fd.error().code();
    bool retry = err == ENOENT || err == ECONNREFUSED || err == EAGAIN;
    if (!retry || Clock::now() >= deadline) return fd.error();
    std::this_thread::sleep_for(Duration(10));
  }
}

Result<SyncClient> SyncClient::adopt(UniqueFd fd, Duration timeout, bool negotiate) {
  SyncClient client(std::move(fd));
  auto deadline = Clock::now() + timeout;
  Result<Json> greeting = client.readMessage(timeout);
  // QEMU 7.2 can send an event before its greeting to a client that connects while it starts (a
  // RESUME was seen to): queued like any other event.
  while (greeting && greeting->IsObject() && greeting->HasMember("event")) {
    client.events_.push_back(std::move(*greeting));
    auto left = std::chrono::duration_cast<Duration>(deadline - Clock::now());
    greeting = client.readMessage(std::max(left, Duration(0)));
  }
  if (!greeting) return greeting.error().withContext("read QMP greeting");
  if (!greeting->IsObject() || !greeting->HasMember("QMP")) {
    return Error("not a QMP greeting: " + toJson(*greeting));
  }
  client.greeting_ = std::move(*greeting);
  if (negotiate) {
    Status s = client.negotiate(false, timeout);
    if (!s) return s.error();
  }
  return client;
}

Status SyncClient::negotiate(bool enableOob, Duration timeout) {
  Json args = jsonObject();
  if (enableOob) {
    JsonValue list(rapidjson::kArrayType);
    list.PushBack("oob", args.GetAllocator());
    args.AddMember("enable", list, args.GetAllocator());
  }
  Result<Json> r = execute("qmp_capabilities", &args, timeout);
  if (!r) return r.error().withContext("qmp_capabilities");
  return {};
}

Status SyncClient::sendRaw(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::fromErrno("send to QMP socket");
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Result<Json> SyncClient::readMessage(Duration timeout) {
  auto deadline = Clock::now() + timeout;
  char buf[65536];
  while (inbox_->empty()) {
    auto left = std::chrono::duration_cast<Duration>(deadline - Clock::now()).count();
    if (left <= 0) return Error("timed out waiting for a QMP message", ETIMEDOUT);
    pollfd p{fd_.get(), POLLIN, 0};
    int rc = ::poll(&p, 1, static_cast<int>(left));
    if (rc < 0 && errno != EINTR) return Error::fromErrno("poll QMP socket");
    if (rc <= 0) continue;
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Error::fromErrno("read QMP socket");
    }
    if (n == 0) return Error("QMP connection closed", ECONNRESET);
    reader_->feed(std::string_view(buf, static_cast<size_t>(n)));
  }
  Result<Json> m = std::move(inbox_->front());
  inbox_->pop_front();
  if (!m) return m.error().withContext("bad JSON from QMP server");
  return m;
}

Result<Json> SyncClient::readReply(const std::string& idJson, Duration timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<Duration>(deadline - Clock::now());
    Result<Json> m = readMessage(std::max(left, Duration(0)));
    if (!m) return m;
    if (!m->IsObject()) continue;
    if (m->HasMember("event")) {
      events_.push_back(std::move(*m));
      continue;
    }
    auto id = m->FindMember("id");
    // Replies to other requests (or errors without id to garbage we did not send) are skipped.
    if (id == m->MemberEnd() || toJson(id->value) != idJson) continue;
    return m;
  }
}

Result<Json> SyncClient::request(const JsonValue& req, Duration timeout) {
  Json copy = jsonCopy(req);
  if (!copy.IsObject()) return Error("a QMP request must be an object");
  if (!copy.HasMember("id")) copy.AddMember("id", JsonValue(nextId_++), copy.GetAllocator());
  std::string idJson = toJson(copy["id"]);
  std::string line = toJson(copy);
  line += "\r\n";
  if (Status s = sendRaw(line); !s) return s.error();
  return readReply(idJson, timeout);
}

Result<Json> SyncClient::execute(std::string_view command, const JsonValue* args, Duration timeout) {
  lastError_.reset();
  std::string idJson = std::to_string(nextId_++);
  std::string line;
  appendCommand(line, command, args, idJson);
  if (Status s = sendRaw(line); !s) return s.error();
  Result<Json> reply = readReply(idJson, timeout);
  if (!reply) return reply;
  if (auto ret = reply->FindMember("return"); ret != reply->MemberEnd()) return jsonCopy(ret->value);
  auto err = reply->FindMember("error");
  if (err != reply->MemberEnd() && err->value.IsObject()) {
    lastError_ = QmpError::fromJson(err->value);
    return Error(lastError_->desc);
  }
  return Error("malformed QMP reply: " + toJson(*reply));
}

Result<Json> SyncClient::readEvent(Duration timeout) {
  auto deadline = Clock::now() + timeout;
  while (events_.empty()) {
    auto left = std::chrono::duration_cast<Duration>(deadline - Clock::now());
    Result<Json> m = readMessage(std::max(left, Duration(0)));
    if (!m) return m;
    if (m->IsObject() && m->HasMember("event")) events_.push_back(std::move(*m));
  }
  Json e = std::move(events_.front());
  events_.pop_front();
  return e;
}

}  // namespace vmmd::qmp
