#include "vmm/devices/pci/pci_host.h"

#include <cstring>

namespace vmmd {
namespace {

// The host bridge function: Red Hat's "QEMU PCIe host bridge" ids, which Linux applies no chipset
// quirks to.
class HostBridge : public PciFunction {
 public:
  HostBridge() : PciFunction({0x1B36, 0x0008, 0, 0x060000, 0x1AF4, 0x1100}) {}
  void barRead(int, uint64_t, std::span<uint8_t> data) override { std::memset(data.data(), 0xFF, data.size()); }
  void barWrite(int, uint64_t, std::span<const uint8_t>) override {}
};

constexpr uint32_t kEnableBit = 0x80000000u;

}  // namespace

PciHost::PciHost() : bridge_(std::make_unique<HostBridge>()) { slots_[0] = bridge_.get(); }

DeviceState PciHost::saveState() const {
  StateWriter out;
  out.u32(address_.load());
  bridge_->saveConfig(out);
  return DeviceState{kStateKind, kStateVersion, out.take()};
}

Status PciHost::loadState(const DeviceState& state) {
  if (auto st = checkState(state, kStateKind, kStateVersion); !st) return st;
  StateReader in(state.bytes);
  uint32_t address = in.u32();
  if (auto st = bridge_->loadConfig(in); !st) return st.error().withContext(kStateKind);
  if (auto st = in.finish(kStateKind); !st) return st;
  address_ = address;
  return {};
}

Status PciHost::addFunction(uint8_t slot, PciFunction* function) {
  if (slot == 0 || slot >= kSlots) return Error("PCI: slot " + std::to_string(slot) + " is not available");
  if (slots_[slot]) return Error("PCI: slot " + std::to_string(slot) + " is taken");
  slots_[slot] = function;
  return {};
}

Status PciHost::attach(IoBus& pio, IoBus& mmio) {
  if (auto st = pio.add(kConfigAddressPort, 1, &address_port_); !st) return st;
  if (auto st = pio.add(kConfigDataPort, 4, &data_port_); !st) return st;
  return mmio.add(kMmioWindowStart, kMmioWindowEnd - kMmioWindowStart, &window_);
}

uint64_t PciHost::allocateBar(uint32_t size) {
  uint64_t address = (next_bar_ + size - 1) & ~uint64_t{size - 1};  // naturally aligned
  next_bar_ = address + size;
  return address;
}

PciFunction* PciHost::selected(uint16_t& reg) const {
  uint32_t address = address_.load();
  if (!(address & kEnableBit)) return nullptr;
  uint32_t bus = (address >> 16) & 0xFF, slot = (address >> 11) & 0x1F, function = (address >> 8) & 0x7;
  reg = static_cast<uint16_t>(address & 0xFC);
  if (bus != 0 || function != 0) return nullptr;
  return slots_[slot];
}

void PciHost::AddressPort::read(uint64_t, std::span<uint8_t> data) {
  uint32_t value = host.address_.load();
  if (data.size() != 4) {
    std::memset(data.data(), 0xFF, data.size());
    return;
  }
  std::memcpy(data.data(), &value, 4);
}

void PciHost::AddressPort::write(uint64_t, std::span<const uint8_t> data) {
  if (data.size() != 4) return;  // byte writes here are not config cycles
  uint32_t value;
  std::memcpy(&value, data.data(), 4);
  host.address_.store(value);
}

void PciHost::DataPort::read(uint64_t offset, std::span<uint8_t> data) {
  uint16_t reg = 0;
  PciFunction* function = host.selected(reg);
  uint32_t value = function ? function->configRead(static_cast<uint16_t>(reg + offset), static_cast<unsigned>(data.size()))
                            : 0xFFFFFFFF;
  std::memcpy(data.data(), &value, data.size());
}

void PciHost::DataPort::write(uint64_t offset, std::span<const uint8_t> data) {
  uint16_t reg = 0;
  PciFunction* function = host.selected(reg);
  if (!function) return;
  uint32_t value = 0;
  std::memcpy(&value, data.data(), data.size());
  function->configWrite(static_cast<uint16_t>(reg + offset), static_cast<unsigned>(data.size()), value);
}

PciFunction* PciHost::decode(uint64_t address, int& bar, uint64_t& offset) const {
  for (PciFunction* function : slots_) {
    if (!function) continue;
    for (int i = 0; i < PciFunction::kMaxBars; ++i) {
      uint64_t base = function->barAddress(i);
      if (base && address >= base && address - base < function->barSize(i)) {
        bar = i;
        offset = address - base;
        return function;
      }
    }
  }
  return nullptr;
}

void PciHost::MmioWindow::read(uint64_t offset, std::span<uint8_t> data) {
  int bar;
  uint64_t within;
  PciFunction* function = host.decode(kMmioWindowStart + offset, bar, within);
  if (!function) {
    std::memset(data.data(), 0xFF, data.size());
    return;
  }
  function->barRead(bar, within, data);
}

void PciHost::MmioWindow::write(uint64_t offset, std::span<const uint8_t> data) {
  int bar;
  uint64_t within;
  PciFunction* function = host.decode(kMmioWindowStart + offset, bar, within);
  if (function) function->barWrite(bar, within, data);
}

}  // namespace vmmd
