#include "vmm/backends/socket_port.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "base/unique_fd.h"
#include "qmp/unix_socket.h"
#include "tests/support/temp_dir.h"

namespace vmmd {
namespace {

class SocketPortTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    ASSERT_EQ(uv_timer_init(&loop_, &guard_), 0);
    config::ChardevConfig chardev;
    chardev.id = "chr0";
    chardev.backend = config::ChardevConfig::Backend::Socket;
    chardev.path = dir_.file("port.sock");
    chardev.server = true;
    chardev.wait = false;
    auto port = SocketPort::listen(&loop_, chardev);
    ASSERT_TRUE(port.ok()) << port.error().message();
    port_ = std::move(*port);
  }
  void TearDown() override {
    port_.reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&guard_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);  // close callbacks
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }
  UniqueFd connectClient() {
    auto fd = qmp::connectUnix(dir_.file("port.sock"));
    EXPECT_TRUE(fd.ok()) << fd.error().message();
    while (fd && !port_->connected()) uv_run(&loop_, UV_RUN_ONCE);
    return fd ? std::move(*fd) : UniqueFd();
  }
  // Runs the loop until `done` or 5 s; true if done.
  bool runUntil(const std::atomic<bool>& done) {
    uv_timer_start(&guard_, [](uv_timer_t* t) { uv_stop(t->loop); }, 5000, 0);
    while (!done && uv_is_active(reinterpret_cast<uv_handle_t*>(&guard_))) uv_run(&loop_, UV_RUN_ONCE);
    uv_timer_stop(&guard_);
    return done;
  }

  test_support::TempDir dir_{"vmmd-socket-port"};
  uv_loop_t loop_{};
  uv_timer_t guard_{};
  std::unique_ptr<SocketPort> port_;
};

// virtio-serial asks for readiness from a vCPU thread too (driver reset and start-up); the
// change must reach the loop even while it sleeps in epoll with nothing else to do.
TEST_F(SocketPortTest, ReadinessAskedFromAnotherThreadWakesTheSleepingLoop) {
  UniqueFd client = connectClient();
  std::atomic<bool> readable{false};
  port_->on_readable = [&] {
    uint8_t byte;
    if (port_->tryRead({&byte, 1}) == 1) readable = true;
  };
  std::thread vcpu([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the loop is asleep by then
    port_->waitReadable(true);
    ASSERT_EQ(::send(client.get(), "x", 1, MSG_NOSIGNAL), 1);
  });
  bool got = runUntil(readable);
  vcpu.join();
  EXPECT_TRUE(got) << "the loop never reported the byte: readiness set off its thread was lost";
}

TEST_F(SocketPortTest, ReadinessWithdrawnFromAnotherThreadStopsTheCallbacks) {
  UniqueFd client = connectClient();
  std::atomic<int> calls{0};
  std::atomic<bool> first{false};
  port_->on_readable = [&] {  // reads nothing: the byte stays readable
    ++calls;
    first = true;
  };
  port_->waitReadable(true);
  ASSERT_EQ(::send(client.get(), "x", 1, MSG_NOSIGNAL), 1);
  ASSERT_TRUE(runUntil(first));
  std::thread vcpu([&] { port_->waitReadable(false); });
  vcpu.join();
  uv_run(&loop_, UV_RUN_NOWAIT);  // the request is applied
  int before = calls;
  for (int i = 0; i < 20; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(calls, before) << "still polled for reading after waitReadable(false) from another thread";
}

// -chardev socket,fd=N: a listening socket the parent bound (vmmd's way) is served as it is, and
// left where its owner bound it when the port goes.
TEST_F(SocketPortTest, ServesAListeningSocketPassedByFd) {
  std::string path = dir_.file("passed.sock");
  auto listener = qmp::listenUnix(path);
  ASSERT_TRUE(listener.ok()) << listener.error().message();
  config::ChardevConfig chardev;
  chardev.id = "chr1";
  chardev.backend = config::ChardevConfig::Backend::Socket;
  chardev.fd = listener->release();
  chardev.server = true;
  auto port = SocketPort::listen(&loop_, chardev);
  ASSERT_TRUE(port.ok()) << port.error().message();
  EXPECT_EQ((*port)->path(), path);
  auto client = qmp::connectUnix(path);
  ASSERT_TRUE(client.ok());
  for (int i = 0; i < 1000 && !(*port)->connected(); ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_TRUE((*port)->connected());
  port->reset();
  EXPECT_EQ(::access(path.c_str(), F_OK), 0) << "removed a socket file it did not bind";
}

TEST_F(SocketPortTest, RefusesAPassedFdThatIsNotAListeningSocket) {
  config::ChardevConfig chardev;
  chardev.id = "chr1";
  chardev.backend = config::ChardevConfig::Backend::Socket;
  chardev.fd = STDERR_FILENO;  // open, but no socket (or not a listening one)
  auto port = SocketPort::listen(&loop_, chardev);
  ASSERT_FALSE(port.ok());
  EXPECT_EQ(port.error().message().rfind("chardev 'chr1': fd 2 ", 0), 0u) << port.error().message();
  EXPECT_GE(::fcntl(STDERR_FILENO, F_GETFD), 0) << "closed an fd it did not take";
}

}  // namespace
}  // namespace vmmd
