#include "vmm/devices/virtio/virtqueue.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "tests/vmm/devices/virtio/virtio_driver_harness.h"

namespace vmmd::virtio {
namespace {

using testing::Desc;
using testing::DriverHarness;
using testing::kIndirect;
using testing::kNext;
using testing::kWrite;

class VirtqueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto created = GuestMemory::create(4 << 20);
    ASSERT_TRUE(created.ok());
    memory_.emplace(std::move(*created));
    driver_.emplace(*memory_, 8);
    ASSERT_TRUE(queue_.configure(*memory_, driver_->layout(), /*event_idx=*/false).ok());
  }
  std::optional<GuestMemory> memory_;
  std::optional<DriverHarness> driver_;
  Virtqueue queue_;
};

TEST_F(VirtqueueTest, EmptyQueueYieldsNothing) {
  auto chain = queue_.pop();
  ASSERT_TRUE(chain.ok());
  EXPECT_FALSE(chain->has_value());
}

TEST_F(VirtqueueTest, ReadableThenWritableChain) {
  driver_->setDescriptor(0, {DriverHarness::kData, 16, kNext, 1});
  driver_->setDescriptor(1, {DriverHarness::kData + 0x1000, 512, kNext | kWrite, 2});
  driver_->setDescriptor(2, {DriverHarness::kData + 0x2000, 1, kWrite, 0});
  (void)memory_->write(DriverHarness::kData, std::vector<uint8_t>(16, 0xAB));
  driver_->offer(0);
  auto chain = queue_.pop();
  ASSERT_TRUE(chain.ok()) << chain.error().message();
  ASSERT_TRUE(chain->has_value());
  const DescriptorChain& c = **chain;
  EXPECT_EQ(c.head, 0);
  ASSERT_EQ(c.readable.size(), 1u);
  ASSERT_EQ(c.writable.size(), 2u);
  EXPECT_EQ(c.readable[0].data[0], 0xAB);
  EXPECT_EQ(c.readableBytes(), 16u);
  EXPECT_EQ(c.writableBytes(), 513u);
  c.writable[0].data[0] = 0x5A;
  ASSERT_TRUE(queue_.push(c.head, 513).ok());
  EXPECT_EQ(driver_->usedIndex(), 1);
  EXPECT_EQ(driver_->usedElement(0), std::make_pair(0u, 513u));
  uint8_t back;
  ASSERT_TRUE(memory_->read(DriverHarness::kData + 0x1000, {&back, 1}).ok());
  EXPECT_EQ(back, 0x5A);
}

TEST_F(VirtqueueTest, IndirectTable) {
  uint64_t table = DriverHarness::kData + 0x8000;
  driver_->setDescriptor(0, {DriverHarness::kData, 8, kNext, 1}, table);
  driver_->setDescriptor(1, {DriverHarness::kData + 0x100, 8, kWrite, 0}, table);
  driver_->setDescriptor(3, {table, 32, kIndirect, 0});
  driver_->offer(3);
  auto chain = queue_.pop();
  ASSERT_TRUE(chain.ok()) << chain.error().message();
  EXPECT_EQ((*chain)->head, 3);
  EXPECT_EQ((*chain)->readable.size(), 1u);
  EXPECT_EQ((*chain)->writable.size(), 1u);
}

TEST_F(VirtqueueTest, HeadOfferedAgainWhileInFlightIsRefused) {
  driver_->setDescriptor(0, {DriverHarness::kData, 16, kWrite, 0});
  driver_->offer(0);
  driver_->offer(0);
  auto first = queue_.pop();
  ASSERT_TRUE(first.ok() && first->has_value());
  auto second = queue_.pop();
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message().find("in flight"), std::string::npos) << second.error().message();
}

TEST_F(VirtqueueTest, HeadOfferedAgainAfterItsPushIsServed) {
  driver_->setDescriptor(0, {DriverHarness::kData, 16, kWrite, 0});
  for (int i = 0; i < 40; ++i) {  // five times round the ring
    driver_->offer(0);
    auto chain = queue_.pop();
    ASSERT_TRUE(chain.ok()) << chain.error().message();
    ASSERT_TRUE(chain->has_value());
    ASSERT_TRUE(queue_.push(0, 0).ok());
  }
}

