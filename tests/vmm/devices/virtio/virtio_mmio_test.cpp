// The virtio-mmio transport driven through its registers as Linux's virtio_mmio driver programs
// it (no KVM: no VM attached, so QueueNotify writes reach the queue's eventfd through the
// transport and the interrupt line is recorded), and as a hostile driver misprograms it.
#include "vmm/devices/virtio/virtio_mmio.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <optional>

#include "tests/vmm/devices/fake_line.h"
#include "tests/vmm/devices/state_checks.h"
#include "tests/vmm/devices/virtio/virtio_driver_harness.h"
#include "vmm/devices/virtio/net.h"
#include "vmm/devices/virtio/rng.h"

namespace vmmd::virtio {
namespace {

using testing::DriverHarness;
using vmmd::testing::RecordedLine;
using R = VirtioMmio::Register;

constexpr uint64_t kRam = 64ull << 20;
constexpr uint64_t kQueueBase = 16ull << 20;
constexpr uint16_t kQueueSize = 16;
constexpr uint64_t kData = kQueueBase + DriverHarness::kData;
constexpr uint64_t kBase = 0xFEB00000;
constexpr uint8_t kAcknowledge = 1, kDriver = 2, kDriverOk = 4, kFeaturesOk = 8, kNeedsReset = 64;

class NullNetBackend : public NetBackend {
 public:
  int fd() const override { return -1; }
  Status setOffloads(bool, bool, bool, bool) override { return {}; }
  void waitReadable(bool) override {}
  void waitWritable(bool) override {}
};

class VirtioMmioTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto memory = GuestMemory::create(kRam);
    ASSERT_TRUE(memory.ok()) << memory.error().message();
    memory_.emplace(std::move(*memory));
  }

  std::unique_ptr<VirtioMmio> transport(std::unique_ptr<VirtioDevice> device) {
    auto mmio = VirtioMmio::create(std::move(device), *memory_, kBase, line_.line());
    EXPECT_TRUE(mmio.ok()) << mmio.error().message();
    if (!mmio) return nullptr;
    (*mmio)->watchNotifications([this](int, std::function<void()> on_readable) { notify_.push_back(std::move(on_readable)); });
    return std::move(*mmio);
  }
  std::unique_ptr<VirtioMmio> rng() {
    auto device = VirtioRng::create("/dev/zero");
    EXPECT_TRUE(device.ok());
    return transport(std::move(*device));
  }

  static void write32(VirtioMmio& mmio, uint64_t offset, uint32_t value) { mmio.write(offset, {reinterpret_cast<uint8_t*>(&value), 4}); }
  static uint32_t read32(VirtioMmio& mmio, uint64_t offset) {
    uint32_t value = 0;
    mmio.read(offset, {reinterpret_cast<uint8_t*>(&value), 4});
    return value;
  }
  static void setAddress(VirtioMmio& mmio, uint64_t low_register, uint64_t address) {
    write32(mmio, low_register, static_cast<uint32_t>(address));
    write32(mmio, low_register + 4, static_cast<uint32_t>(address >> 32));
  }

  // Linux's virtio_mmio order: status, features, FEATURES_OK, then per queue: select, check not
  // ready, read the maximum, size, ring addresses, ready; DRIVER_OK last.
  void negotiate(VirtioMmio& mmio) {
    write32(mmio, R::kStatus, kAcknowledge | kDriver);
    write32(mmio, R::kDriverFeaturesSel, 1);
    write32(mmio, R::kDriverFeatures, 1);  // VERSION_1
    write32(mmio, R::kDriverFeaturesSel, 0);
    write32(mmio, R::kDriverFeatures, 0);
    write32(mmio, R::kStatus, kAcknowledge | kDriver | kFeaturesOk);
  }
  void setUpQueue(VirtioMmio& mmio, const DriverHarness& driver, uint32_t size = kQueueSize) {
    write32(mmio, R::kQueueSel, 0);
    ASSERT_EQ(read32(mmio, R::kQueueReady), 0u);
    ASSERT_GE(read32(mmio, R::kQueueNumMax), size);
    write32(mmio, R::kQueueNum, size);
    setAddress(mmio, R::kQueueDescLow, driver.descriptors());
    setAddress(mmio, R::kQueueDriverLow, driver.avail());
    setAddress(mmio, R::kQueueDeviceLow, driver.used());
    write32(mmio, R::kQueueReady, 1);
  }
  void bringUp(VirtioMmio& mmio, const DriverHarness& driver) {
    negotiate(mmio);
    setUpQueue(mmio, driver);
    write32(mmio, R::kStatus, kAcknowledge | kDriver | kFeaturesOk | kDriverOk);
  }
  // What the main loop does when a notify eventfd becomes readable.
  void runLoop() {
    for (auto& callback : notify_) callback();
  }

