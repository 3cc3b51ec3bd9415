// AgentChannel (vmmd's per-VM agent channel) against the real qemu-ga in unix-listen mode: the
// commands run on the thread pool while the loop stays free, in order, and report a missing or
// restarted agent.
#include "daemon/supervisor/agent_channel.h"

#include <gtest/gtest.h>
#include <uv.h>

#include <cerrno>
#include <vector>

#include "../qmp/qemu_ga.h"

namespace vmmd::daemon {
namespace {

using namespace std::chrono_literals;

qmp::Json request(const char* command) {
  qmp::Json r = qmp::jsonObject();
  r.AddMember("execute", qmp::JsonValue(command, r.GetAllocator()), r.GetAllocator());
  return r;
}

class AgentChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (qmp::testing::findQemuGa().empty()) GTEST_SKIP() << "qemu-ga is not installed";
    ASSERT_TRUE(agent_.start());
    uv_loop_init(&loop_);
  }
  void TearDown() override {
    if (IsSkipped()) return;
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }
  // Runs the loop until every submitted command has completed.
  void drain() { uv_run(&loop_, UV_RUN_DEFAULT); }

  qmp::testing::QemuGa agent_{::testing::UnitTest::GetInstance()->current_test_info()->name()};
  uv_loop_t loop_{};
};

TEST_F(AgentChannelTest, CommandsRunInOrderOffTheLoop) {
  AgentChannel channel(&loop_, agent_.socket());
  EXPECT_EQ(channel.state(), AgentChannel::State::kUnknown);
  std::vector<std::string> order;
  // A timer on the loop fires while the first command is on the pool: the loop is not blocked.
  uv_timer_t timer;
  uv_timer_init(&loop_, &timer);
  bool timerRan = false;
  timer.data = &timerRan;
  uv_timer_start(&timer, [](uv_timer_t* t) { *static_cast<bool*>(t->data) = true; }, 0, 0);
  for (const char* c : {"guest-info", "guest-ping", "guest-get-osinfo", "no-such-command"}) {
    channel.submit(request(c), 5000ms, [&order, c](Result<qmp::Json> reply) {
      ASSERT_TRUE(reply.ok()) << reply.error().message();
      order.push_back(std::string(c) + (reply->HasMember("return") ? ":ok" : ":error"));
    });
  }
  drain();
  uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
  drain();
  EXPECT_TRUE(timerRan);
  EXPECT_EQ(order, (std::vector<std::string>{"guest-info:ok", "guest-ping:ok", "guest-get-osinfo:ok", "no-such-command:error"}));
  EXPECT_EQ(channel.state(), AgentChannel::State::kConnected);
}

TEST_F(AgentChannelTest, NoAgentIsReportedAndARestartedOneIsFoundAgain) {
  AgentChannel channel(&loop_, agent_.socket());
  std::optional<Result<qmp::Json>> last;
  auto keep = [&last](Result<qmp::Json> r) { last.emplace(std::move(r)); };
  channel.submit(request("guest-ping"), 5000ms, keep);
  drain();
  ASSERT_TRUE(last && last->ok());
  agent_.stop();
  channel.submit(request("guest-ping"), 500ms, keep);
  drain();
  ASSERT_FALSE(last->ok());
  EXPECT_EQ(last->error().code(), ENOTCONN);
  EXPECT_EQ(channel.state(), AgentChannel::State::kDisconnected);
  ASSERT_TRUE(agent_.start());
  channel.submit(request("guest-ping"), 5000ms, keep);
  drain();
  EXPECT_TRUE(last->ok()) << last->error().message();
  EXPECT_EQ(channel.state(), AgentChannel::State::kConnected);
}

TEST_F(AgentChannelTest, DestroyedChannelStillAnswersEveryCommand) {
  int answered = 0, failed = 0;
  {
    AgentChannel channel(&loop_, agent_.socket());
    for (int i = 0; i < 3; ++i) {
      channel.submit(request("guest-ping"), 5000ms, [&](Result<qmp::Json> r) {
        ++answered;
        if (!r) ++failed;
      });
    }
    channel.setGuestOpen(false);
    EXPECT_EQ(channel.state(), AgentChannel::State::kDisconnected);
  }
  // The two queued ones were failed by the destructor; the one in flight completes on the loop.
  EXPECT_EQ(answered, 2);
  EXPECT_EQ(failed, 2);
  drain();
  EXPECT_EQ(answered, 3);
}

}  // namespace
}  // namespace vmmd::daemon
