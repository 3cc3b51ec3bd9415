#include "vmm/devices/io_bus.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace vmmd {
namespace {

using ::testing::HasSubstr;

// Records every access; reads return `fill`.
class RecordingDevice : public BusDevice {
 public:
  explicit RecordingDevice(uint8_t fill) : fill_(fill) {}
  struct Access {
    bool write;
    uint64_t offset;
    std::vector<uint8_t> data;
  };
  void read(uint64_t offset, std::span<uint8_t> data) override {
    std::fill(data.begin(), data.end(), fill_);
    accesses.push_back({false, offset, {data.begin(), data.end()}});
  }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    accesses.push_back({true, offset, {data.begin(), data.end()}});
  }
  std::vector<Access> accesses;

 private:
  uint8_t fill_;
};

TEST(IoBus, DispatchesWithOffsetRelativeToTheRange) {
  IoBus bus;
  RecordingDevice serial(0x11), rtc(0x22);
  ASSERT_TRUE(bus.add(0x3F8, 8, &serial).ok());
  ASSERT_TRUE(bus.add(0x70, 2, &rtc).ok());

  uint8_t byte = 0;
  EXPECT_TRUE(bus.read(0x3FD, {&byte, 1}));
  EXPECT_EQ(byte, 0x11);
  ASSERT_EQ(serial.accesses.size(), 1u);
  EXPECT_FALSE(serial.accesses[0].write);
  EXPECT_EQ(serial.accesses[0].offset, 5u);

  uint8_t value = 0x8A;
  EXPECT_TRUE(bus.write(0x70, {&value, 1}));
  ASSERT_EQ(rtc.accesses.size(), 1u);
  EXPECT_TRUE(rtc.accesses[0].write);
  EXPECT_EQ(rtc.accesses[0].offset, 0u);
  EXPECT_EQ(rtc.accesses[0].data, std::vector<uint8_t>{0x8A});

  EXPECT_TRUE(bus.read(0x71, {&byte, 1}));
  EXPECT_EQ(byte, 0x22);
  EXPECT_EQ(rtc.accesses.back().offset, 1u);
}

TEST(IoBus, FirstAndLastPortOfARangeAreItsOwn) {
  IoBus bus;
  RecordingDevice dev(0x33);
  ASSERT_TRUE(bus.add(0x600, 12, &dev).ok());
  uint8_t byte;
  EXPECT_FALSE(bus.read(0x5FF, {&byte, 1}));
  EXPECT_TRUE(bus.read(0x600, {&byte, 1}));
  EXPECT_TRUE(bus.read(0x60B, {&byte, 1}));
  EXPECT_FALSE(bus.read(0x60C, {&byte, 1}));
  ASSERT_EQ(dev.accesses.size(), 2u);
  EXPECT_EQ(dev.accesses[1].offset, 11u);
}

TEST(IoBus, WideAccessesReachTheDeviceWhole) {
  IoBus bus;
  RecordingDevice dev(0x44);
  ASSERT_TRUE(bus.add(0x600, 12, &dev).ok());
  uint8_t dword[4] = {1, 2, 3, 4};
  EXPECT_TRUE(bus.write(0x608, dword));
  ASSERT_EQ(dev.accesses.size(), 1u);
  EXPECT_EQ(dev.accesses[0].offset, 8u);
  EXPECT_EQ(dev.accesses[0].data, (std::vector<uint8_t>{1, 2, 3, 4}));
}

TEST(IoBus, UnmappedReadsSeeAllOnesAndWritesAreDropped) {
  IoBus bus;
  RecordingDevice dev(0x55);
  ASSERT_TRUE(bus.add(0x3F8, 8, &dev).ok());
  uint8_t data[4] = {0, 0, 0, 0};
  EXPECT_FALSE(bus.read(0x2F8, data));
  EXPECT_THAT(data, ::testing::Each(0xFF));
  EXPECT_FALSE(bus.write(0x2F8, data));
  EXPECT_FALSE(bus.read(0, data));
  EXPECT_FALSE(bus.read(UINT64_MAX, data));
  EXPECT_TRUE(dev.accesses.empty());
  IoBus empty;
  EXPECT_FALSE(empty.read(0x3F8, data));
}