TEST_F(VirtqueueTest, UnpoppedHeadsAreNoLongerInFlight) {
  driver_->setDescriptor(0, {DriverHarness::kData, 16, kWrite, 0});
  driver_->setDescriptor(1, {DriverHarness::kData + 16, 16, kWrite, 0});
  driver_->offer(0);
  driver_->offer(1);
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 2; ++i) {
      auto chain = queue_.pop();
      ASSERT_TRUE(chain.ok()) << chain.error().message();
      ASSERT_TRUE(chain->has_value());
    }
    queue_.unpop(2);
    EXPECT_EQ(queue_.inFlight(), 0);
  }
}

// After a restore the heads in flight are not known, only their count: the driver still cannot
// have more chains in flight than the queue has entries.
TEST_F(VirtqueueTest, MoreChainsInFlightThanTheQueueSizeAreRefused) {
  for (uint16_t i = 0; i < 8; ++i) driver_->setDescriptor(i, {DriverHarness::kData + 16ull * i, 16, kWrite, 0});
  for (uint16_t i = 0; i < 8; ++i) driver_->offer(i);
  queue_.setPosition({8, 0, 0});  // eight popped (before a save) and none returned
  driver_->offer(3);
  auto chain = queue_.pop();
  ASSERT_FALSE(chain.ok());
  EXPECT_NE(chain.error().message().find("size exceeded"), std::string::npos) << chain.error().message();
}

// An indirect table of the most entries the field allows (32768, 512 KiB), each chained to the
// next: refused after kMaxChainDescriptors (QEMU's VIRTQUEUE_MAX_SIZE) instead of costing a
// 32768-buffer list per request.
TEST_F(VirtqueueTest, IndirectTableOf32768ChainedEntriesIsRefused) {
  constexpr uint32_t kEntries = 32768;
  uint64_t table = 0x200000;  // 512 KiB inside the 4 MiB guest
  for (uint32_t i = 0; i < kEntries; ++i) {
    bool last = i + 1 == kEntries;
    driver_->setDescriptor(static_cast<uint16_t>(i), {DriverHarness::kData, 16, static_cast<uint16_t>(last ? 0 : kNext),
                                                      static_cast<uint16_t>(last ? 0 : i + 1)},
                           table);
  }
  driver_->setDescriptor(0, {table, kEntries * 16, kIndirect, 0});
  driver_->offer(0);
  auto chain = queue_.pop();
  ASSERT_FALSE(chain.ok());
  EXPECT_NE(chain.error().message().find("longer than 1024"), std::string::npos) << chain.error().message();
}

TEST_F(VirtqueueTest, IndirectTableOfTheMostDescriptorsAChainMayHaveIsServed) {
  uint64_t table = 0x200000;
  for (uint32_t i = 0; i < kMaxChainDescriptors; ++i) {
    bool last = i + 1 == kMaxChainDescriptors;
    driver_->setDescriptor(static_cast<uint16_t>(i), {DriverHarness::kData, 16, static_cast<uint16_t>(last ? 0 : kNext),
                                                      static_cast<uint16_t>(last ? 0 : i + 1)},
                           table);
  }
  driver_->setDescriptor(0, {table, kMaxChainDescriptors * 16 + 16 * 7, kIndirect, 0});  // unused entries after
  driver_->offer(0);
  auto chain = queue_.pop();
  ASSERT_TRUE(chain.ok()) << chain.error().message();
  EXPECT_EQ((*chain)->readable.size(), kMaxChainDescriptors);
}

struct BadChain {
  const char* name;
  std::vector<std::pair<uint16_t, Desc>> descriptors;
  uint16_t head;
  const char* error;
};

class VirtqueueBadChainTest : public VirtqueueTest, public ::testing::WithParamInterface<BadChain> {};

TEST_P(VirtqueueBadChainTest, IsRefusedWithoutTouchingMemory) {
  const BadChain& bad = GetParam();
  for (const auto& [index, d] : bad.descriptors) driver_->setDescriptor(index, d);
  driver_->offer(bad.head);
  auto chain = queue_.pop();
  ASSERT_FALSE(chain.ok()) << bad.name;
  EXPECT_NE(chain.error().message().find(bad.error), std::string::npos) << chain.error().message();
}

