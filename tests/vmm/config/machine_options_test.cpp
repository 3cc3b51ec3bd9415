// -machine properties resolved for the chosen type (through parseCommandLine, as vmm reads them):
// QEMU 7.2 microvm's properties honoured or refused with the reason, pc's accepted as before.
#include "vmm/config/machine_options.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "vmm/config/option_parser.h"

namespace vmmd::config {
namespace {

using Args = std::vector<std::string>;

Result<MachineConfig> parse(Args args) {
  args.insert(args.end(), {"-kernel", "vmlinuz"});
  return parseCommandLine(args);
}

MachineConfig parseOk(const Args& args) {
  auto config = parse(args);
  EXPECT_TRUE(config.ok()) << config.error().message();
  return config.ok() ? std::move(*config) : MachineConfig{};
}

std::string parseError(const Args& args) {
  auto config = parse(args);
  EXPECT_FALSE(config.ok()) << "parsed without error";
  return config.ok() ? std::string() : config.error().message();
}

TEST(MachineOptions, MicrovmDefaultsAreQemusUnderKvm) {
  MicrovmConfig m = parseOk({"-M", "microvm"}).microvm;
  EXPECT_TRUE(m.acpi);
  EXPECT_FALSE(m.rtc) << "rtc=auto is off under KVM";
  EXPECT_TRUE(m.pit);
  EXPECT_TRUE(m.isa_serial);
  EXPECT_TRUE(m.auto_kernel_cmdline);
  EXPECT_TRUE(parseOk({"-M", "microvm"}).isMicrovm());
  EXPECT_FALSE(parseOk({"-M", "q35"}).isMicrovm());
}

TEST(MachineOptions, MicrovmPropertiesAreHonoured) {
  MicrovmConfig m = parseOk({"-M", "microvm,rtc=on,pit=off,isa-serial=off,acpi=off,auto-kernel-cmdline=off,x-option-roms=off,"
                                   "pic=on,ioapic2=off,pcie=off,accel=kvm"})
                        .microvm;
  EXPECT_FALSE(m.acpi);
  EXPECT_TRUE(m.rtc);
  EXPECT_FALSE(m.pit);
  EXPECT_FALSE(m.isa_serial);
  EXPECT_FALSE(m.auto_kernel_cmdline);
  EXPECT_TRUE(parseOk({"-M", "microvm,acpi=auto,pit=auto,rtc=auto"}).microvm.acpi);
}

TEST(MachineOptions, PropertiesMayComeBeforeTheTypeAndTheLastOneWins) {
  EXPECT_TRUE(parseOk({"-machine", "rtc=on", "-M", "microvm"}).microvm.rtc);
  EXPECT_FALSE(parseOk({"-M", "microvm,rtc=on", "-machine", "rtc=off"}).microvm.rtc);
}

TEST(MachineOptions, WhatVmmCannotBuildIsRefusedSayingWhy) {
  EXPECT_EQ(parseError({"-M", "microvm,pic=off"}),
            "-machine microvm: pic=off needs a split irqchip (the 8259 emulated in user space); vmm's in-kernel irqchip always has the PIC");
  EXPECT_EQ(parseError({"-M", "microvm,ioapic2=on"}),
            "-machine microvm: ioapic2=on is not supported: KVM's in-kernel irqchip has one IOAPIC (virtio-mmio uses GSI 16-23 with ACPI)");
  EXPECT_EQ(parseError({"-M", "microvm,pcie=on"}), "-machine microvm: pcie=on is not supported: vmm's microvm has no PCI (virtio-mmio only)");
  EXPECT_EQ(parseError({"-M", "microvm,rtc=maybe"}), "-machine microvm: rtc=maybe: expected on, off or auto");
  EXPECT_EQ(parseError({"-M", "microvm,smm=off"}), "-machine microvm: invalid parameter 'smm'");
  EXPECT_EQ(parseError({"-M", "microvm,rtc"}), "-M: property 'rtc' needs a value");
}

TEST(MachineOptions, PcKeepsAcceptingWhatItAlreadyIs) {
  EXPECT_EQ(parseOk({"-M", "pc,rtc=on,acpi=on,smm=off,hpet=off,vmport=off,usb=off"}).machine_type, "pc");
  EXPECT_EQ(parseError({"-M", "pc,auto-kernel-cmdline=off"}), "-machine pc: invalid parameter 'auto-kernel-cmdline'");
}

TEST(MachineOptions, DriveIfVirtioIsTheMachinesVirtioBlk) {
  for (const Args& args : {Args{"-M", "microvm", "-drive", "file=a.img,if=virtio"}, Args{"-drive", "file=a.img,if=virtio", "-M", "microvm"}}) {
    MachineConfig c = parseOk(args);
    ASSERT_EQ(c.devices.size(), 1u);
    EXPECT_EQ(c.devices[0].driver, "virtio-blk-device");
  }
  EXPECT_EQ(parseOk({"-drive", "file=a.img,if=virtio"}).devices[0].driver, "virtio-blk-pci");
  // An explicit -device keeps its name (and the machine refuses it if it has no such bus).
  EXPECT_EQ(parseOk({"-M", "microvm", "-device", "virtio-blk-pci,drive=d"}).devices[0].driver, "virtio-blk-pci");
}

}  // namespace
}  // namespace vmmd::config