  std::optional<GuestMemory> memory_;
  RecordedLine line_{16};
  std::vector<std::function<void()>> notify_;
};

TEST_F(VirtioMmioTest, IdentifiesAsAVersion2DeviceOfItsType) {
  auto mmio = rng();
  EXPECT_EQ(read32(*mmio, R::kMagicValue), 0x74726976u);
  EXPECT_EQ(read32(*mmio, R::kVersionReg), 2u);
  EXPECT_EQ(read32(*mmio, R::kDeviceId), 4u);  // entropy
  EXPECT_EQ(read32(*mmio, R::kVendorIdReg), VirtioMmio::kVendorId);
  write32(*mmio, R::kDeviceFeaturesSel, 1);
  EXPECT_EQ(read32(*mmio, R::kDeviceFeatures) & 1, 1u);  // VERSION_1
  write32(*mmio, R::kDeviceFeaturesSel, 7);
  EXPECT_EQ(read32(*mmio, R::kDeviceFeatures), 0u);
  EXPECT_EQ(read32(*mmio, R::kShmLenLow), 0xFFFFFFFFu);  // no shared memory region
  EXPECT_EQ(mmio->gsi(), 16u);
  EXPECT_EQ(mmio->base(), kBase);
}

TEST_F(VirtioMmioTest, ServesAKickAndRaisesItsLevelTriggeredLineUntilAcknowledged) {
  auto mmio = rng();
  DriverHarness driver(*memory_, kQueueSize, kQueueBase);
  bringUp(*mmio, driver);
  ASSERT_EQ(mmio->status(), kAcknowledge | kDriver | kFeaturesOk | kDriverOk);

  driver.offerChain({{kData, 64, true}});
  write32(*mmio, R::kQueueNotify, 0);  // no ioeventfd (no VM): the transport signals the queue's fd
  runLoop();
  ASSERT_EQ(driver.usedIndex(), 1);
  EXPECT_EQ(driver.usedElement(0).second, 64u);
  EXPECT_TRUE(line_.level());
  EXPECT_EQ(read32(*mmio, R::kInterruptStatus), VirtioMmio::kInterruptUsedBuffer);
  write32(*mmio, R::kInterruptAck, VirtioMmio::kInterruptUsedBuffer);
  EXPECT_FALSE(line_.level());
  EXPECT_EQ(read32(*mmio, R::kInterruptStatus), 0u);

  // A kick for a queue the device does not have is dropped; a reset lowers everything.
  write32(*mmio, R::kQueueNotify, 5);
  runLoop();
  EXPECT_EQ(driver.usedIndex(), 1);
  driver.offerChain({{kData, 8, true}});
  write32(*mmio, R::kQueueNotify, 0);
  runLoop();
  EXPECT_TRUE(line_.level());
  write32(*mmio, R::kStatus, 0);
  EXPECT_FALSE(line_.level());
  EXPECT_EQ(mmio->status(), 0);
  EXPECT_EQ(read32(*mmio, R::kQueueReady), 0u);
}

TEST_F(VirtioMmioTest, ASelectorPastTheLastQueueReadsAsAbsentAndItsWritesVanish) {
  auto mmio = rng();
  negotiate(*mmio);
  for (uint32_t select : {1u, 0xFFFFu, 0x10000u, 0xFFFFFFFFu}) {
    write32(*mmio, R::kQueueSel, select);
    EXPECT_EQ(read32(*mmio, R::kQueueNumMax), 0u) << select;
    write32(*mmio, R::kQueueNum, 8);
    setAddress(*mmio, R::kQueueDescLow, 0x1000);
    write32(*mmio, R::kQueueReady, 1);
    EXPECT_EQ(read32(*mmio, R::kQueueReady), 0u) << select;
  }
  EXPECT_EQ(mmio->status() & kNeedsReset, 0);
}

TEST_F(VirtioMmioTest, HostileQueueSizesAndRingsFailTheDeviceNotTheHost) {
  struct Case {
    const char* what;
    uint32_t size;
    uint64_t desc;
  };
  for (const Case& c : {Case{"above the maximum", 512, kQueueBase}, Case{"past 16 bits", 0x10010, kQueueBase},
                        Case{"not a power of 2", 12, kQueueBase}, Case{"rings past guest memory", 16, kRam - 16},
                        Case{"rings at the top of the address space", 16, ~0ull << 4}}) {
    auto mmio = rng();
    line_.levels->clear();
    negotiate(*mmio);
    write32(*mmio, R::kQueueSel, 0);
    write32(*mmio, R::kQueueNum, c.size);
    setAddress(*mmio, R::kQueueDescLow, c.desc);
    setAddress(*mmio, R::kQueueDriverLow, kQueueBase + DriverHarness::kAvail);
    setAddress(*mmio, R::kQueueDeviceLow, kQueueBase + DriverHarness::kUsed);
    write32(*mmio, R::kQueueReady, 1);
    EXPECT_EQ(read32(*mmio, R::kQueueReady), 0u) << c.what;
    EXPECT_TRUE(mmio->status() & kNeedsReset) << c.what;
    EXPECT_EQ(read32(*mmio, R::kInterruptStatus), VirtioMmio::kInterruptConfigChange) << c.what;
    // DRIVER_OK after the failure does not start the device; a reset clears the failure.
    write32(*mmio, R::kStatus, kAcknowledge | kDriver | kFeaturesOk | kDriverOk);
    write32(*mmio, R::kQueueNotify, 0);
    runLoop();
    write32(*mmio, R::kStatus, 0);
    EXPECT_EQ(mmio->status(), 0) << c.what;
    notify_.clear();
  }
}

