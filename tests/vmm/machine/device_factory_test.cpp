// -device properties as createDevice reads them (KeyValues, base/parse.h); no KVM needed: the
// devices here are built but never attached to a machine.
#include "vmm/machine/device_factory.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/vmm/machine/no_host.h"

namespace vmmd {
namespace {

using ::testing::HasSubstr;

struct Factory {
  config::MachineConfig machine;
  testing::NoHost host;
  std::vector<config::DeviceConfig> ports;
  std::vector<bool> ports_taken;

  Result<PlannedDevice> create(const config::DeviceConfig& device) {
    ports_taken.assign(ports.size(), false);
    DeviceContext context{machine, host, {}, &ports_taken};
    for (const auto& port : ports) context.ports.push_back(&port);
    return createDevice(device, context);
  }

  std::string error(const config::DeviceConfig& device) {
    auto planned = create(device);
    return planned ? "<created>" : planned.error().message();
  }
};

TEST(DeviceFactory, MicrovmTakesVirtioMmioDevicesAndPcTheirPciFunctions) {
  Factory pc;
  Factory microvm;
  microvm.machine.machine_type = "microvm";
  EXPECT_EQ(microvm.error({"virtio-rng-pci", {}}), "-device virtio-rng-pci: microvm has no PCI bus (use virtio-rng-device, on virtio-mmio)");
  EXPECT_EQ(pc.error({"virtio-rng-device", {}}),
            "-device virtio-rng-device: this machine has no virtio-mmio bus (use virtio-rng-pci, or -M microvm)");
  EXPECT_EQ(microvm.error({"virtio-rng-device", {{"bus", "virtio-mmio-bus.3"}, {"id", "rng0"}}}), "<created>");
  EXPECT_EQ(microvm.error({"virtio-rng-device", {{"addr", "3"}}}), "-device virtio-rng-device: invalid parameter 'addr'");
  EXPECT_EQ(microvm.error({"virtio-net-device", {}}), "-device virtio-net-device: netdev= is required");
  EXPECT_EQ(microvm.error({"virtio-blk-device", {}}), "-device virtio-blk-device: drive= is required");
  EXPECT_EQ(microvm.error({"virtio-gpu-device", {}}), "-device virtio-gpu-device: device 'virtio-gpu-device' is not supported");
}

TEST(DeviceFactory, AddrIsAHexSlotWithOrWithout0x) {
  Factory f;
  for (const auto& [addr, slot] : std::vector<std::pair<std::string, int>>{{"3", 3}, {"0x3", 3}, {"1f", 31}, {"0X1F", 31},
                                                                          {"a.0", 10}}) {
    auto planned = f.create({"virtio-rng-pci", {{"addr", addr}}});
    ASSERT_TRUE(planned.ok()) << addr << ": " << planned.error().message();
    EXPECT_EQ(planned->slot, slot) << addr;
  }
  for (const char* addr : {"0", "20", "0x", "g", "-1", " 3", "0x0x3"}) {
    EXPECT_THAT(f.error({"virtio-rng-pci", {{"addr", addr}}}), HasSubstr("is not a PCI slot (1-1f)")) << addr;
  }
  EXPECT_THAT(f.error({"virtio-rng-pci", {{"addr", "3.1"}}}), HasSubstr("only function 0"));
}

TEST(DeviceFactory, UnknownPropertyIsNamed) {
  Factory f;
  EXPECT_EQ(f.error({"virtio-rng-pci", {{"id", "rng0"}, {"colour", "red"}}}),
            "-device virtio-rng-pci: invalid parameter 'colour'");
  EXPECT_EQ(f.error({"virtio-serial-pci", {{"vectorz", "2"}}}), "-device virtio-serial-pci: invalid parameter 'vectorz'");
}

TEST(DeviceFactory, AcceptedQemuPropertiesAreTaken) {
  Factory f;
  auto planned = f.create({"virtio-rng-pci", {{"id", "rng0"}, {"rng", "objrng0"}, {"bus", "pci.0"}}});
  ASSERT_TRUE(planned.ok()) << planned.error().message();
  EXPECT_EQ(planned->id, "rng0");
  EXPECT_EQ(f.error({"virtio-rng-pci", {{"bus", "pci.1"}}}), "-device virtio-rng-pci: bus 'pci.1' does not exist (pci.0)");
}

TEST(DeviceFactory, MaxPortsIsANumberFrom1To511) {
  Factory f;
  for (const char* max : {"1", "511", "0x1ff"}) EXPECT_TRUE(f.create({"virtio-serial-pci", {{"max_ports", max}}}).ok()) << max;
  for (const char* max : {"0", "512", "-1", "4k", "010", ""}) {
    EXPECT_EQ(f.error({"virtio-serial-pci", {{"max_ports", max}}}),
              "-device virtio-serial-pci: max_ports=" + std::string(max) + " must be 1..511");
  }
}

TEST(DeviceFactory, PortNumberMustBeBelowMaxPorts) {
  Factory f;
  f.ports = {{"virtserialport", {{"chardev", "c0"}, {"nr", "4"}}}};
  EXPECT_EQ(f.error({"virtio-serial-pci", {{"max_ports", "4"}}}),
            "-device virtserialport: nr=4 is not a port number below 4");
  f.ports = {{"virtserialport", {{"chardev", "c0"}, {"nr", "three"}}}};
  EXPECT_THAT(f.error({"virtio-serial-pci", {}}), HasSubstr("nr=three is not a port number below 31"));
  // A good number gets as far as opening the chardev.
  f.ports = {{"virtserialport", {{"chardev", "c0"}, {"nr", "0x3"}}}};
  EXPECT_THAT(f.error({"virtio-serial-pci", {}}), HasSubstr("chardev 'c0' is not open in this test"));
}

}  // namespace
}  // namespace vmmd
