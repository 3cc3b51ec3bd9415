#include "vmm/config/machine_options.h"

#include <map>

#include "base/key_values.h"
#include "base/parse.h"

namespace vmmd::config {
namespace {

enum class OnOffAuto { On, Off, Auto };

Result<std::optional<OnOffAuto>> takeOnOffAuto(KeyValues& kv, const char* key) {
  auto text = kv.take(key);
  if (!text) return std::optional<OnOffAuto>{};
  if (*text == "auto") return std::optional<OnOffAuto>{OnOffAuto::Auto};
  auto on = parseOnOff(*text);
  if (!on) return Error(kv.option() + ": " + key + "=" + *text + ": expected on, off or auto");
  return std::optional<OnOffAuto>{*on ? OnOffAuto::On : OnOffAuto::Off};
}

// An OnOffAuto property: absent or auto gives `automatic`.
Result<bool> takeSwitch(KeyValues& kv, const char* key, bool automatic) {
  auto value = takeOnOffAuto(kv, key);
  if (!value) return value.error();
  return !*value || **value == OnOffAuto::Auto ? automatic : **value == OnOffAuto::On;
}

// Properties of every x86 machine that say nothing vmm builds differently.
constexpr const char* kCommonProperties[] = {"dump-guest-core", "mem-merge", "kernel-irqchip", "graphics", "usb"};

Status resolveMicrovm(KeyValues& kv, MicrovmConfig& microvm) {
  auto acpi = takeSwitch(kv, "acpi", true);
  if (!acpi) return acpi.error();
  microvm.acpi = *acpi;
  // QEMU creates the RTC for rtc=auto only without KVM; vmm always runs on KVM.
  auto rtc = takeSwitch(kv, "rtc", false);
  if (!rtc) return rtc.error();
  microvm.rtc = *rtc;
  auto pit = takeSwitch(kv, "pit", true);
  if (!pit) return pit.error();
  microvm.pit = *pit;
  auto pic = takeSwitch(kv, "pic", true);
  if (!pic) return pic.error();
  if (!*pic) return Error(kv.option() + ": pic=off needs a split irqchip (the 8259 emulated in user space); vmm's in-kernel irqchip always has the PIC");
  auto ioapic2 = takeOnOffAuto(kv, "ioapic2");
  if (!ioapic2) return ioapic2.error();
  if (*ioapic2 == OnOffAuto::On) {
    return Error(kv.option() + ": ioapic2=on is not supported: KVM's in-kernel irqchip has one IOAPIC (virtio-mmio uses GSI 16-23 with ACPI)");
  }
  auto pcie = takeOnOffAuto(kv, "pcie");
  if (!pcie) return pcie.error();
  if (*pcie == OnOffAuto::On) return Error(kv.option() + ": pcie=on is not supported: vmm's microvm has no PCI (virtio-mmio only)");
  auto serial = kv.takeBool("isa-serial", true);
  if (!serial) return serial.error();
  microvm.isa_serial = *serial;
  auto cmdline = kv.takeBool("auto-kernel-cmdline", true);
  if (!cmdline) return cmdline.error();
  microvm.auto_kernel_cmdline = *cmdline;
  // vmm boots the kernel itself: there are no option ROMs to load or skip.
  if (auto roms = kv.takeBool("x-option-roms", true); !roms) return roms.error();
  return {};
}

}  // namespace

Status resolveMachineProperties(MachineConfig& config) {
  std::map<std::string, std::string> latest;  // as in QEMU, a later -machine overrides a property
  for (const auto& [key, value] : config.machine_properties) latest[key] = value;
  auto kv = KeyValues::fromPairs("-machine " + config.machine_type, latest);
  for (const char* key : kCommonProperties) (void)kv.take(key);
  if (config.isMicrovm()) {
    if (auto st = resolveMicrovm(kv, config.microvm); !st) return st;
    for (auto& device : config.devices) {
      if (device.from_drive) device.driver = "virtio-blk-device";
    }
  } else {
    // What a pc or q35 already is (ACPI, RTC, PIT, PIC, no SMM/HPET/vmport are not built either way).
    for (const char* key : {"rtc", "acpi", "pit", "pic", "isa-serial", "vmport", "smm", "hpet", "x-option-roms"}) {
      (void)kv.take(key);
    }
  }
  return kv.finish();
}

}  // namespace vmmd::config
