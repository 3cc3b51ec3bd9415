// Where -M microvm puts each virtio device (QEMU 7.2's layout) and what it tells a guest
// without ACPI on the kernel command line.
#include "vmm/machine/microvm_layout.h"

#include <gtest/gtest.h>

namespace vmmd::microvm {
namespace {

config::MachineConfig microvm(std::vector<config::DeviceConfig> devices, bool acpi = true) {
  config::MachineConfig config;
  config.machine_type = "microvm";
  config.microvm.acpi = acpi;
  config.devices = std::move(devices);
  return config;
}

TEST(MicrovmLayout, TransportsFollowQemusAddressesAndInterrupts) {
  EXPECT_EQ(transport(0, true).base, 0xFEB00000u);
  EXPECT_EQ(transport(3, true).base, 0xFEB00600u);
  EXPECT_EQ(transport(0, true).gsi, 16u);  // with ACPI: IOAPIC pins above the ISA IRQs
  EXPECT_EQ(transport(7, true).gsi, 23u);
  EXPECT_EQ(transport(0, false).gsi, 5u);  // without: within the PIC's reach
  EXPECT_EQ(transport(7, false).gsi, 12u);
}

TEST(MicrovmLayout, DevicesTakeTransportsInOrderSerialPortsNone) {
  auto placed = placeDevices(microvm({{"virtio-rng-device", {}},
                                      {"virtio-serial-device", {}},
                                      {"virtserialport", {{"chardev", "c"}}},
                                      {"virtio-blk-device", {{"drive", "d"}}}}));
  ASSERT_TRUE(placed.ok()) << placed.error().message();
  ASSERT_EQ(placed->size(), 3u);
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*placed)[i].index, i);
    EXPECT_EQ((*placed)[i].base, 0xFEB00000u + 0x200 * i);
  }
}

TEST(MicrovmLayout, BusNamesATransportAndOthersFillAroundIt) {
  auto placed = placeDevices(microvm({{"virtio-rng-device", {}}, {"virtio-net-device", {{"bus", "virtio-mmio-bus.0"}}}}, false));
  ASSERT_TRUE(placed.ok()) << placed.error().message();
  EXPECT_EQ((*placed)[0].index, 1u);
  EXPECT_EQ((*placed)[1].index, 0u);
  EXPECT_EQ(kernelCommandLine(*placed), " virtio_mmio.device=512@0xfeb00200:6 virtio_mmio.device=512@0xfeb00000:5");
}

TEST(MicrovmLayout, BadBusesAndTooManyDevicesAreRefused) {
  EXPECT_EQ(placeDevices(microvm({{"virtio-rng-device", {{"bus", "virtio-mmio-bus.8"}}}})).error().message(),
            "-device virtio-rng-device: bus 'virtio-mmio-bus.8' does not exist (virtio-mmio-bus.0 to virtio-mmio-bus.7)");
  EXPECT_EQ(placeDevices(microvm({{"virtio-rng-device", {{"bus", "pci.0"}}}})).error().message(),
            "-device virtio-rng-device: bus 'pci.0' does not exist (virtio-mmio-bus.0 to virtio-mmio-bus.7)");
  EXPECT_EQ(placeDevices(microvm({{"virtio-rng-device", {{"bus", "virtio-mmio-bus.2"}}}, {"virtio-rng-device", {{"bus", "virtio-mmio-bus.2"}}}}))
                .error()
                .message(),
            "-device virtio-rng-device: bus 'virtio-mmio-bus.2' already has a device");
  std::vector<config::DeviceConfig> nine(9, config::DeviceConfig{"virtio-rng-device", {}});
  EXPECT_EQ(placeDevices(microvm(nine)).error().message(),
            "-device virtio-rng-device: microvm has 8 virtio-mmio transports, all in use");
  EXPECT_TRUE(placeDevices(microvm(std::vector<config::DeviceConfig>(8, config::DeviceConfig{"virtio-rng-device", {}}))).ok());
}

}  // namespace
}  // namespace vmmd::microvm