constexpr uint64_t D = DriverHarness::kData;
INSTANTIATE_TEST_SUITE_P(
    Hostile, VirtqueueBadChainTest,
    ::testing::Values(
        BadChain{"loop", {{0, {D, 8, kNext, 1}}, {1, {D, 8, kNext, 0}}}, 0, "loops"},
        BadChain{"self loop", {{2, {D, 8, kNext, 2}}}, 2, "loops"},
        BadChain{"outside memory", {{0, {0xFFFF0000ull, 64, 0, 0}}}, 0, "outside guest memory"},
        BadChain{"wraps around", {{0, {~0ull - 4, 64, 0, 0}}}, 0, "outside guest memory"},
        BadChain{"next out of range", {{0, {D, 8, kNext, 100}}}, 0, "out of range"},
        BadChain{"head out of range", {}, 200, "out of range"},
        BadChain{"readable after writable", {{0, {D, 8, kNext | kWrite, 1}}, {1, {D, 8, 0, 0}}}, 0, "after a device-writable"},
        BadChain{"indirect with next", {{0, {D, 32, kIndirect | kNext, 1}}}, 0, "NEXT"},
        BadChain{"indirect bad length", {{0, {D, 20, kIndirect, 0}}}, 0, "indirect table"},
        BadChain{"indirect outside", {{0, {0x7FFFFFF0ull, 32, kIndirect, 0}}}, 0, "outside guest memory"}),
    [](const auto& info) {
      std::string name = info.param.name;
      for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return name;
    });

TEST_F(VirtqueueTest, NestedIndirectIsRefused) {
  uint64_t table = DriverHarness::kData + 0x8000;
  driver_->setDescriptor(0, {table, 16, kIndirect, 0}, table);  // points at itself
  driver_->setDescriptor(0, {table, 16, kIndirect, 0});
  driver_->offer(0);
  auto chain = queue_.pop();
  ASSERT_FALSE(chain.ok());
  EXPECT_NE(chain.error().message().find("nested indirect"), std::string::npos);
}

TEST_F(VirtqueueTest, AvailIndexRunningAheadIsRefused) {
  driver_->setAvailIndex(9);  // 9 new entries in a queue of 8
  auto chain = queue_.pop();
  ASSERT_FALSE(chain.ok());
  EXPECT_NE(chain.error().message().find("claims 9"), std::string::npos);
}

TEST(VirtqueueConfigure, RejectsBadLayouts) {
  auto memory = GuestMemory::create(2 << 20);
  ASSERT_TRUE(memory.ok());
  Virtqueue queue;
  EXPECT_FALSE(queue.configure(*memory, {6, 0x1000, 0x2000, 0x3000}, false).ok());       // not a power of 2
  EXPECT_FALSE(queue.configure(*memory, {8, 0x1008, 0x2000, 0x3000}, false).ok());       // misaligned
  EXPECT_FALSE(queue.configure(*memory, {256, 0x1FF800, 0x2000, 0x3000}, false).ok());   // runs past the end of RAM
  EXPECT_TRUE(queue.configure(*memory, {256, 0x1000, 0x2000, 0x3000}, false).ok());
}

TEST(VirtqueueEventIdx, BufferOfferedAfterTheLastPopIsNotLost) {
  auto memory = GuestMemory::create(4 << 20);
  ASSERT_TRUE(memory.ok());
  DriverHarness driver(*memory, 8);
  Virtqueue queue;
  ASSERT_TRUE(queue.configure(*memory, driver.layout(), /*event_idx=*/true).ok());
  driver.setDescriptor(0, {D, 8, 0, 0});
  driver.offer(0);
  ASSERT_TRUE(queue.pop().ok());
  // The driver offers another buffer before the device publishes avail_event: it will not kick,
  // so enableNotifications() must report it. (Another head: head 0 is still in flight.)
  driver.setDescriptor(1, {D + 8, 8, 0, 0});
  driver.offer(1);
  EXPECT_TRUE(queue.enableNotifications());
  auto chain = queue.pop();
  ASSERT_TRUE(chain.ok());
  EXPECT_TRUE(chain->has_value());
  EXPECT_FALSE(queue.enableNotifications());
}

