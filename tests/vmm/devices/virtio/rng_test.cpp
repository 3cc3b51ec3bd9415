// virtio-rng driven through the driver harness: no guest, no PCI bus.
#include "vmm/devices/virtio/rng.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "base/unique_fd.h"
#include "tests/vmm/devices/virtio/harness_transport.h"
#include "tests/vmm/devices/virtio/hostile_chains.h"

namespace vmmd::virtio {
namespace {

using testing::DriverHarness;
using testing::HarnessTransport;

constexpr uint16_t kQueueSize = 16;
constexpr uint64_t D = DriverHarness::kData;
constexpr uint64_t kRam = HarnessTransport::memoryFor(1);

class RngTest : public ::testing::Test {
 protected:
  void SetUp() override { start(VirtioRng::create()); }

  void start(Result<std::unique_ptr<VirtioRng>> created) {
    ASSERT_TRUE(created.ok()) << created.error().message();
    transport_.reset();  // a test that starts another device: the old transport resets the old one
    rng_ = std::move(*created);
    auto memory = GuestMemory::create(kRam);
    ASSERT_TRUE(memory.ok()) << memory.error().message();
    memory_.emplace(std::move(*memory));
    transport_ = std::make_unique<HarnessTransport>(*memory_, *rng_, kQueueSize, kFeatureVersion1);
    ASSERT_TRUE(transport_->start().ok());
    // A known pattern over the data area, so writes show up (and writes where none belong).
    std::fill_n(memory_->hostAddress(D, kGuard), kGuard, 0xCC);
  }
  DriverHarness& driver() { return transport_->driver(0); }
  uint8_t* at(uint64_t address) { return memory_->hostAddress(address, 1); }
  bool untouched(uint64_t address, size_t length) {
    return std::all_of(at(address), at(address) + length, [](uint8_t b) { return b == 0xCC; });
  }