TEST(IoBus, OverlappingRangesAreRejected) {
  IoBus bus;
  RecordingDevice a(0), b(0);
  ASSERT_TRUE(bus.add(0x3F8, 8, &a).ok());
  // Starts inside.
  auto inside = bus.add(0x3FC, 8, &b);
  ASSERT_FALSE(inside.ok());
  EXPECT_EQ(inside.error().message(), "I/O bus: range at 0x3fc overlaps 0x3f8");
  // Ends inside.
  auto tail = bus.add(0x3F0, 9, &b);
  ASSERT_FALSE(tail.ok());
  EXPECT_EQ(tail.error().message(), "I/O bus: range at 0x3f0 overlaps 0x3f8");
  // Covers it entirely.
  EXPECT_FALSE(bus.add(0x300, 0x200, &b).ok());
  // Same base.
  EXPECT_FALSE(bus.add(0x3F8, 1, &b).ok());
  // Inside it.
  EXPECT_FALSE(bus.add(0x3F9, 1, &b).ok());
  // The rejected adds left the bus as it was.
  uint8_t byte;
  EXPECT_FALSE(bus.read(0x3F0, {&byte, 1}));
  EXPECT_FALSE(bus.read(0x400, {&byte, 1}));
}

TEST(IoBus, AdjacentRangesAreFine) {
  IoBus bus;
  RecordingDevice a(0xA), b(0xB), c(0xC);
  ASSERT_TRUE(bus.add(0x3F8, 8, &a).ok());
  ASSERT_TRUE(bus.add(0x400, 1, &b).ok());
  ASSERT_TRUE(bus.add(0x3F0, 8, &c).ok());
  uint8_t byte;
  ASSERT_TRUE(bus.read(0x3F7, {&byte, 1}));
  EXPECT_EQ(byte, 0xC);
  ASSERT_TRUE(bus.read(0x3FF, {&byte, 1}));
  EXPECT_EQ(byte, 0xA);
  ASSERT_TRUE(bus.read(0x400, {&byte, 1}));
  EXPECT_EQ(byte, 0xB);
}

TEST(IoBus, EmptyRangeIsRejected) {
  IoBus bus;
  RecordingDevice a(0);
  auto st = bus.add(0xCF9, 0, &a);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message(), "I/O bus: empty range at 0xcf9");
}

TEST(IoBus, ManyRangesAddedOutOfOrderAreFound) {
  IoBus bus;
  std::vector<std::unique_ptr<RecordingDevice>> devices;
  for (uint64_t i : {7, 3, 9, 1, 5, 0, 8, 2, 6, 4}) {
    devices.push_back(std::make_unique<RecordingDevice>(static_cast<uint8_t>(i)));
    ASSERT_TRUE(bus.add(0x1000 + i * 0x10, 4, devices.back().get()).ok());
  }
  for (uint64_t i = 0; i < 10; ++i) {
    uint8_t byte = 0xEE;
    EXPECT_TRUE(bus.read(0x1000 + i * 0x10 + 3, {&byte, 1}));
    EXPECT_EQ(byte, i);
    EXPECT_FALSE(bus.read(0x1000 + i * 0x10 + 4, {&byte, 1}));
  }
}

TEST(IoBus, RangeAtTheTopOfTheAddressSpace) {
  IoBus bus;
  RecordingDevice top(0x77);
  ASSERT_TRUE(bus.add(UINT64_MAX - 15, 16, &top).ok());
  uint8_t byte;
  EXPECT_TRUE(bus.read(UINT64_MAX, {&byte, 1}));
  EXPECT_EQ(top.accesses.back().offset, 15u);
}

TEST(IoBus, OverlapAtTheTopOfTheAddressSpaceIsRejected) {
  // Range ends that reach 2^64 must not wrap to 0 in the overlap checks.
  IoBus bus;
  RecordingDevice top(0x77), other(0x88);
  ASSERT_TRUE(bus.add(UINT64_MAX - 15, 16, &top).ok());
  EXPECT_FALSE(bus.add(UINT64_MAX - 7, 1, &other).ok()) << "inside the top range";
  EXPECT_FALSE(bus.add(UINT64_MAX - 31, 32, &other).ok()) << "ends exactly at 2^64, covering the top range";
  EXPECT_FALSE(bus.add(UINT64_MAX - 31, 17, &other).ok()) << "ends inside the top range";
  EXPECT_TRUE(bus.add(UINT64_MAX - 31, 16, &other).ok()) << "just below it";
  uint8_t byte;
  ASSERT_TRUE(bus.read(UINT64_MAX - 8, {&byte, 1}));
  EXPECT_EQ(byte, 0x77);
}

TEST(IoBus, RangeWrappingPastTheTopIsRejected) {
  IoBus bus;
  RecordingDevice low(0x11), wrapping(0x22);
  ASSERT_TRUE(bus.add(0x10, 4, &low).ok());
  auto st = bus.add(UINT64_MAX - 3, 0x100, &wrapping);  // would cover 2^64-4 .. 0xFB
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.error().message(), HasSubstr("I/O bus: range at 0xfffffffffffffffc"));
  uint8_t byte;
  ASSERT_TRUE(bus.read(0x10, {&byte, 1}));
  EXPECT_EQ(byte, 0x11);
}

}  // namespace
}  // namespace vmmd
