// The virtio-PCI transport driven through its BAR as a driver programs it (no KVM: no VM is
// attached, MSI-X messages go to eventfds nobody reads), and its saved state: a transport loaded
// from a state reads back as the one saved, down to the queues' ring positions.
#include "vmm/devices/virtio/virtio_pci.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>

#include <cstring>

#include "tests/vmm/devices/state_checks.h"
#include "tests/vmm/devices/virtio/virtio_driver_harness.h"
#include "vmm/devices/virtio/console.h"
#include "vmm/devices/virtio/net.h"
#include "vmm/devices/virtio/rng.h"

namespace vmmd::virtio {
namespace {

using ::testing::HasSubstr;
using testing::DriverHarness;

constexpr uint64_t kRam = 64ull << 20;
constexpr uint64_t kQueueBase = 16ull << 20;
constexpr uint16_t kQueueSize = 16;
constexpr uint64_t kData = kQueueBase + DriverHarness::kData;
// Common configuration offsets (virtio 1.x, 4.1.4.3).
constexpr uint64_t kDriverFeatureSelect = 8, kDriverFeature = 12, kMsixConfig = 16, kDeviceStatus = 20,
                   kQueueSelect = 22, kQueueSizeReg = 24, kQueueMsixVector = 26, kQueueEnable = 28, kQueueDesc = 32,
                   kQueueDriver = 40, kQueueDevice = 48, kCommonSize = 56;

class FakeNetBackend : public NetBackend {
 public:
  int fd() const override { return -1; }
  Status setOffloads(bool, bool, bool, bool) override { return {}; }
  void waitReadable(bool) override {}
  void waitWritable(bool) override {}
};

std::unique_ptr<VirtioNet> makeNet(uint8_t last_mac_byte) {
  return std::make_unique<VirtioNet>(std::make_unique<FakeNetBackend>(),
                                     std::array<uint8_t, 6>{0x52, 0x54, 0, 0x12, 0x34, last_mac_byte});
}

class VirtioPciTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto memory = GuestMemory::create(kRam);
    ASSERT_TRUE(memory.ok()) << memory.error().message();
    memory_.emplace(std::move(*memory));
  }

  std::unique_ptr<VirtioPci> transport(std::unique_ptr<VirtioDevice> device) {
    auto pci = VirtioPci::create(std::move(device), *memory_, routing_, 0xC0000000);
    EXPECT_TRUE(pci.ok()) << pci.error().message();
    return pci ? std::move(*pci) : nullptr;
  }
  std::unique_ptr<VirtioPci> rng() {
    auto device = VirtioRng::create();
    EXPECT_TRUE(device.ok());
    return transport(std::move(*device));
  }

  static void write(VirtioPci& pci, uint64_t offset, uint64_t value, size_t width) {
    uint8_t raw[8];
    std::memcpy(raw, &value, 8);
    pci.barWrite(0, offset, {raw, width});
  }
  static std::vector<uint8_t> read(VirtioPci& pci, uint64_t offset, size_t length) {
    std::vector<uint8_t> out(length);
    pci.barRead(0, offset, out);
    return out;
  }
  static void enableMsix(VirtioPci& pci) {
    for (uint8_t at = static_cast<uint8_t>(pci.configRead(0x34, 1)); at; at = static_cast<uint8_t>(pci.configRead(at + 1, 1))) {
      if (pci.configRead(at, 1) == 0x11) pci.configWrite(static_cast<uint16_t>(at + 2), 2, 0x8000);
    }
  }

  // As a driver: features (VERSION_1), queue 0 on `driver`'s rings with MSI-X vector 1, an
  // unmasked table entry for it, DRIVER_OK.
  void bringUp(VirtioPci& pci, const DriverHarness& driver) {
    enableMsix(pci);
    write(pci, kDeviceStatus, 1 | 2, 1);
    write(pci, kDriverFeatureSelect, 1, 4);
    write(pci, kDriverFeature, 1, 4);  // VERSION_1
    write(pci, kDeviceStatus, 1 | 2 | 8, 1);
    write(pci, kMsixConfig, 0, 2);
    write(pci, kQueueSelect, 0, 2);
    write(pci, kQueueSizeReg, kQueueSize, 2);
    write(pci, kQueueMsixVector, 1, 2);
    write(pci, kQueueDesc, driver.descriptors(), 8);
    write(pci, kQueueDriver, driver.avail(), 8);
    write(pci, kQueueDevice, driver.used(), 8);
    write(pci, kQueueEnable, 1, 2);
    write(pci, VirtioPci::kMsixTableOffset + 16, 0xFEE00000, 8);
    write(pci, VirtioPci::kMsixTableOffset + 16 + 8, 0x4041, 4);
    write(pci, VirtioPci::kMsixTableOffset + 16 + 12, 0, 4);
    write(pci, kDeviceStatus, 1 | 2 | 8 | 4, 1);
  }

