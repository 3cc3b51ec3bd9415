#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "loop_thread.h"
#include "qmp/sync_client.h"
#include "qmp/unix_socket.h"
#include "qmp/uv_client.h"
#include "qmp/uv_server.h"
#include "test_registry.h"

namespace vmmd::qmp {
namespace {

using namespace std::chrono_literals;

// What the loop thread's callbacks recorded, read from the test's thread.
class CallbackLog {
 public:
  void record(std::string line) {
    std::lock_guard g(mu_);
    lines_.push_back(std::move(line));
  }
  // Whether `n` lines came within 10 s.
  bool waitFor(size_t n) {
    for (int i = 0; i < 1000; ++i) {
      if (lines().size() >= n) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  std::vector<std::string> lines() {
    std::lock_guard g(mu_);
    return lines_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

std::string socketPath(const char* tag) {
  return "/tmp/vmmd-qmp-client-" + std::to_string(::getpid()) + "-" + tag + ".sock";
}

TEST(SyncClient, ReportsQmpErrorsWithClassAndDesc) {
  testing::TestRegistry t;
  testing::LoopThread loop;
  std::unique_ptr<UvServer> server;
  std::string path = socketPath("sync");
  loop.run([&] {
    server = std::make_unique<UvServer>(loop.loop(), t.registry);
    ASSERT_TRUE(server->listen(path).ok());
  });
  auto c = SyncClient::connect(path, 5s);
  ASSERT_TRUE(c.ok());
  auto r = c->execute("fail");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "Device 'x' not found");
  ASSERT_TRUE(c->lastError().has_value());
  EXPECT_EQ(c->lastError()->errorClass, "DeviceNotFound");
  Json args = parseJson(R"({"command-line": "info status"})").value();
  auto hmp = c->execute("human-monitor-command", &args);
  ASSERT_TRUE(hmp.ok());
  EXPECT_STREQ(hmp->GetString(), "info status");
  // Events that arrive while waiting for a reply are kept for readEvent.
  loop.run([&] { server->broadcastEvent("STOP"); });
  EXPECT_TRUE(c->execute("ping").ok());
  auto e = c->readEvent(1s);
  ASSERT_TRUE(e.ok());
  EXPECT_STREQ((*e)["event"].GetString(), "STOP");
  EXPECT_FALSE(c->readEvent(50ms).ok());
  loop.run([&] { server.reset(); });
}

TEST(SyncClient, ConnectTimesOutWhenNobodyListens) {
  auto c = SyncClient::connect(socketPath("nobody"), 100ms);
  EXPECT_FALSE(c.ok());
}

// A peer like QEMU 7.2 when a client connects while it starts: an event, then the greeting, then
// the answer to qmp_capabilities (its id echoed).
void greetLateThenNegotiate(int fd) {
  std::string early = R"({"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RESUME"})" "\r\n"
                      R"({"QMP": {"version": {}, "capabilities": []}})" "\r\n";
  ASSERT_EQ(::write(fd, early.data(), early.size()), static_cast<ssize_t>(early.size()));
  std::string request;
  char c = 0;
  while (request.find('\n') == std::string::npos && ::read(fd, &c, 1) == 1) request += c;
  Result<Json> parsed = parseJson(request);
  ASSERT_TRUE(parsed.ok()) << request;
  std::string reply = R"({"return": {}, "id": )" + toJson((*parsed)["id"]) + "}\r\n";
  ASSERT_EQ(::write(fd, reply.data(), reply.size()), static_cast<ssize_t>(reply.size()));
}

TEST(SyncClient, AnEventBeforeTheGreetingIsQueued) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd peer(pair[1]);
  std::thread server([&] { greetLateThenNegotiate(peer.get()); });
  auto c = SyncClient::adopt(UniqueFd(pair[0]), 5000ms);
  server.join();
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_TRUE(c->greeting().HasMember("QMP"));
  ASSERT_EQ(c->queuedEvents(), 1u);
  auto event = c->readEvent(100ms);
  ASSERT_TRUE(event.ok());
  EXPECT_EQ(jsonStringView((*event)["event"]), "RESUME");
}

TEST(UvClient, AnEventBeforeTheGreetingIsPassedOn) {
  testing::LoopThread loop;
  std::unique_ptr<UvClient> client;
  CallbackLog calls;
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd peer(pair[1]);
  std::thread server([&] { greetLateThenNegotiate(peer.get()); });
  loop.run([&] {
    client = std::make_unique<UvClient>(loop.loop());
    client->onEvent = [&](const Json& e) { calls.record("event " + std::string(jsonStringView(e["event"]))); };
    client->open(UniqueFd(pair[0]), [&](Status s) { calls.record(s.ok() ? "opened" : "open failed: " + s.error().message()); });
  });
  ASSERT_TRUE(calls.waitFor(2));
  server.join();
  EXPECT_EQ(calls.lines()[0], "event RESUME");
  EXPECT_EQ(calls.lines()[1], "opened");
  loop.run([&] { client.reset(); });
}

TEST(UvClient, CommandsEventsAndDisconnect) {
  testing::TestRegistry t;
  testing::LoopThread loop;
  std::unique_ptr<UvServer> server;
  std::unique_ptr<UvClient> client;
  std::string path = socketPath("uv");
  CallbackLog calls;
  auto record = [&](std::string s) { calls.record(std::move(s)); };
  auto logged = [&](size_t n) { return calls.waitFor(n); };
  loop.run([&] {
    server = std::make_unique<UvServer>(loop.loop(), t.registry);
    ASSERT_TRUE(server->listen(path).ok());
    client = std::make_unique<UvClient>(loop.loop());
    client->onEvent = [&](const Json& e) { record(std::string("event ") + e["event"].GetString()); };
    client->onDisconnect = [&](const Error& why) { record("disconnect " + why.message()); };
    client->connect(path, [&](Status s) { record(s.ok() ? "connected" : "connect failed"); });
    // Issued before negotiation finishes: held until then.
    client->execute("query-status", nullptr, [&](Result<CommandResult>&& r) {
      record(r.ok() && std::holds_alternative<Json>(*r) ? "status " + toJson(std::get<Json>(*r)) : "status failed");
    });
  });
  ASSERT_TRUE(logged(2));
  loop.run([&] {
    client->execute("fail", nullptr, [&](Result<CommandResult>&& r) {
      record(r.ok() && std::holds_alternative<QmpError>(*r) ? "error " + std::get<QmpError>(*r).errorClass : "?");
    });
    server->broadcastEvent("STOP");
    client->execute("slow", nullptr, [&](Result<CommandResult>&& r) {
      record(r.ok() ? "slow answered" : "slow failed: " + r.error().message());
    });
  });
  ASSERT_TRUE(logged(4));
  {
    auto log = calls.lines();
    EXPECT_EQ(log[0], "connected");
    EXPECT_EQ(log[1], R"(status {"status": "prelaunch", "singlestep": false, "running": false})");
    // The event is broadcast at once; the reply follows its request through the socket.
    std::set<std::string> next(log.begin() + 2, log.begin() + 4);
    EXPECT_EQ(next, (std::set<std::string>{"error DeviceNotFound", "event STOP"}));
  }
  // The server goes away with "slow" unanswered: its callback fails, then onDisconnect.
  loop.run([&] { server.reset(); });
  ASSERT_TRUE(logged(6));
  {
    auto log = calls.lines();
    EXPECT_EQ(log[4], "slow failed: QMP connection closed");
    EXPECT_EQ(log[5], "disconnect QMP connection closed");
  }
  loop.run([&] {
    client.reset();
    t.deferred.clear();
  });
}

// open(): the same conversation over a connection the caller made (vmmd gives it a socketpair end
// whose other end is an ssh process); a peer that closes before its greeting fails the open.
TEST(UvClient, OpensAConnectionItIsGiven) {
  testing::TestRegistry t;
  testing::LoopThread loop;
  std::unique_ptr<UvServer> server;
  std::unique_ptr<UvClient> client, orphan;
  std::string path = socketPath("uvopen");
  CallbackLog calls;
  auto record = [&](std::string s) { calls.record(std::move(s)); };
  loop.run([&] {
    server = std::make_unique<UvServer>(loop.loop(), t.registry);
    ASSERT_TRUE(server->listen(path).ok());
    auto fd = connectUnix(path);
    ASSERT_TRUE(fd.ok());
    client = std::make_unique<UvClient>(loop.loop());
    client->open(std::move(*fd), [&](Status s) { record(s.ok() ? "opened" : "open failed: " + s.error().message()); });
    client->execute("query-status", nullptr, [&](Result<CommandResult>&& r) {
      record(r.ok() && std::holds_alternative<Json>(*r) ? "status answered" : "status failed");
    });
  });
  ASSERT_TRUE(calls.waitFor(2));
  EXPECT_EQ(calls.lines()[0], "opened");
  EXPECT_EQ(calls.lines()[1], "status answered");
  loop.run([&] {
    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    ::close(pair[1]);  // nobody there: as an ssh that could not connect
    orphan = std::make_unique<UvClient>(loop.loop());
    orphan->open(UniqueFd(pair[0]), [&](Status s) { record(s.ok() ? "opened" : "open failed: " + s.error().message()); });
  });
  ASSERT_TRUE(calls.waitFor(3));
  EXPECT_EQ(calls.lines()[2], "open failed: QMP connection closed");
  loop.run([&] {
    client.reset();
    orphan.reset();
    server.reset();
    t.deferred.clear();
  });
}

// A server with maxPassedFds takes the descriptors a client passes (the newest for the command
// that came with it); one without takes none (the kernel closes them).
TEST(UvServer, TakesPassedDescriptorsOnlyWhenAsked) {
  for (size_t limit : {size_t{0}, size_t{2}}) {
    CommandRegistry registry;
    registry.addSync({"whatfd"}, [](const JsonValue&, Session& session) -> CommandResult {
      auto fd = session.takePassedFd();
      Json r = jsonObject();
      struct stat st {};
      r.AddMember("ino", fd && ::fstat(fd->get(), &st) == 0 ? static_cast<uint64_t>(st.st_ino) : uint64_t{0}, r.GetAllocator());
      return r;
    });
    testing::LoopThread loop;
    std::unique_ptr<UvServer> server;
    std::unique_ptr<UvClient> client;
    std::string path = socketPath(limit ? "fds" : "nofds");
    std::mutex mu;
    std::vector<uint64_t> inodes;
    std::atomic<bool> connected{false};
    loop.run([&] {
      UvServerOptions options;
      options.maxPassedFds = limit;
      server = std::make_unique<UvServer>(loop.loop(), registry, options);
      ASSERT_TRUE(server->listen(path).ok());
      client = std::make_unique<UvClient>(loop.loop());
      client->connect(path, [&](Status st) { connected = st.ok(); });
    });
    for (int i = 0; i < 500 && !connected; ++i) std::this_thread::sleep_for(10ms);
    ASSERT_TRUE(connected);
    int pipe_fds[2];
    ASSERT_EQ(::pipe(pipe_fds), 0);
    struct stat st {};
    ASSERT_EQ(::fstat(pipe_fds[0], &st), 0);
    auto ask = [&](bool with_fd) {
      loop.run([&] {
        auto record = [&](Result<CommandResult>&& r) {
          std::lock_guard g(mu);
          inodes.push_back(r.ok() && std::holds_alternative<Json>(*r) ? std::get<Json>(*r)["ino"].GetUint64() : ~uint64_t{0});
        };
        if (with_fd) client->executeWithFd("whatfd", nullptr, pipe_fds[0], record);
        else client->execute("whatfd", nullptr, record);
      });
      for (int i = 0; i < 500; ++i) {
        {
          std::lock_guard g(mu);
          if (!inodes.empty()) break;
        }
        std::this_thread::sleep_for(10ms);
      }
      std::lock_guard g(mu);
      uint64_t got = inodes.empty() ? ~uint64_t{1} : inodes.back();
      inodes.clear();
      return got;
    };
    uint64_t pipe_ino = st.st_ino;
    EXPECT_EQ(ask(true), limit ? pipe_ino : 0u) << "limit " << limit;
    EXPECT_EQ(ask(false), 0u) << "a descriptor is taken once";
    loop.run([&] {
      client.reset();
      server.reset();
    });
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
  }
}

// executeWithFd passes a descriptor with the command, as QEMU's getfd expects: real QEMU 7.2 then
// knows it by name (closefd succeeds once, and not for a name it never got).
TEST(RealQemu, UvClientPassesDescriptorsForGetfd) {
  if (::access("/usr/bin/qemu-system-x86_64", X_OK) != 0) GTEST_SKIP() << "qemu-system-x86_64 not installed";
  std::string path = socketPath("qemu-fd");
  ::unlink(path.c_str());
  pid_t pid = ::fork();
  if (pid == 0) {
    std::string qmp = "unix:" + path + ",server=on,wait=off";
    ::execl("/usr/bin/qemu-system-x86_64", "qemu-system-x86_64", "-M", "none", "-accel", "tcg", "-S", "-nodefaults",
            "-display", "none", "-qmp", qmp.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 500 && ::access(path.c_str(), F_OK) != 0; ++i) std::this_thread::sleep_for(10ms);
  testing::LoopThread loop;
  std::unique_ptr<UvClient> client;
  CallbackLog calls;
  auto record = [&](std::string s) { calls.record(std::move(s)); };
  auto logged = [&](size_t n) { return calls.waitFor(n); };
  auto outcome = [](Result<CommandResult>&& r) {
    if (!r) return "failed: " + r.error().message();
    if (auto* e = std::get_if<QmpError>(&*r)) return "error: " + e->desc;
    return std::string("ok");
  };
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  Json name = parseJson(R"({"fdname": "stream"})").value();
  loop.run([&] {
    client = std::make_unique<UvClient>(loop.loop());
    // Not negotiated yet: refused rather than queued (the descriptor must travel with its command).
    client->executeWithFd("getfd", &name, pipe_fds[1], [&](Result<CommandResult>&& r) { record("early " + outcome(std::move(r))); });
    client->connect(path, [&](Status s) { record(s.ok() ? "connected" : "connect failed: " + s.error().message()); });
  });
  ASSERT_TRUE(logged(2));
  loop.run([&] {
    client->executeWithFd("getfd", &name, pipe_fds[1], [&](Result<CommandResult>&& r) { record("getfd " + outcome(std::move(r))); });
    client->execute("closefd", &name, [&](Result<CommandResult>&& r) { record("closefd " + outcome(std::move(r))); });
    client->execute("closefd", &name, [&](Result<CommandResult>&& r) { record("again " + outcome(std::move(r))); });
  });
  ASSERT_TRUE(logged(5));
  {
    auto log = calls.lines();
    EXPECT_EQ(log[0], "early failed: QMP client not connected");
    EXPECT_EQ(log[1], "connected");
    EXPECT_EQ(log[2], "getfd ok");
    EXPECT_EQ(log[3], "closefd ok");
    EXPECT_EQ(log[4], "again error: File descriptor named 'stream' not found");
  }
  loop.run([&] { client.reset(); });
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ::unlink(path.c_str());
}

// The same raw inputs to real QEMU 7.2 and to a Session with the test registry must produce the
// same bytes (the event timestamps aside).
TEST(RealQemu, SessionRepliesMatchQemuByteForByte) {
  if (::access("/usr/bin/qemu-system-x86_64", X_OK) != 0) GTEST_SKIP() << "qemu-system-x86_64 not installed";
  std::string path = socketPath("qemu");
  ::unlink(path.c_str());
  pid_t pid = ::fork();
  if (pid == 0) {
    std::string qmp = "unix:" + path + ",server=on,wait=off";
    ::execl("/usr/bin/qemu-system-x86_64", "qemu-system-x86_64", "-M", "microvm", "-accel", "tcg", "-S", "-nodefaults",
            "-display", "none", "-qmp", qmp.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  auto qemu = SyncClient::connect(path, 10s, /*negotiate=*/false);
  ASSERT_TRUE(qemu.ok()) << qemu.error().message();

  testing::TestRegistry t;
  std::string ours;
  auto session = Session::create(t.registry, {testing::kVersion}, [&](std::string_view m) { ours += m; });
  session->start();
  std::string greeting = toJson(qemu->greeting()) + "\r\n";
  EXPECT_EQ(ours.substr(0, ours.find("\"package\"")), greeting.substr(0, greeting.find("\"package\"")));

  const std::vector<std::string> inputs = {
      R"({"execute":"query-status","id":5})",
      R"({"execute":"qmp_capabilities","arguments":{"enable":["foo"]}})",
      R"({"execute":"qmp_capabilities","arguments":{"enable":[1]}})",
      R"({"execute":"qmp_capabilities","id":[1,{"a":2}]})",
      R"({"execute":"qmp_capabilities"})",
      R"({"execute":"query-status","id":"x"})",
      "[1]", "\"x\"", "}", "{]", R"({"foo":1})", "{}", R"({"id":1})", R"({"execute":1,"id":"z"})",
      R"({"execute":"query-status","arguments":[]})",
      R"({"execute":"query-status","arguments":{"a":1}})",
      R"({"execute":"human-monitor-command","arguments":{},"id":1})",
      R"({"execute":"human-monitor-command","arguments":{"command-line":1}})",
      R"({"execute":"human-monitor-command","arguments":{"command-line":"x","cpu-index":1.5}})",
      R"({"execute":"nope","id":"q"})", "{\"execute\":\"nope\xc3\xa9\"}", R"({"execute":"query\u0000"})",
      R"({"execute":"query-status","id":1,"id":2})", "@", "\xff", "{'execute':'query-status'}", "\"\xc3\"",
      R"({"exec-oob":"query-status"})", R"({"execute":"query-status","id":null})",
      "-x", "1.}", "01", "1e", R"({"execute":"query-status","id":1e5})", R"({"execute":"query-status","id":-0.5e-3})",
      R"({"execute":"query-status","id":18446744073709551615})", R"({"execute":"query-status","id":-9223372036854775809})",
      R"({"execute":"query-status","id":"\ud83d\ude00\u00e9\t"})", R"({"execute":"query-status","id":"\ud800"})",
      R"({"execute":"query-status","id":"\uffff"})", R"({"execute":"query-status","id":{"a":1,"a":2}})",
      "{\"execute\":\"query-status\",\"id\":\"\xe2\x82\xac\xf0\x9f\x98\x80\"}", "{\"a\":\"\xc0\xaf\"}",
      "[[[]]]", "{\"a\" \"b\"}", "{\"a\":}", "tru", "true", "\x01", "{\"execute\":\"query-status\"\x01}",
  };
  // Raw bytes from QEMU, read until they hold as many lines as ours.
  auto readQemuLines = [&](size_t lines) {
    std::string theirs;
    auto count = [](const std::string& t) {
      size_t n = 0;
      for (size_t at = t.find("\r\n"); at != std::string::npos; at = t.find("\r\n", at + 2)) ++n;
      return n;
    };
    while (count(theirs) < lines) {
      pollfd p{qemu->fd(), POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) break;
      char buf[4096];
      ssize_t n = ::recv(qemu->fd(), buf, sizeof buf, 0);
      if (n <= 0) break;
      theirs.append(buf, static_cast<size_t>(n));
    }
    return theirs;
  };
  auto lines = [](const std::string& t) {
    size_t n = 0;
    for (size_t at = t.find("\r\n"); at != std::string::npos; at = t.find("\r\n", at + 2)) ++n;
    return n;
  };
  // A trailing newline flushes lookahead-terminated tokens on both sides alike; a final marker
  // request shows that QEMU did not send anything we did not.
  std::vector<std::string> all = inputs;
  all.push_back(R"({"execute":"query-status","id":"end"})");
  for (const std::string& in : all) {
    std::string line = in + "\n";
    ours.clear();
    session->feed(line);
    ASSERT_TRUE(qemu->sendRaw(line).ok());
    EXPECT_EQ(ours, readQemuLines(lines(ours))) << "input: " << in;
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace vmmd::qmp