TEST_F(VirtioMmioTest, QueueRegistersAreFixedOnceReadyAndADisabledQueueIsNotServed) {
  auto mmio = rng();
  DriverHarness driver(*memory_, kQueueSize, kQueueBase);
  bringUp(*mmio, driver);
  // Moving the rings of a live queue (anywhere: here outside guest memory) is ignored.
  setAddress(*mmio, R::kQueueDescLow, kRam + 0x1000);
  write32(*mmio, R::kQueueNum, 4);
  driver.offerChain({{kData, 16, true}});
  write32(*mmio, R::kQueueNotify, 0);
  runLoop();
  EXPECT_EQ(driver.usedIndex(), 1);
  // Linux's del_vq: QueueReady 0 must read back 0; kicks are no longer served, nor does 1
  // bring the old ring back before a reset.
  write32(*mmio, R::kQueueReady, 0);
  EXPECT_EQ(read32(*mmio, R::kQueueReady), 0u);
  driver.offerChain({{kData, 16, true}});
  write32(*mmio, R::kQueueNotify, 0);
  runLoop();
  write32(*mmio, R::kQueueReady, 1);
  write32(*mmio, R::kQueueNotify, 0);
  runLoop();
  EXPECT_EQ(driver.usedIndex(), 1);
  // After a reset the queue is set up afresh.
  write32(*mmio, R::kStatus, 0);
  DriverHarness again(*memory_, kQueueSize, kQueueBase + 0x100000);
  bringUp(*mmio, again);
  again.offerChain({{kData, 16, true}});
  write32(*mmio, R::kQueueNotify, 0);
  runLoop();
  EXPECT_EQ(again.usedIndex(), 1);
}

TEST_F(VirtioMmioTest, NarrowOrUnalignedRegisterAccessesAreIgnored) {
  auto mmio = rng();
  uint8_t byte = kAcknowledge;
  mmio->write(R::kStatus, {&byte, 1});
  EXPECT_EQ(mmio->status(), 0);
  uint32_t value = kAcknowledge;
  mmio->write(R::kStatus + 1, {reinterpret_cast<uint8_t*>(&value), 4});
  EXPECT_EQ(mmio->status(), 0);
  uint8_t out[8];
  std::memset(out, 0xAA, sizeof out);
  mmio->read(R::kMagicValue, {out, 2});
  EXPECT_EQ(out[0], 0);
  EXPECT_EQ(out[1], 0);
  mmio->read(R::kMagicValue, {out, 8});
  EXPECT_EQ(out[0], 0);
}

TEST_F(VirtioMmioTest, FeaturesOkDoesNotStickForALegacyDriverOrUnofferedBits) {
  auto mmio = rng();
  write32(*mmio, R::kStatus, kAcknowledge | kDriver);
  write32(*mmio, R::kStatus, kAcknowledge | kDriver | kFeaturesOk);  // no VERSION_1
  EXPECT_EQ(mmio->status() & kFeaturesOk, 0);
  write32(*mmio, R::kDriverFeaturesSel, 1);
  write32(*mmio, R::kDriverFeatures, 1 | 0x80000000u);  // VERSION_1 and a bit nobody offered
  write32(*mmio, R::kStatus, kAcknowledge | kDriver | kFeaturesOk);
  EXPECT_EQ(mmio->status() & kFeaturesOk, 0);
  write32(*mmio, R::kDriverFeatures, 1);
  write32(*mmio, R::kStatus, kAcknowledge | kDriver | kFeaturesOk);
  EXPECT_EQ(mmio->status() & kFeaturesOk, kFeaturesOk);
  write32(*mmio, R::kDriverFeatures, 0);  // frozen once accepted
  EXPECT_EQ(mmio->negotiatedFeatures(), kFeatureVersion1);
}

