#include "vmm/monitor/event_throttle.h"

#include <gtest/gtest.h>

namespace vmmd {
namespace {

TEST(EventThrottleRules, GuestTriggerableEventsAreLimitedToOnePerSecondAsInQemu) {
  auto port = EventThrottle::ruleFor("VSERPORT_CHANGE");
  ASSERT_TRUE(port.has_value());
  EXPECT_EQ(port->period, std::chrono::milliseconds(1000));
  EXPECT_STREQ(port->key_member, "id");  // per port: one port's storm does not hide another's change
  EXPECT_TRUE(EventThrottle::ruleFor("RTC_CHANGE").has_value());
  // Not throttled by QEMU: vmm sends BLOCK_IO_ERROR only for the host's own I/O errors.
  EXPECT_FALSE(EventThrottle::ruleFor("BLOCK_IO_ERROR").has_value());
  EXPECT_FALSE(EventThrottle::ruleFor("SHUTDOWN").has_value());
}

TEST(EventThrottle, FirstEventGoesOutAtOnceAndTheLastOfAWindowWhenItEnds) {
  EventThrottle throttle;
  EXPECT_TRUE(throttle.admit("VSERPORT_CHANGE/p0", "open"));
  for (int i = 0; i < 10000; ++i) EXPECT_FALSE(throttle.admit("VSERPORT_CHANGE/p0", i % 2 ? "open" : "closed"));
  EXPECT_EQ(throttle.windowEnded("VSERPORT_CHANGE/p0"), "open");  // the last state, once
  EXPECT_EQ(throttle.windowEnded("VSERPORT_CHANGE/p0"), std::nullopt);  // a quiet window closes
  EXPECT_EQ(throttle.openWindows(), 0u);
  EXPECT_TRUE(throttle.admit("VSERPORT_CHANGE/p0", "closed"));  // and the next event goes out at once
}

TEST(EventThrottle, KeysAreThrottledApart) {
  EventThrottle throttle;
  EXPECT_TRUE(throttle.admit("VSERPORT_CHANGE/p0", "a"));
  EXPECT_TRUE(throttle.admit("VSERPORT_CHANGE/p1", "b"));
  EXPECT_FALSE(throttle.admit("VSERPORT_CHANGE/p0", "c"));
  EXPECT_EQ(throttle.windowEnded("VSERPORT_CHANGE/p1"), std::nullopt);
  EXPECT_EQ(throttle.windowEnded("VSERPORT_CHANGE/p0"), "c");
  EXPECT_EQ(throttle.openWindows(), 1u);
}

}  // namespace
}  // namespace vmmd
