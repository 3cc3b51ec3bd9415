#include "qmp/agent_client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <thread>

#include "qmp/unix_socket.h"

namespace vmmd::qmp {
namespace {

Error notConnected(std::string_view why) {
  return Error(std::string(kAgentNotConnected) + " (" + std::string(why) + ")", ENOTCONN);
}

int msLeft(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, INT32_MAX));
}

// Ids start at a random point so that a reply left over from another client (or an earlier run
// of this one) cannot carry an id we are about to use. 2^53 keeps them exact in any JSON reader.
uint64_t randomStartId() {
  std::random_device rd;
  uint64_t v = (uint64_t{rd()} << 32) ^ rd();
  return (v & ((uint64_t{1} << 52) - 1)) + 1;
}

std::string_view commandOf(const JsonValue& request) {
  auto it = request.FindMember("execute");
  return it != request.MemberEnd() && it->value.IsString() ? jsonStringView(it->value) : std::string_view();
}

}  // namespace

bool agentCommandHasNoSuccessReply(std::string_view command) {
  return command == "guest-shutdown" || command == "guest-suspend-disk" || command == "guest-suspend-ram" ||
         command == "guest-suspend-hybrid";
}

AgentClient::AgentClient(UniqueFd fd)
    : fd_(std::move(fd)), inbox_(std::make_unique<std::deque<Result<Json>>>()), nextId_(randomStartId()) {
  auto* inbox = inbox_.get();
  reader_ = std::make_unique<JsonStreamReader>([inbox](Result<Json>&& m) { inbox->push_back(std::move(m)); },
                                               kMaxReplyBytes);
}

AgentClient::AgentClient(AgentClient&&) noexcept = default;
AgentClient& AgentClient::operator=(AgentClient&&) noexcept = default;
AgentClient::~AgentClient() {
  if (!fd_) return;
  // Closing with unread bytes makes the kernel reset the connection, and qemu-ga in unix-listen
  // mode exits on a reset: take in whatever has arrived first.
  char buf[4096];
  while (::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT) > 0) {
  }
}

Result<AgentClient> AgentClient::connect(const std::string& path, Duration busy_wait) {
  const auto deadline = Clock::now() + busy_wait;
  auto pause = std::chrono::milliseconds(5);
  for (;;) {
    // Non-blocking: a listener whose backlog is full (another client holds the channel) must not
    // stall us past `busy_wait`.
    auto fd = connectUnix(path, true);
    if (fd) return AgentClient(std::move(*fd));
    int err = fd.error().code();
    if (err == EINTR) continue;
    // EAGAIN on a Unix socket: the listener is there but its backlog is full. qemu-ga listens with
    // a tiny backlog and serves one client at a time, so this clears once the clients queued
    // ahead of us (often ones that already gave up) are accepted and dropped.
    if (err == EAGAIN && Clock::now() + pause < deadline) {
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(50));
      continue;
    }
    if (err == EAGAIN) return notConnected("connect " + path + ": the agent's listen queue stayed full (busy)");
    if (err == ENOENT || err == ECONNREFUSED) return notConnected("connect " + path + ": " + std::strerror(err));
    return Error::fromErrno("connect to the guest agent socket " + path, err);
  }
}

AgentClient AgentClient::adopt(UniqueFd fd) {
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags >= 0) ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK);
  return AgentClient(std::move(fd));
}

Error AgentClient::fail(Error error) {
  synced_ = false;
  return error;
}

Status AgentClient::sendAll(std::string_view bytes, Clock::time_point deadline) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n >= 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return Error::fromErrno("send to the guest agent");
    pollfd p{fd_.get(), POLLOUT, 0};
    int left = msLeft(deadline);
    if (left == 0) return Error("timed out sending to the guest agent", ETIMEDOUT);
    if (::poll(&p, 1, left) < 0 && errno != EINTR) return Error::fromErrno("poll the guest agent socket");
  }
  return {};
}

Status AgentClient::readOnce(Clock::time_point deadline) {
  pollfd p{fd_.get(), POLLIN, 0};
  for (;;) {
    int rc = ::poll(&p, 1, msLeft(deadline));
    if (rc > 0) break;
    if (rc == 0) return Error("timed out", ETIMEDOUT);
    if (errno != EINTR) return Error::fromErrno("poll the guest agent socket");
  }
  char buf[65536];
  ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN) return {};
    return Error::fromErrno("read from the guest agent");
  }
  if (n == 0) return Error("the guest agent socket was closed", ECONNRESET);
  std::string_view data(buf, static_cast<size_t>(n));
  // A 0xFF starts a fresh message (it precedes guest-sync-delimited replies and can never be part
  // of JSON text), so whatever was half read before it is dropped.
  while (!data.empty()) {
    size_t pos = data.find(static_cast<char>(kAgentDelimiter));
    if (!discard_until_delimiter_) reader_->feed(data.substr(0, pos));
    if (pos == std::string_view::npos) break;
    reader_->reset();
    discard_until_delimiter_ = false;
    data.remove_prefix(pos + 1);
  }
  return {};
}