TEST_F(VirtioMmioTest, DeviceConfigurationLivesAbove0x100AndAConfigChangeInterrupts) {
  auto net = transport(std::make_unique<VirtioNet>(std::make_unique<NullNetBackend>(),
                                                   std::array<uint8_t, 6>{0x52, 0x54, 0, 0x12, 0x34, 0x77}));
  uint8_t mac[6];
  for (int i = 0; i < 6; ++i) net->read(VirtioMmio::kConfigOffset + i, {&mac[i], 1});
  EXPECT_EQ(mac[5], 0x77);
  EXPECT_EQ(mac[0], 0x52);
  DriverHarness driver(*memory_, kQueueSize, kQueueBase);
  negotiate(*net);
  write32(*net, R::kStatus, kAcknowledge | kDriver | kFeaturesOk | kDriverOk);
  uint32_t generation = read32(*net, R::kConfigGeneration);
  {
    auto lock = net->device().lock();
    static_cast<VirtioNet&>(net->device()).setLink(false);
  }
  EXPECT_NE(read32(*net, R::kConfigGeneration), generation);
  EXPECT_EQ(read32(*net, R::kInterruptStatus), VirtioMmio::kInterruptConfigChange);
  EXPECT_TRUE(line_.level());
}

TEST_F(VirtioMmioTest, KickAgainMakesTheQueueNotificationReadable) {
  auto mmio = rng();
  std::vector<int> fds;
  mmio->watchNotifications([&](int fd, std::function<void()>) { fds.push_back(fd); });
  ASSERT_EQ(fds.size(), 1u);
  mmio->kickAgain(0);
  uint64_t count = 0;
  ASSERT_EQ(::read(fds[0], &count, sizeof count), static_cast<ssize_t>(sizeof count));
  EXPECT_EQ(count, 1u);
  mmio->kickAgain(9);  // no such queue: ignored
}

}  // namespace
}  // namespace vmmd::virtio

namespace vmmd::virtio {
namespace {

// Saved mid-run with an interrupt pending, loaded into a fresh transport: the registers read back
// the same, the line is high again, and the next buffer is served from where the source stopped.
TEST_F(VirtioMmioTest, ALoadedTransportReadsBackAsTheSavedOneAndResumesItsRings) {
  auto source = rng();
  DriverHarness driver(*memory_, kQueueSize, kQueueBase);
  bringUp(*source, driver);
  driver.offerChain({{kData, 64, true}});
  write32(*source, R::kQueueNotify, 0);
  runLoop();
  ASSERT_EQ(driver.usedIndex(), 1);
  auto saved = source->saveState();
  ASSERT_TRUE(saved.ok()) << saved.error().message();
  std::vector<uint32_t> registers;
  for (uint64_t offset : {R::kStatus, R::kInterruptStatus, R::kQueueReady, R::kQueueNum}) registers.push_back(read32(*source, offset));
  notify_.clear();
  source.reset();

  RecordedLine target_line(16);
  auto mmio = VirtioMmio::create(*VirtioRng::create("/dev/zero"), *memory_, kBase, target_line.line());
  ASSERT_TRUE(mmio.ok());
  auto& target = **mmio;
  target.watchNotifications([this](int, std::function<void()> on_readable) { notify_.push_back(std::move(on_readable)); });
  auto loaded = target.loadState(*saved);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message();
  EXPECT_TRUE(target_line.level()) << "the pending interrupt is raised again";
  std::vector<uint32_t> loaded_registers;
  for (uint64_t offset : {R::kStatus, R::kInterruptStatus, R::kQueueReady, R::kQueueNum}) loaded_registers.push_back(read32(target, offset));
  EXPECT_EQ(loaded_registers, registers);
  auto again = target.saveState();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->bytes, saved->bytes);

  // Stopped (Machine::stopDeviceIo) the device serves no kick; resumed, the kick is served.
  driver.offerChain({{kData + 4096, 16, true}});
  {
    auto lock = target.device().lock();
    target.device().stopIo();
  }
  write32(target, R::kQueueNotify, 0);
  runLoop();
  EXPECT_EQ(driver.usedIndex(), 1) << "a stopped device served a kick";
  {
    auto lock = target.device().lock();
    target.device().resumeIo();
  }
  target.kickAgain(0);
  runLoop();
  EXPECT_EQ(driver.usedIndex(), 2);
  EXPECT_EQ(driver.usedElement(1).second, 16u);

  auto fresh = rng();
  vmmd::testing::expectHostileStatesRefused(*fresh, *saved);
  auto net = transport(std::make_unique<VirtioNet>(std::make_unique<NullNetBackend>(), std::array<uint8_t, 6>{0x52, 0x54, 0, 1, 2, 3}));
  auto refused = net->loadState(*saved);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("queues, this device has 2"), std::string::npos) << refused.error().message();
}

}  // namespace
}  // namespace vmmd::virtio
