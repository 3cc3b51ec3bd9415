// The PCI host bridge: configuration mechanism #1 (address at 0xCF8, data at 0xCFC-0xCFF) for
// bus 0, and the 32-bit MMIO window where the functions' BARs decode. BARs may move (the guest
// owns them), so the window looks the current address up on each access.
#pragma once

#include <array>
#include <atomic>
#include <memory>

#include "base/result.h"
#include "vmm/devices/io_bus.h"
#include "vmm/devices/pci/pci_function.h"

namespace vmmd {

class PciHost {
 public:
  static constexpr uint16_t kConfigAddressPort = 0xCF8;
  static constexpr uint16_t kConfigDataPort = 0xCFC;
  static constexpr uint64_t kMmioWindowStart = 0xC0000000;  // the PCI hole
  static constexpr uint64_t kMmioWindowEnd = 0xFEC00000;    // up to the IOAPIC
  static constexpr int kSlots = 32;

  PciHost();
  // Slot 0 is the host bridge itself.
  Status addFunction(uint8_t slot, PciFunction* function);
  // Registers the config ports and the MMIO window.
  Status attach(IoBus& pio, IoBus& mmio);
  // A free 4 KiB-aligned MMIO range for a new BAR (firmware-style assignment).
  uint64_t allocateBar(uint32_t size);

  // CONFIG_ADDRESS and the host bridge's own configuration space (the functions behind it save
  // theirs with their device state).
  DeviceState saveState() const;
  Status loadState(const DeviceState& state);
  static constexpr const char* kStateKind = "pci-host";
  static constexpr uint32_t kStateVersion = 1;

 private:
  struct AddressPort : BusDevice {
    explicit AddressPort(PciHost& host) : host(host) {}
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;
    PciHost& host;
  };
  struct DataPort : BusDevice {
    explicit DataPort(PciHost& host) : host(host) {}
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;
    PciHost& host;
  };
  struct MmioWindow : BusDevice {
    explicit MmioWindow(PciHost& host) : host(host) {}
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;
    PciHost& host;
  };
  // The function addressed by the config address register, and the register offset.
  PciFunction* selected(uint16_t& reg) const;
  PciFunction* decode(uint64_t address, int& bar, uint64_t& offset) const;

  std::array<PciFunction*, kSlots> slots_{};
  std::unique_ptr<PciFunction> bridge_;
  std::atomic<uint32_t> address_{0};
  uint64_t next_bar_ = kMmioWindowStart;
  AddressPort address_port_{*this};
  DataPort data_port_{*this};
  MmioWindow window_{*this};
};

}  // namespace vmmd
