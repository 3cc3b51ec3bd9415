// libFuzzer: hostile saved states (a corrupted snapshot file, a malicious migration source). The
// first byte picks a device model (the legacy devices, the PCI host bridge, a virtio-pci or
// virtio-mmio transport with each virtio device behind it); the rest is that device's state
// bytes, of the right kind and version so every field reader is reached, and also decoded as a
// whole MachineState. A load may refuse the state; when it takes it, the device must save again,
// and that state must load into a fresh device and save to the same bytes (loads are exact).
// ASan/UBSan catch any read past the input or overflow in between.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "tests/vmm/devices/virtio/fuzz_devices.h"
#include "vmm/devices/acpi_ged.h"
#include "vmm/devices/acpi_pm.h"
#include "vmm/devices/cmos_rtc.h"
#include "vmm/devices/fw_cfg.h"
#include "vmm/devices/i8042.h"
#include "vmm/devices/pci/pci_host.h"
#include "vmm/devices/serial.h"
#include "vmm/devices/virtio/virtio_mmio.h"
#include "vmm/devices/virtio/virtio_pci.h"
#include "vmm/machine/machine_state.h"

namespace {

using namespace vmmd;

constexpr uint64_t kRam = 2 << 20;

InterruptLine quietLine() { return InterruptLine(4, [](uint32_t, bool) {}); }

// A fresh device of the kind `which` picks, behind one interface.
struct Target {
  std::function<Result<DeviceState>()> save;
  std::function<Status(const DeviceState&)> load;
  std::shared_ptr<void> owner;
};

Target make(uint8_t which, GuestMemory& memory, IrqRouting& routing) {
  auto wrap = [](auto device) {
    auto* raw = device.get();
    return Target{[raw] { return Result<DeviceState>(raw->saveState()); }, [raw](const DeviceState& s) { return raw->loadState(s); },
                  std::shared_ptr<void>(std::move(device))};
  };
  switch (which % 9) {
    case 0: return wrap(std::make_shared<Serial16550>(quietLine(), [](std::span<const uint8_t>) {}));
    case 1: return wrap(std::make_shared<AcpiPm>(quietLine(), 5, [](PowerRequest) {}));
    case 2: return wrap(std::make_shared<I8042>([](PowerRequest) {}));
    case 3: {
      auto fw_cfg = std::make_shared<FwCfg>(memory);
      (void)fw_cfg->addFile("etc/e820", std::vector<uint8_t>(40, 0x11));
      return wrap(fw_cfg);
    }
    case 4: return wrap(std::make_shared<CmosRtc>(kRam, 0));
    case 5: return wrap(std::make_shared<PciHost>());
    case 6: {
      auto pci = virtio::VirtioPci::create(virtio::fuzzing::makeDevice(static_cast<uint8_t>(which >> 3)), memory, routing, 0xC0000000);
      if (!pci) return {};
      return wrap(std::shared_ptr<virtio::VirtioPci>(std::move(*pci)));
    }
    case 7: return wrap(std::make_shared<AcpiGed>(quietLine(), 5, [](PowerRequest) {}));
    default: {
      auto mmio = virtio::VirtioMmio::create(virtio::fuzzing::makeDevice(static_cast<uint8_t>(which >> 3)), memory, 0xFEB00000,
                                             quietLine());
      if (!mmio) return {};
      return wrap(std::shared_ptr<virtio::VirtioMmio>(std::move(*mmio)));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto memory = GuestMemory::create(kRam);
  if (!memory.ok() || size < 1) return 0;
  (void)decodeMachineState({data, size});
  IrqRouting routing;
  uint8_t which = data[0];
  Target probe = make(which, *memory, routing);
  if (!probe.save) return 0;
  auto good = probe.save();
  if (!good) return 0;
  DeviceState hostile{good->kind, good->version, std::vector<uint8_t>(data + 1, data + size)};
  Target target = make(which, *memory, routing);
  if (!target.load(hostile)) return 0;
  auto saved = target.save();
  if (!saved) return 0;  // e.g. virtio-blk with a request in flight is refused, not saved wrong
  Target again = make(which, *memory, routing);
  auto reloaded = again.load(*saved);
  auto resaved = reloaded ? again.save() : Result<DeviceState>(reloaded.error());
  // The PM timer's count moves between two saves: every other state must be exactly the same.
  bool timer = good->kind == "acpi-pm";
  if (!reloaded || !resaved ||
      (!timer && resaved->bytes != saved->bytes)) {
    std::fprintf(stderr, "%s: a state it took does not load back exactly: %s\n", good->kind.c_str(),
                 reloaded ? "other bytes" : reloaded.error().message().c_str());
    std::abort();
  }
  return 0;
}
