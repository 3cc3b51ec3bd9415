#include "vmm/devices/i8042.h"

#include <gtest/gtest.h>

#include "tests/vmm/devices/state_checks.h"

#include <vector>

namespace vmmd {
namespace {

class I8042Test : public ::testing::Test {
 protected:
  I8042Test() : controller_([this](PowerRequest r) { requests_.push_back(r); }) {}

  void command(uint8_t value) { controller_.commandPort().write(0, {&value, 1}); }
  void data(uint8_t value) { controller_.dataPort().write(0, {&value, 1}); }
  uint8_t status() {
    uint8_t value = 0;
    controller_.commandPort().read(0, {&value, 1});
    return value;
  }
  // Everything waiting in the output buffer, polled as firmware does.
  std::vector<uint8_t> drain() {
    std::vector<uint8_t> out;
    while (status() & 0x01) {
      uint8_t value = 0;
      controller_.dataPort().read(0, {&value, 1});
      out.push_back(value);
    }
    return out;
  }

  std::vector<PowerRequest> requests_;
  I8042 controller_;
};

TEST_F(I8042Test, SelfTestsAndKeyboardReplies) {
  EXPECT_EQ(drain(), std::vector<uint8_t>{});
  command(0xAA);
  EXPECT_EQ(drain(), std::vector<uint8_t>{0x55});
  command(0xAB);
  EXPECT_EQ(drain(), std::vector<uint8_t>{0x00});
  data(0xFF);  // keyboard reset
  EXPECT_EQ(drain(), (std::vector<uint8_t>{0xFA, 0xAA}));
  data(0xF2);  // identify
  EXPECT_EQ(drain(), (std::vector<uint8_t>{0xFA, 0xAB, 0x83}));
  data(0xED);  // set LEDs, then its argument
  data(0x07);
  EXPECT_EQ(drain(), (std::vector<uint8_t>{0xFA, 0xFA}));
  EXPECT_TRUE(requests_.empty());
}

TEST_F(I8042Test, CommandByteReadsBackWhatWasWritten) {
  command(0x60);
  data(0x61);
  command(0x20);
  EXPECT_EQ(drain(), std::vector<uint8_t>{0x61});
}

TEST_F(I8042Test, PulsingTheResetLineResetsTheMachine) {
  command(0xFE);
  ASSERT_EQ(requests_.size(), 1u);
  EXPECT_EQ(requests_[0], PowerRequest::Reset);
  command(0xD1);  // output port with the reset line low
  data(0xFE);
  EXPECT_EQ(requests_.size(), 2u);
  command(0xD1);  // high: the A20 line only
  data(0xDF);
  EXPECT_EQ(requests_.size(), 2u);
}

TEST_F(I8042Test, AGuestThatNeverReadsCannotGrowTheBuffer) {
  for (int i = 0; i < 10000; ++i) data(0xF2);
  EXPECT_LE(drain().size(), 16u);
}

TEST(SystemControlPortA, BitZeroResets) {
  std::vector<PowerRequest> requests;
  SystemControlPortA port([&](PowerRequest r) { requests.push_back(r); });
  uint8_t value = 0;
  port.read(0, {&value, 1});
  EXPECT_EQ(value, 0x02);  // A20 on
  value = 0x02;
  port.write(0, {&value, 1});
  EXPECT_TRUE(requests.empty());
  value = 0x03;
  port.write(0, {&value, 1});
  EXPECT_EQ(requests.size(), 1u);
}

}  // namespace
}  // namespace vmmd

namespace vmmd {
namespace {

TEST_F(I8042Test, StateCarriesCommandByteAndUnreadReplies) {
  command(0x60);  // write command byte
  data(0x65);
  data(0xF2);  // identify: ACK, 0xAB, 0x83 wait unread
  I8042 target([](PowerRequest) {});
  auto saved = testing::expectRoundTrip(controller_, target);
  uint8_t value = 0;
  std::vector<uint8_t> replies;
  for (;;) {
    target.commandPort().read(0, {&value, 1});
    if (!(value & 0x01)) break;
    target.dataPort().read(0, {&value, 1});
    replies.push_back(value);
  }
  EXPECT_EQ(replies, (std::vector<uint8_t>{0xFA, 0xAB, 0x83}));
  uint8_t read_command = 0x20;
  target.commandPort().write(0, {&read_command, 1});
  target.dataPort().read(0, {&value, 1});
  EXPECT_EQ(value, 0x65);

  I8042 hostile([](PowerRequest) {});
  testing::expectHostileStatesRefused(hostile, saved);
}

}  // namespace
}  // namespace vmmd