TEST_F(VirtqueueTest, NoInterruptFlagSuppressesNotification) {
  driver_->setDescriptor(0, {D, 8, 0, 0});
  driver_->offer(0);
  auto chain = queue_.pop();
  ASSERT_TRUE(chain.ok());
  ASSERT_TRUE(queue_.push(0, 0).ok());
  driver_->setAvailFlags(1);
  EXPECT_FALSE(queue_.shouldNotify());
  driver_->offer(0);
  ASSERT_TRUE(queue_.pop().ok());
  ASSERT_TRUE(queue_.push(0, 0).ok());
  driver_->setAvailFlags(0);
  EXPECT_TRUE(queue_.shouldNotify());
  EXPECT_FALSE(queue_.shouldNotify());  // nothing new since
}

TEST(VirtqueueEventIdx, NotifiesOnlyWhenUsedEventIsCrossed) {
  auto memory = GuestMemory::create(4 << 20);
  ASSERT_TRUE(memory.ok());
  DriverHarness driver(*memory, 8);
  Virtqueue queue;
  ASSERT_TRUE(queue.configure(*memory, driver.layout(), /*event_idx=*/true).ok());
  driver.setDescriptor(0, {D, 8, 0, 0});
  driver.setUsedEvent(1);  // the driver wants an interrupt once used passes index 1
  for (int i = 0; i < 3; ++i) {
    driver.offer(0);
    ASSERT_TRUE(queue.pop().ok());
    ASSERT_TRUE(queue.push(0, 0).ok());
    bool notify = queue.shouldNotify();
    EXPECT_EQ(notify, i == 1) << "after push " << i;
  }
  EXPECT_FALSE(queue.enableNotifications());  // nothing new offered
  EXPECT_EQ(driver.availEvent(), 3);
}

}  // namespace
}  // namespace vmmd::virtio

namespace vmmd::virtio {
namespace {

bool pageMarked(const std::vector<uint64_t>& bitmap, uint64_t address) {
  uint64_t page = address / 4096;
  return bitmap[page / 64] >> (page % 64) & 1;
}

// Live migration: pages the device writes for the guest (the buffers of a returned chain, the
// used ring) are marked while host-write tracking is on, and nothing is marked while it is off.
TEST_F(VirtqueueTest, PushMarksWrittenPagesWhileTracking) {
  driver_->setDescriptor(0, {DriverHarness::kData, 16, kNext, 1});
  driver_->setDescriptor(1, {DriverHarness::kData + 0x3000, 512, kWrite, 0});
  std::vector<uint64_t> bitmap((4u << 20) / 4096 / 64, 0);

  driver_->offer(0);
  auto chain = queue_.pop();
  ASSERT_TRUE(chain.ok() && chain->has_value());
  ASSERT_TRUE(queue_.push(0, 512).ok());
  memory_->takeHostWritten(0, bitmap);
  EXPECT_EQ(std::count(bitmap.begin(), bitmap.end(), 0u), static_cast<std::ptrdiff_t>(bitmap.size())) << "tracking is off";

  memory_->startHostWriteTracking();
  driver_->offer(0);
  chain = queue_.pop();
  ASSERT_TRUE(chain.ok() && chain->has_value());
  ASSERT_TRUE(queue_.push(0, 512).ok());
  memory_->takeHostWritten(0, bitmap);
  EXPECT_TRUE(pageMarked(bitmap, DriverHarness::kData + 0x3000)) << "the device-writable buffer";
  EXPECT_FALSE(pageMarked(bitmap, DriverHarness::kData)) << "the device-readable buffer";
  EXPECT_TRUE(pageMarked(bitmap, driver_->layout().device_area)) << "the used ring";

  std::fill(bitmap.begin(), bitmap.end(), 0);
  memory_->takeHostWritten(0, bitmap);
  EXPECT_EQ(std::count(bitmap.begin(), bitmap.end(), 0u), static_cast<std::ptrdiff_t>(bitmap.size())) << "taking clears";
  ASSERT_TRUE(memory_->write(0x5000, std::vector<uint8_t>(2, 1)).ok());
  memory_->takeHostWritten(0, bitmap);
  EXPECT_TRUE(pageMarked(bitmap, 0x5000)) << "GuestMemory::write";
  memory_->stopHostWriteTracking();
}

}  // namespace
}  // namespace vmmd::virtio