  static constexpr size_t kGuard = 1 << 20;
  std::unique_ptr<VirtioRng> rng_;
  std::optional<GuestMemory> memory_;
  std::unique_ptr<HarnessTransport> transport_;
};

TEST_F(RngTest, FillsEveryWritableBufferAndReportsTheLength) {
  uint16_t head = driver().offerChain({{D, 64, true}, {D + 0x1000, 4096, true}});
  transport_->kick(0);
  ASSERT_FALSE(transport_->broken());
  ASSERT_EQ(driver().usedIndex(), 1);
  EXPECT_EQ(driver().usedElement(0), std::make_pair(uint32_t{head}, 64u + 4096u));
  EXPECT_EQ(transport_->interrupts(0), 1u);
  // 64 random bytes all equal to the 0xCC pattern would be a 2^-512 event.
  EXPECT_FALSE(untouched(D, 64));
  EXPECT_FALSE(untouched(D + 0x1000, 4096));
  // Not a byte beyond the buffers.
  EXPECT_TRUE(untouched(D + 64, 0x1000 - 64));
  EXPECT_TRUE(untouched(D + 0x2000, kGuard - 0x2000));
}

TEST_F(RngTest, ServesEveryChainOfOneKick) {
  for (uint64_t i = 0; i < 5; ++i) driver().offerChain({{D + i * 0x100, 16, true}});
  transport_->kick(0);
  ASSERT_EQ(driver().usedIndex(), 5);
  for (uint16_t i = 0; i < 5; ++i) EXPECT_EQ(driver().usedElement(i).second, 16u);
  EXPECT_TRUE(untouched(D + 16, 0x100 - 16));
}

TEST_F(RngTest, ZeroLengthBufferIsUsedWithNothingWritten) {
  driver().offerChain({{D, 0, true}});
  transport_->kick(0);
  ASSERT_FALSE(transport_->broken());
  ASSERT_EQ(driver().usedIndex(), 1);
  EXPECT_EQ(driver().usedElement(0).second, 0u);
  EXPECT_TRUE(untouched(D, kGuard));
}

TEST_F(RngTest, DeviceReadableBufferIsNeverWritten) {
  // The driver got the direction wrong: the device has nowhere to put entropy.
  driver().offerChain({{D, 256, false}});
  transport_->kick(0);
  ASSERT_EQ(driver().usedIndex(), 1);
  EXPECT_EQ(driver().usedElement(0).second, 0u);
  EXPECT_TRUE(untouched(D, kGuard));
}

TEST_F(RngTest, OnlyTheWritablePartOfAMixedChainIsFilled) {
  driver().offerChain({{D, 32, false}, {D + 0x100, 32, true}});
  transport_->kick(0);
  ASSERT_EQ(driver().usedIndex(), 1);
  EXPECT_EQ(driver().usedElement(0).second, 32u);
  EXPECT_TRUE(untouched(D, 32));
  EXPECT_FALSE(untouched(D + 0x100, 32));
}

TEST_F(RngTest, AvailIndexRunningAheadBreaksTheDevice) {
  driver().setAvailIndex(kQueueSize + 3);
  transport_->kick(0);
  EXPECT_TRUE(transport_->broken());
  EXPECT_EQ(driver().usedIndex(), 0);
  EXPECT_TRUE(untouched(D, kGuard));
}

TEST_F(RngTest, KicksAfterABreakAreIgnoredUntilReset) {
  driver().setDescriptor(0, {D, 16, testing::kNext | testing::kWrite, 0});  // a self loop
  driver().offer(0);
  transport_->kick(0);
  ASSERT_TRUE(transport_->broken());
  driver().offerChain({{D + 0x100, 16, true}});
  transport_->kick(0);
  EXPECT_EQ(driver().usedIndex(), 0);
  EXPECT_TRUE(untouched(D + 0x100, 16));
}

TEST(RngSource, ShortReadFromTheSourceReportsWhatWasWritten) {
  // A source with only 10 bytes left: the used length says 10, the rest of the buffer is intact.
  char path[] = "/tmp/vmmd-rng-test-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "0123456789", 10), 10);
  ::close(fd);
  auto rng = VirtioRng::create(path);
  ::unlink(path);
  ASSERT_TRUE(rng.ok()) << rng.error().message();
  auto memory = GuestMemory::create(kRam);
  ASSERT_TRUE(memory.ok());
  HarnessTransport transport(*memory, **rng, kQueueSize, kFeatureVersion1);
  ASSERT_TRUE(transport.start().ok());
  std::fill_n(memory->hostAddress(D, 64), 64, 0xCC);
  transport.driver(0).offerChain({{D, 64, true}});
  transport.kick(0);
  ASSERT_EQ(transport.driver(0).usedIndex(), 1);
  EXPECT_EQ(transport.driver(0).usedElement(0).second, 10u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(memory->hostAddress(D, 10)), 10), "0123456789");
  EXPECT_EQ(memory->hostAddress(D, 64)[10], 0xCC);
}

TEST(RngSource, MissingSourceIsAnError) {
  auto rng = VirtioRng::create("/nonexistent/vmmd-entropy");
  ASSERT_FALSE(rng.ok());
  EXPECT_NE(rng.error().message().find("/nonexistent/vmmd-entropy"), std::string::npos);
}

// A driver (a vCPU) that keeps offering the same head, which the device returns at once, for as
// long as the device serves it: the kick must yield after a queue's worth of chains and ask for
// another pass (on PCI: its eventfd, polled with QMP and the console), not spin until the guest
// stops. To make the race deterministic the entropy source is a pipe the "vCPU" feeds one chain's
// bytes at a time, each after offering one more chain: the device never finds the ring empty.
// Before the bound the kick returned only when the vCPU gave up (after 3 s).
TEST_F(RngTest, DriverSpinningTheAvailIndexCannotKeepTheKickRunning) {
  using Clock = std::chrono::steady_clock;
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  start(VirtioRng::create("/proc/self/fd/" + std::to_string(read_end.get())));
  driver().setDescriptor(0, {D, 16, testing::kWrite, 0});
  for (uint16_t i = 0; i < kQueueSize; ++i) driver().offer(0);
  std::atomic<bool> stop{false};
  std::thread vcpu([&] {
    const uint8_t bytes[16] = {};
    auto give_up = Clock::now() + std::chrono::seconds(3);
    uint16_t seen = 0;
    (void)!::write(write_end.get(), bytes, sizeof bytes);  // the first chain's entropy
    while (!stop && Clock::now() < give_up) {
      if (driver().usedIndex() == seen) continue;
      ++seen;
      driver().offer(0);  // one more chain for each one returned: the ring stays full
      (void)!::write(write_end.get(), bytes, sizeof bytes);
    }
    write_end.reset();  // the device then reads end-of-file: it returns what is left, empty
  });
  auto started = Clock::now();
  transport_->kick(0);
  auto took = Clock::now() - started;
  stop = true;
  vcpu.join();
  EXPECT_LT(took, std::chrono::seconds(1));
  EXPECT_FALSE(transport_->broken());
  EXPECT_EQ(transport_->kicksAsked(0), 1u);
  EXPECT_EQ(driver().usedIndex(), kQueueSize);  // one queue's worth in that pass
  // The passes asked for serve what the driver left, then stop asking.
  transport_->runKicksAsked(0);
  EXPECT_EQ(transport_->kicksAsked(0), 0u);
  EXPECT_FALSE(transport_->broken());
}

class RngHostileChainTest : public RngTest, public ::testing::WithParamInterface<testing::HostileChain> {};

TEST_P(RngHostileChainTest, BreaksTheDeviceWithoutWriting) {
  testing::offerHostile(driver(), GetParam());
  transport_->kick(0);
  EXPECT_TRUE(transport_->broken()) << GetParam().name;
  EXPECT_EQ(driver().usedIndex(), 0);
  EXPECT_TRUE(untouched(D, 0x8000));  // the data area (the indirect table lives above it)
}

INSTANTIATE_TEST_SUITE_P(Hostile, RngHostileChainTest, ::testing::ValuesIn(testing::hostileChains(kQueueSize, kRam)),
                         [](const auto& info) { return testing::hostileChainName(info.param.name); });

}  // namespace
}  // namespace vmmd::virtio
