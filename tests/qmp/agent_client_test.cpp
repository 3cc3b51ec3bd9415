// AgentClient against the real qemu-ga (unix-listen mode on the host), and against a scripted
// peer on a socketpair for what a real agent never sends: garbage, stale replies, malformed or
// oversized JSON, a peer that vanishes mid-command.
#include "qmp/agent_client.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <functional>
#include <thread>
#include <vector>

#include "qemu_ga.h"
#include "qmp/unix_socket.h"

namespace vmmd::qmp {
namespace {

using namespace std::chrono_literals;

// ---- the real agent ----

class RealAgent : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::findQemuGa().empty()) GTEST_SKIP() << "qemu-ga is not installed (scripts/install-deps.sh)";
    ASSERT_TRUE(agent_.start());
  }
  testing::QemuGa agent_{::testing::UnitTest::GetInstance()->current_test_info()->name()};
};

TEST_F(RealAgent, PingInfoAndOsinfo) {
  auto c = AgentClient::connect(agent_.socket());
  ASSERT_TRUE(c.ok()) << c.error().message();
  ASSERT_TRUE(c->sync(5s).ok());
  auto ping = c->execute("guest-ping", nullptr, 5s);
  ASSERT_TRUE(ping.ok()) << ping.error().message();
  EXPECT_TRUE(ping->IsObject() && ping->ObjectEmpty());
  auto info = c->execute("guest-info", nullptr, 5s);
  ASSERT_TRUE(info.ok());
  ASSERT_TRUE((*info)["version"].IsString());
  EXPECT_TRUE((*info)["supported_commands"].IsArray());
  auto os = c->execute("guest-get-osinfo", nullptr, 5s);
  ASSERT_TRUE(os.ok());
  EXPECT_TRUE((*os)["kernel-release"].IsString());
}

TEST_F(RealAgent, AgentErrorsKeepClassAndDesc) {
  auto c = AgentClient::connect(agent_.socket());
  ASSERT_TRUE(c.ok());
  auto r = c->execute("no-such-command", nullptr, 5s);
  ASSERT_FALSE(r.ok());
  ASSERT_TRUE(c->lastError().has_value());
  EXPECT_EQ(c->lastError()->errorClass, "CommandNotFound");
  EXPECT_NE(r.error().message().find("no-such-command"), std::string::npos);
  // The session stays usable after an agent error.
  EXPECT_TRUE(c->execute("guest-ping", nullptr, 5s).ok());
}

TEST_F(RealAgent, ExecReportsOutputAndExitCode) {
  auto c = AgentClient::connect(agent_.socket());
  ASSERT_TRUE(c.ok());
  Json args = parseJson(R"({"path": "/bin/sh", "arg": ["-c", "echo out; echo err >&2; exit 3"],
                            "capture-output": true})").value();
  auto started = c->execute("guest-exec", &args, 5s);
  ASSERT_TRUE(started.ok()) << started.error().message();
  Json statusArgs = jsonObject();
  statusArgs.AddMember("pid", (*started)["pid"].GetInt64(), statusArgs.GetAllocator());
  for (;;) {
    auto st = c->execute("guest-exec-status", &statusArgs, 5s);
    ASSERT_TRUE(st.ok());
    if (!(*st)["exited"].GetBool()) {
      std::this_thread::sleep_for(10ms);
      continue;
    }
    EXPECT_EQ((*st)["exitcode"].GetInt(), 3);
    EXPECT_STREQ((*st)["out-data"].GetString(), "b3V0Cg==");  // "out\n"
    EXPECT_STREQ((*st)["err-data"].GetString(), "ZXJyCg==");  // "err\n"
    break;
  }
}

TEST_F(RealAgent, SyncDiscardsWhatAnEarlierClientLeftBehind) {
  {
    // A client that leaves half a request in the agent's parser. (It reads the reply to its
    // ping first: qemu-ga 7.2 in unix-listen mode exits when a client resets the connection,
    // which closing with unread data does.)
    auto early = AgentClient::connect(agent_.socket());
    ASSERT_TRUE(early.ok());
    const char junk[] = "{\"execute\": \"guest-ping\"}\n{\"execute\": \"guest-in";
    ASSERT_EQ(::send(early->fd(), junk, sizeof junk - 1, MSG_NOSIGNAL), ssize_t(sizeof junk - 1));
    pollfd p{early->fd(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1);
    char reply[256];
    EXPECT_GT(::recv(early->fd(), reply, sizeof reply, 0), 0);
  }
  auto c = AgentClient::connect(agent_.socket());
  ASSERT_TRUE(c.ok());
  Status synced = c->sync(5s);
  ASSERT_TRUE(synced.ok()) << synced.error().message();
  auto info = c->execute("guest-info", nullptr, 5s);
  ASSERT_TRUE(info.ok()) << info.error().message();
  EXPECT_TRUE(info->HasMember("version"));
}

TEST_F(RealAgent, RestartedAgentIsReachedAgainAfterAResync) {
  auto c = AgentClient::connect(agent_.socket());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->execute("guest-ping", nullptr, 5s).ok());
  agent_.stop();
  auto lost = c->execute("guest-ping", nullptr, 2s);
  ASSERT_FALSE(lost.ok());
  EXPECT_FALSE(c->synced());
  ASSERT_TRUE(agent_.start());
  auto again = AgentClient::connect(agent_.socket());
  ASSERT_TRUE(again.ok());
  auto ping = again->execute("guest-ping", nullptr, 5s);
  EXPECT_TRUE(ping.ok()) << ping.error().message();
}

