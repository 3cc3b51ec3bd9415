// connectCancellable on loopback: a listener, a refused port, and a listener whose full queue
// makes the kernel drop SYNs (the handshake never completes until cancelled).
#include "vmm/migration/tcp_connect.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <thread>
#include <vector>

namespace vmmd::migration {
namespace {

UniqueFd streamSocket() { return UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)); }

// A loopback listener with `backlog`, and its address.
struct Listener {
  UniqueFd fd = streamSocket();
  sockaddr_in address{};
  explicit Listener(int backlog) {
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    socklen_t size = sizeof address;
    EXPECT_EQ(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &size), 0);
    EXPECT_EQ(::listen(fd.get(), backlog), 0);
  }
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&address); }
};

TEST(ConnectCancellable, ConnectsAndLeavesTheSocketBlocking) {
  Listener listener(4);
  UniqueFd fd = streamSocket();
  std::atomic<bool> cancelled{false};
  ASSERT_TRUE(connectCancellable(fd, listener.sa(), sizeof listener.address, cancelled, "loopback").ok());
  EXPECT_EQ(::fcntl(fd.get(), F_GETFL) & O_NONBLOCK, 0);
}

TEST(ConnectCancellable, RefusedPortNamesThePeerAndTheReason) {
  sockaddr_in address{};
  {
    Listener closed(1);  // a port that was free a moment ago, closed again
    address = closed.address;
  }
  UniqueFd fd = streamSocket();
  std::atomic<bool> cancelled{false};
  auto st = connectCancellable(fd, reinterpret_cast<sockaddr*>(&address), sizeof address, cancelled, "127.0.0.1:X");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("Failed to connect to '127.0.0.1:X'"), std::string::npos) << st.error().message();
  EXPECT_NE(st.error().message().find("refused"), std::string::npos) << st.error().message();
}

TEST(ConnectCancellable, ACancelEndsAHandshakeThatNeverCompletes) {
  Listener listener(0);
  std::vector<UniqueFd> fillers;  // fill the accept queue: later SYNs are dropped
  for (int i = 0; i < 2; ++i) {
    fillers.push_back(UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)));
    (void)::connect(fillers.back().get(), listener.sa(), sizeof listener.address);
  }
  UniqueFd fd = streamSocket();
  std::atomic<bool> cancelled{false};
  std::thread canceller([&cancelled] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    cancelled = true;
  });
  auto st = connectCancellable(fd, listener.sa(), sizeof listener.address, cancelled, "loopback");
  canceller.join();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("cancelled while connecting"), std::string::npos) << st.error().message();
}

}  // namespace
}  // namespace vmmd::migration