  std::optional<GuestMemory> memory_;
  IrqRouting routing_;
};

TEST_F(VirtioPciTest, ALoadedTransportReadsBackAsTheSavedOneAndResumesItsRings) {
  auto source = rng();
  DriverHarness driver(*memory_, kQueueSize, kQueueBase);
  bringUp(*source, driver);
  ASSERT_EQ(source->status(), 1 | 2 | 4 | 8);
  driver.offerChain({{kData, 32, true}});
  {
    auto lock = source->device().lock();
    source->device().kick(0);
  }
  ASSERT_EQ(driver.usedIndex(), 1);

  auto saved = source->saveState();
  ASSERT_TRUE(saved.ok()) << saved.error().message();
  EXPECT_EQ(saved->kind, "virtio-pci");
  auto target = rng();
  enableMsix(*target);  // config space is the PCI function's, restored apart
  auto loaded = target->loadState(*saved);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message();

  EXPECT_EQ(target->status(), source->status());
  EXPECT_EQ(read(*target, 0, kCommonSize), read(*source, 0, kCommonSize));
  EXPECT_EQ(read(*target, VirtioPci::kMsixTableOffset, 32), read(*source, VirtioPci::kMsixTableOffset, 32));
  auto again = target->saveState();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->bytes, saved->bytes);

  // The loaded transport is live: the next buffer is served from where the source stopped.
  driver.offerChain({{kData + 4096, 16, true}});
  {
    auto lock = target->device().lock();
    target->device().kick(0);
  }
  EXPECT_EQ(driver.usedIndex(), 2);
  EXPECT_EQ(driver.usedElement(1).second, 16u);
}

TEST_F(VirtioPciTest, AStateForAnotherDeviceOrABrokenOneLeavesTheTransportReset) {
  auto source = rng();
  DriverHarness driver(*memory_, kQueueSize, kQueueBase);
  bringUp(*source, driver);
  auto saved = source->saveState();
  ASSERT_TRUE(saved.ok());

  auto net = transport(makeNet(0x56));
  auto refused = net->loadState(*saved);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.error().message(), HasSubstr("1 queues, this device has 2"));
  EXPECT_EQ(net->status(), 0);

  auto target = rng();
  DeviceState truncated = *saved;
  truncated.bytes.resize(truncated.bytes.size() - 3);
  ASSERT_FALSE(target->loadState(truncated).ok());
  EXPECT_EQ(target->status(), 0);
  DeviceState newer = *saved;
  newer.version = VirtioPci::kStateVersion + 1;
  EXPECT_THAT(target->loadState(newer).error().message(), HasSubstr("state version"));
}

// A driver that breaks its device (rings outside guest memory), resets it and breaks it again,
// 10000 times: each failure still sets DEVICE_NEEDS_RESET, but the worker's log gets a line for
// the 1st, 2nd, 4th... only (14 here), not one per failure.
TEST_F(VirtioPciTest, AFailResetLoopAddsLogarithmicallyManyLogLines) {
  auto pci = rng();
  ASSERT_TRUE(pci);
  ::testing::internal::CaptureStderr();
  for (int i = 0; i < 10000; ++i) {
    write(*pci, kDeviceStatus, 1 | 2, 1);
    write(*pci, kDriverFeatureSelect, 1, 4);
    write(*pci, kDriverFeature, 1, 4);
    write(*pci, kDeviceStatus, 1 | 2 | 8, 1);
    write(*pci, kQueueSelect, 0, 2);
    write(*pci, kQueueDesc, kRam + 0x1000, 8);  // past the end of guest memory
    write(*pci, kQueueEnable, 1, 2);
    ASSERT_TRUE(pci->status() & 0x40) << i;  // DEVICE_NEEDS_RESET
    write(*pci, kDeviceStatus, 0, 1);
  }
  std::string logged = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(std::count(logged.begin(), logged.end(), '\n'), 14) << logged.substr(0, 2000);
}