TEST_F(RealAgent, BusyChannelIsReportedAsNotConnectedWithinTheTimeout) {
  // qemu-ga serves one client at a time: a second one is accepted by the kernel but never answered.
  auto holder = AgentClient::connect(agent_.socket());
  ASSERT_TRUE(holder.ok());
  ASSERT_TRUE(holder->sync(5s).ok());
  auto second = AgentClient::connect(agent_.socket());
  ASSERT_TRUE(second.ok());
  Status s = second->sync(300ms);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ENOTCONN);
  EXPECT_EQ(s.error().message(), "guest agent is not connected (no answer to guest-sync-delimited within 300 ms)");
}

TEST(AgentClient, MissingSocketIsNotConnected) {
  auto c = AgentClient::connect("/tmp/vmmd-no-such-agent-" + std::to_string(::getpid()) + ".sock");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), ENOTCONN);
  EXPECT_EQ(c.error().message().rfind("guest agent is not connected", 0), 0u) << c.error().message();
}

TEST(AgentClient, ShutdownCommandsHaveNoSuccessReply) {
  EXPECT_TRUE(agentCommandHasNoSuccessReply("guest-shutdown"));
  EXPECT_TRUE(agentCommandHasNoSuccessReply("guest-suspend-ram"));
  EXPECT_FALSE(agentCommandHasNoSuccessReply("guest-ping"));
}

// ---- a listener whose queue is full ----

// A Unix listener with backlog 0 that accepts nobody: one client fills its queue, the next
// connect() gets EAGAIN, as with a qemu-ga busy with one client and more queued behind it.
class FullListener {
 public:
  FullListener() : path_("/tmp/vmmd-agent-busy-" + std::to_string(::getpid()) + ".sock") {
    ::unlink(path_.c_str());
    auto listener = listenUnix(path_, 0);
    EXPECT_TRUE(listener.ok()) << listener.error().message();
    if (listener) listener_ = std::move(*listener);
    // Fill the queue with plain connects until one would block.
    for (int i = 0; i < 8; ++i) {
      auto c = connectUnix(path_, true);
      if (!c) break;
      queued_.push_back(std::move(*c));
    }
  }
  ~FullListener() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }
  // Accepts (and drops) every queued connection: the queue has room again.
  void drain() {
    for (size_t i = 0; i < queued_.size(); ++i) UniqueFd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  }

 private:
  std::string path_;
  UniqueFd listener_;
  std::vector<UniqueFd> queued_;
};

TEST(AgentClient, FullListenQueueIsBusyNotAbsent) {
  FullListener busy;
  auto at_once = AgentClient::connect(busy.path());
  ASSERT_FALSE(at_once.ok());
  EXPECT_EQ(at_once.error().code(), ENOTCONN);
  EXPECT_NE(at_once.error().message().find("listen queue stayed full (busy)"), std::string::npos)
      << at_once.error().message();
}

TEST(AgentClient, FullListenQueueIsWaitedForWithinBusyWait) {
  FullListener busy;
  std::thread drainer([&busy] {
    std::this_thread::sleep_for(100ms);
    busy.drain();
  });
  auto c = AgentClient::connect(busy.path(), 10s);
  drainer.join();
  EXPECT_TRUE(c.ok()) << c.error().message();
}

// ---- a scripted peer ----

// The peer end of a socketpair, run on a thread: reads the client's lines, answers with `script`.
class Peer {
 public:
  using Script = std::function<void(Peer&)>;
  explicit Peer(Script script) {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    client_ = AgentClient::adopt(UniqueFd(fds[0]));
    fd_.reset(fds[1]);
    thread_ = std::thread([this, script = std::move(script)] { script(*this); });
  }
  ~Peer() {
    if (thread_.joinable()) thread_.join();
  }
  AgentClient& client() { return *client_; }
  // Closes the client's end, so that a peer still sending gets EPIPE instead of blocking.
  void closeClient() { client_.reset(); }

