// ConsoleRelay between a real Unix-socket "worker console" and real attached clients: output
// printed before anyone attached is replayed, input reaches the guest, console.log keeps it all.
#include "daemon/supervisor/console_relay.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <optional>

#include <gtest/gtest.h>

#include "base/unique_fd.h"
#include "qmp/unix_socket.h"
#include "tests/support/temp_dir.h"

namespace vmmd::daemon {
namespace {

using test_support::TempDir;

UniqueFd listenAt(const std::string& path) {
  auto fd = qmp::listenUnix(path, 4);
  EXPECT_TRUE(fd.ok()) << fd.error().message();
  return fd ? std::move(*fd) : UniqueFd();
}

UniqueFd connectTo(const std::string& path) {
  auto fd = qmp::connectUnix(path, true);
  EXPECT_TRUE(fd.ok()) << fd.error().message();
  return fd ? std::move(*fd) : UniqueFd();
}

class ConsoleRelayTest : public ::testing::Test {
 protected:
  ConsoleRelayTest() { uv_loop_init(&loop_); }
  ~ConsoleRelayTest() override {
    relay_.reset();
    uv_run(&loop_, UV_RUN_NOWAIT);
    uv_loop_close(&loop_);
  }
  // Pumps the loop until `fd` has produced `want` (or 5 s passed); returns what was read.
  std::string readUntil(int fd, const std::string& want) {
    std::string got;
    for (int i = 0; i < 5000 && got.find(want) == std::string::npos; ++i) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      char buf[4096];
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) got.append(buf, static_cast<size_t>(n));
      else ::usleep(1000);
    }
    return got;
  }
  void pump(int rounds = 50) {
    for (int i = 0; i < rounds; ++i) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      ::usleep(1000);
    }
  }

  TempDir dir_;
  uv_loop_t loop_{};
  std::unique_ptr<ConsoleRelay> relay_;
};

TEST_F(ConsoleRelayTest, ReplaysBacklogRelaysBothWaysAndLogs) {
  UniqueFd worker_listener = listenAt(dir_.file("console.sock"));
  relay_ = std::make_unique<ConsoleRelay>(&loop_, dir_.file("console.log"));
  ASSERT_TRUE(relay_->listen(dir_.file("tty.sock")).ok());
  std::optional<Status> connected;
  relay_->connectWorker(dir_.file("console.sock"), [&](Status s) { connected = std::move(s); });
  pump();
  ASSERT_TRUE(connected && connected->ok());
  UniqueFd worker(::accept4(worker_listener.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
  ASSERT_TRUE(worker.valid());

  // The guest prints before anyone attached.
  ASSERT_EQ(::write(worker.get(), "PROBE name=ready\n", 17), 17);
  pump();
  EXPECT_EQ(relay_->backlog(), "PROBE name=ready\n");

  UniqueFd client = connectTo(dir_.file("tty.sock"));
  EXPECT_EQ(readUntil(client.get(), "ready\n"), "PROBE name=ready\n");
  UniqueFd second = connectTo(dir_.file("tty.sock"));
  EXPECT_EQ(readUntil(second.get(), "ready\n"), "PROBE name=ready\n");

  // Live output reaches every attached client; input from one reaches the guest.
  ASSERT_EQ(::write(worker.get(), "login: ", 7), 7);
  EXPECT_EQ(readUntil(client.get(), "login: "), "login: ");
  EXPECT_EQ(readUntil(second.get(), "login: "), "login: ");
  ASSERT_EQ(::write(client.get(), "root\n", 5), 5);
  EXPECT_EQ(readUntil(worker.get(), "root\n"), "root\n");

  // A client leaving does not disturb the others.
  client.reset();
  pump();
  EXPECT_EQ(relay_->attachedClients(), 1u);
  std::ifstream log(dir_.file("console.log"));
  std::string all((std::istreambuf_iterator<char>(log)), {});
  EXPECT_EQ(all, "PROBE name=ready\nlogin: ");
}

TEST_F(ConsoleRelayTest, BacklogIsBounded) {
  UniqueFd worker_listener = listenAt(dir_.file("console.sock"));
  relay_ = std::make_unique<ConsoleRelay>(&loop_, dir_.file("console.log"));
  relay_->connectWorker(dir_.file("console.sock"), [](Status) {});
  pump();
  UniqueFd worker(::accept4(worker_listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  std::string chunk(4096, 'x');
  for (size_t sent = 0; sent < 2 * ConsoleRelay::kBacklogBytes; sent += chunk.size()) {
    ASSERT_EQ(::write(worker.get(), chunk.data(), chunk.size()), static_cast<ssize_t>(chunk.size()));
    pump(5);
  }
  ASSERT_EQ(::write(worker.get(), "END", 3), 3);
  for (int i = 0; i < 2000 && relay_->backlog().find("END") == std::string::npos; ++i) pump(1);
  EXPECT_EQ(relay_->backlog().size(), ConsoleRelay::kBacklogBytes);
  EXPECT_EQ(relay_->backlog().substr(relay_->backlog().size() - 3), "END");
}

TEST_F(ConsoleRelayTest, AttachSocketIsForOwnerAndGroupAndReplacesOnlyStaleSockets) {
  { UniqueFd stale = listenAt(dir_.file("tty.sock")); }  // a vmmd that is gone left it
  relay_ = std::make_unique<ConsoleRelay>(&loop_, dir_.file("console.log"));
  ASSERT_TRUE(relay_->listen(dir_.file("tty.sock")).ok());
  struct stat st {};
  ASSERT_EQ(::stat(dir_.file("tty.sock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  std::ofstream(dir_.file("file.sock")) << "not a socket";
  ConsoleRelay other(&loop_, dir_.file("other.log"));
  auto refused = other.listen(dir_.file("file.sock"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message(), dir_.file("file.sock") + " exists and is not a socket");
}

TEST_F(ConsoleRelayTest, ConnectFailureIsReported) {
  relay_ = std::make_unique<ConsoleRelay>(&loop_, dir_.file("console.log"));
  std::optional<Status> connected;
  relay_->connectWorker(dir_.file("absent.sock"), [&](Status s) { connected = std::move(s); });
  pump();
  ASSERT_TRUE(connected);
  EXPECT_FALSE(connected->ok());
}

}  // namespace
}  // namespace vmmd::daemon