// A kick handler that served its budget asks for another pass: the queue's notify eventfd
// becomes readable, so the main loop runs the queue again after whatever else is ready.
TEST_F(VirtioPciTest, KickAgainMakesTheQueueNotificationReadable) {
  auto pci = rng();
  ASSERT_TRUE(pci);
  std::vector<int> fds;
  pci->watchNotifications([&](int fd, std::function<void()>) { fds.push_back(fd); });
  ASSERT_EQ(fds.size(), 1u);
  uint64_t count = 0;
  EXPECT_LT(::read(fds[0], &count, sizeof count), 0);  // nothing yet (the eventfd is non-blocking)
  pci->kickAgain(0);
  ASSERT_EQ(::read(fds[0], &count, sizeof count), static_cast<ssize_t>(sizeof count));
  EXPECT_EQ(count, 1u);
  pci->kickAgain(7);  // no such queue: ignored
}

TEST_F(VirtioPciTest, AVirtioSerialStateLoadsOnlyIntoOneWithAsManyPorts) {
  auto console = transport(std::make_unique<VirtioConsole>(1, std::vector<PortSpec>{}, nullptr));
  auto target = transport(std::make_unique<VirtioConsole>(1, std::vector<PortSpec>{}, nullptr));
  auto saved = vmmd::testing::expectRoundTrip(*console, *target);
  EXPECT_EQ(saved.kind, "virtio-pci");
  auto bigger = transport(std::make_unique<VirtioConsole>(4, std::vector<PortSpec>{}, nullptr));
  auto refused = bigger->loadState(saved);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.error().message(), HasSubstr("queues"));
}

TEST_F(VirtioPciTest, HostileTransportStatesAreRefused) {
  auto source = rng();
  DriverHarness driver(*memory_, kQueueSize, kQueueBase);
  bringUp(*source, driver);
  auto saved = source->saveState();
  ASSERT_TRUE(saved.ok());
  auto target = rng();
  vmmd::testing::expectHostileStatesRefused(*target, *saved);
}

// The PCI function's configuration space: what the guest wrote (BAR, command, MSI-X enable)
// comes along; a state of another device (its read-only identity differs) is refused.
TEST_F(VirtioPciTest, ConfigurationSpaceRoundTripsAndNamesAnotherDevice) {
  auto source = rng();
  enableMsix(*source);
  source->configWrite(0x04, 2, 0x0006);      // memory decoding, bus master
  source->configWrite(0x10, 4, 0xC0010000);  // BAR0 moved by the guest
  StateWriter out;
  source->saveConfig(out);
  auto bytes = out.take();

  auto target = rng();
  StateReader in(bytes);
  ASSERT_TRUE(target->loadConfig(in).ok());
  ASSERT_TRUE(in.finish("config").ok());
  for (uint16_t offset = 0; offset < 256; offset += 4) EXPECT_EQ(target->configRead(offset, 4), source->configRead(offset, 4)) << offset;
  EXPECT_EQ(target->barAddress(0), 0xC0010000u);

  auto net = transport(makeNet(0x56));
  StateReader other(bytes);
  auto refused = net->loadConfig(other);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.error().message(), HasSubstr("another device"));
}

TEST(VirtioNetState, LinkStatusRoundTripsForTheSameMac) {
  auto source = makeNet(0x56);
  source->setLink(false);
  auto saved = source->saveState();
  ASSERT_TRUE(saved.ok()) << saved.error().message();

  auto target = makeNet(0x56);
  ASSERT_TRUE(target->linkUp());
  ASSERT_TRUE(target->loadState(*saved).ok());
  EXPECT_FALSE(target->linkUp());

  auto other = makeNet(0x57);
  auto refused = other->loadState(*saved);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.error().message(), HasSubstr("another MAC address"));
  EXPECT_TRUE(other->linkUp());
}

}  // namespace
}  // namespace vmmd::virtio