Status AgentClient::sync(Duration timeout) {
  auto deadline = Clock::now() + timeout;
  synced_ = false;
  inbox_->clear();
  reader_->reset();
  discard_until_delimiter_ = true;
  uint64_t id = nextId_++;
  std::string line(1, static_cast<char>(kAgentDelimiter));
  line += R"({"execute": "guest-sync-delimited", "arguments": {"id": )" + std::to_string(id) + "}}\n";
  if (Status s = sendAll(line, deadline); !s) {
    return notConnected("guest-sync-delimited: " + s.error().message());
  }
  for (;;) {
    while (inbox_->empty()) {
      if (Status s = readOnce(deadline); !s) {
        if (s.error().code() == ETIMEDOUT) {
          return notConnected("no answer to guest-sync-delimited within " + std::to_string(timeout.count()) + " ms");
        }
        return notConnected("guest-sync-delimited: " + s.error().message());
      }
    }
    Result<Json> m = std::move(inbox_->front());
    inbox_->pop_front();
    // Anything but our reply (errors about the 0xFF, stale replies, garbage) is what the
    // resynchronisation exists to skip.
    if (!m || !m->IsObject()) continue;
    auto ret = m->FindMember("return");
    if (ret != m->MemberEnd() && ret->value.IsUint64() && ret->value.GetUint64() == id) {
      synced_ = true;
      inbox_->clear();
      return {};
    }
  }
}

Result<Json> AgentClient::awaitReply(const std::string& idJson, Clock::time_point deadline) {
  for (;;) {
    while (inbox_->empty()) {
      if (Status s = readOnce(deadline); !s) return fail(s.error());
    }
    Result<Json> m = std::move(inbox_->front());
    inbox_->pop_front();
    if (!m) return fail(m.error().withContext("malformed reply from the guest agent"));
    if (!m->IsObject()) return fail(Error("malformed reply from the guest agent: not an object: " + toJson(*m)));
    auto id = m->FindMember("id");
    // Replies to someone else's request (or parse errors about bytes we never sent) are skipped.
    if (id == m->MemberEnd() || toJson(id->value) != idJson) continue;
    m->RemoveMember("id");
    return m;
  }
}

Result<Json> AgentClient::awaitNoSuccessReply(const std::string& idJson, Clock::time_point deadline) {
  auto grace = std::min(deadline, Clock::now() + kNoReplyGrace);
  Result<Json> reply = awaitReply(idJson, grace);
  // The command was accepted when no error came back in time, or when the agent went away (the
  // guest is shutting down). Either way what the channel holds now is unknown: sync next time.
  synced_ = false;
  if (reply) return reply;
  if (reply.error().code() == ETIMEDOUT || reply.error().code() == ECONNRESET) {
    Json ok = jsonObject();
    ok.AddMember("return", JsonValue(rapidjson::kObjectType), ok.GetAllocator());
    return ok;
  }
  return reply;
}

Result<Json> AgentClient::request(const JsonValue& req, Duration timeout) {
  auto deadline = Clock::now() + timeout;
  lastError_.reset();
  std::string_view command = req.IsObject() ? commandOf(req) : std::string_view();
  if (command.empty()) return Error(R"(an agent request is an object with "execute": "command-name")");
  if (!synced_) {
    if (Status s = sync(timeout); !s) return s.error();
  }
  Json copy = jsonCopy(req);
  copy.RemoveMember("id");
  std::string idJson = std::to_string(nextId_++);
  copy.AddMember("id", JsonValue(nextId_ - 1), copy.GetAllocator());
  std::string line = toJson(copy);
  line += '\n';
  if (Status s = sendAll(line, deadline); !s) return fail(s.error().withContext(std::string(command)));
  Result<Json> reply = agentCommandHasNoSuccessReply(command) ? awaitNoSuccessReply(idJson, deadline)
                                                              : awaitReply(idJson, deadline);
  if (!reply && reply.error().code() == ETIMEDOUT) {
    return Error("guest agent did not answer " + std::string(command) + " within " + std::to_string(timeout.count()) +
                     " ms",
                 ETIMEDOUT);
  }
  if (!reply) return reply.error().withContext(std::string(command));
  if (!reply->HasMember("return") && !reply->HasMember("error")) {
    return fail(Error("malformed reply from the guest agent to " + std::string(command) + ": " + toJson(*reply)));
  }
  return reply;
}

Result<Json> AgentClient::execute(std::string_view command, const JsonValue* args, Duration timeout) {
  Json req = jsonObject();
  auto& a = req.GetAllocator();
  req.AddMember("execute", jsonString(command, a), a);
  if (args) req.AddMember("arguments", JsonValue(*args, a), a);
  Result<Json> reply = request(req, timeout);
  if (!reply) return reply;
  if (auto ret = reply->FindMember("return"); ret != reply->MemberEnd()) return jsonCopy(ret->value);
  auto err = reply->FindMember("error");
  lastError_ = err->value.IsObject() ? QmpError::fromJson(err->value) : QmpError::generic(toJson(err->value));
  return Error(std::string(command) + ": " + lastError_->desc);
}

}  // namespace vmmd::qmp
