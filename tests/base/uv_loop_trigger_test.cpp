#include "base/uv_loop_trigger.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace vmmd {
namespace {

class UvLoopTriggerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    // A guard: a loop that nothing wakes stops here instead of hanging the test.
    ASSERT_EQ(uv_timer_init(&loop_, &guard_), 0);
    uv_unref(reinterpret_cast<uv_handle_t*>(&guard_));
  }
  void TearDown() override {
    uv_close(reinterpret_cast<uv_handle_t*>(&guard_), nullptr);
    trigger_.reset();
    uv_run(&loop_, UV_RUN_DEFAULT);  // runs the close callbacks
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }
  // Runs the loop until the action ran or 5 s passed; true if it ran.
  bool runUntilActed() {
    uv_ref(reinterpret_cast<uv_handle_t*>(&guard_));
    uv_timer_start(&guard_, [](uv_timer_t* t) { uv_stop(t->loop); }, 5000, 0);
    while (acted_ == 0 && uv_run(&loop_, UV_RUN_ONCE) != 0 && uv_is_active(reinterpret_cast<uv_handle_t*>(&guard_))) {
    }
    uv_timer_stop(&guard_);
    uv_unref(reinterpret_cast<uv_handle_t*>(&guard_));
    return acted_ > 0;
  }

  uv_loop_t loop_{};
  uv_timer_t guard_{};
  std::atomic<int> acted_{0};
  std::thread::id acted_on_;
  std::unique_ptr<UvLoopTrigger> trigger_;
};

TEST_F(UvLoopTriggerTest, OnTheLoopThreadTheActionRunsAtOnce) {
  auto trigger = UvLoopTrigger::create(&loop_, [this] { ++acted_; });
  ASSERT_TRUE(trigger) << trigger.error().message();
  trigger_ = std::move(*trigger);
  trigger_->request();
  EXPECT_EQ(acted_, 1);
}

TEST_F(UvLoopTriggerTest, FromAnotherThreadTheActionRunsOnTheLoopThreadWhileItSleeps) {
  auto trigger = UvLoopTrigger::create(&loop_, [this] {
    acted_on_ = std::this_thread::get_id();
    ++acted_;
  });
  ASSERT_TRUE(trigger) << trigger.error().message();
  trigger_ = std::move(*trigger);
  std::thread other([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the loop is asleep in epoll by then
    trigger_->request();
  });
  bool acted = runUntilActed();
  other.join();
  ASSERT_TRUE(acted) << "the request from another thread did not wake the loop";
  EXPECT_EQ(acted_on_, std::this_thread::get_id());
}

}  // namespace
}  // namespace vmmd