  // The next request line (without a leading 0xFF) as JSON; a null Json when the client is gone.
  Json readRequest() {
    for (;;) {
      if (auto nl = pending_.find('\n'); nl != std::string::npos) {
        std::string line = pending_.substr(0, nl);
        pending_.erase(0, nl + 1);
        if (!line.empty() && static_cast<unsigned char>(line[0]) == kAgentDelimiter) line.erase(0, 1);
        auto j = parseJson(line);
        return j ? std::move(*j) : Json();
      }
      char buf[4096];
      ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
      if (n <= 0) return Json();
      pending_.append(buf, static_cast<size_t>(n));
    }
  }
  // The id of a guest-sync-delimited request, or of any other request.
  static std::string syncId(const Json& r) { return toJson(r["arguments"]["id"]); }
  static std::string requestId(const Json& r) { return toJson(r["id"]); }
  // Reads a guest-sync-delimited request and answers it as the agent does.
  void answerSync() {
    Json sync = readRequest();
    send("\xff{\"return\": " + syncId(sync) + "}\n");
  }
  void send(std::string_view bytes) { ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL); }
  void close() { fd_.reset(); }

 private:
  std::optional<AgentClient> client_;
  UniqueFd fd_;
  std::string pending_;
  std::thread thread_;
};

TEST(AgentClient, SyncSkipsGarbageStaleRepliesAndOtherIds) {
  Peer peer([](Peer& p) {
    Json sync = p.readRequest();
    // Garbage before the delimiter, a stale delimited reply, then ours.
    p.send("\x01\x02 not json {\"return\": 1}\n\xff{\"return\": 12345}\n\xff{\"return\": " + Peer::syncId(sync) + "}\n");
    Json ping = p.readRequest();
    p.send(R"({"return": {"stale": true}, "id": 77})" "\n");
    p.send(R"({"error": {"class": "GenericError", "desc": "JSON parse error"}})" "\n");
    p.send(R"({"return": {}, "id": )" + Peer::requestId(ping) + "}\n");
  });
  auto r = peer.client().execute("guest-ping", nullptr, 5s);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_TRUE(r->IsObject() && r->ObjectEmpty());
}

TEST(AgentClient, SilentPeerIsNotConnectedAfterTheTimeout) {
  Peer peer([](Peer& p) { p.readRequest(); });
  auto r = peer.client().execute("guest-ping", nullptr, 200ms);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ENOTCONN);
}

TEST(AgentClient, MalformedReplyIsAnErrorAndTheNextRequestResyncs) {
  Peer peer([](Peer& p) {
    p.answerSync();
    p.readRequest();
    p.send("{\"return\": [1, 2,,]}\n");
    Json sync2 = p.readRequest();
    EXPECT_EQ(toJson(sync2["execute"]), "\"guest-sync-delimited\"");
    p.send("\xff{\"return\": " + Peer::syncId(sync2) + "}\n");
    Json ping = p.readRequest();
    p.send(R"({"return": {}, "id": )" + Peer::requestId(ping) + "}\n");
  });
  auto bad = peer.client().execute("guest-ping", nullptr, 5s);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("malformed reply from the guest agent"), std::string::npos) << bad.error().message();
  EXPECT_FALSE(peer.client().synced());
  auto good = peer.client().execute("guest-ping", nullptr, 5s);
  EXPECT_TRUE(good.ok()) << good.error().message();
}

TEST(AgentClient, HugeReplyIsRefusedWithoutBufferingItWhole) {
  Peer peer([](Peer& p) {
    p.answerSync();
    p.readRequest();
    std::string chunk(1 << 20, 'a');
    p.send("{\"return\": \"");
    for (size_t sent = 0; sent <= AgentClient::kMaxReplyBytes + (2u << 20); sent += chunk.size()) p.send(chunk);
    p.send("\"}\n");
  });
  auto r = peer.client().execute("guest-file-read", nullptr, 30s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("malformed reply"), std::string::npos) << r.error().message();
  peer.closeClient();
}

TEST(AgentClient, AgentVanishingMidCommandIsAnErrorNotAHang) {
  Peer peer([](Peer& p) {
    p.answerSync();
    p.readRequest();
    p.send("{\"return\": {\"pa");
    p.close();
  });
  auto r = peer.client().execute("guest-info", nullptr, 30s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ECONNRESET);
}

TEST(AgentClient, ShutdownWithoutReplyIsAcceptedAndAnErrorIsReported) {
  Peer peer([](Peer& p) {
    p.answerSync();
    Json bad = p.readRequest();
    p.send(R"({"error": {"class": "GenericError", "desc": "mode is invalid"}, "id": )" + Peer::requestId(bad) + "}\n");
    p.answerSync();
    p.readRequest();
    p.close();  // the guest goes down without answering
  });
  Json badArgs = parseJson(R"({"mode": "bogus"})").value();
  auto refused = peer.client().execute("guest-shutdown", &badArgs, 5s);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(peer.client().lastError()->desc, "mode is invalid");
  auto accepted = peer.client().execute("guest-shutdown", nullptr, 5s);
  EXPECT_TRUE(accepted.ok()) << accepted.error().message();
}

TEST(AgentClient, RequestMustNameACommand) {
  Peer peer([](Peer&) {});
  Json notObject = parseJson("[1]").value();
  EXPECT_FALSE(peer.client().request(notObject, 1s).ok());
  Json noExecute = parseJson(R"({"arguments": {}})").value();
  EXPECT_FALSE(peer.client().request(noExecute, 1s).ok());
}

}  // namespace
}  // namespace vmmd::qmp
