// One PCI function's type-0 configuration space: identity, command register, memory BARs (with
// the size-probing protocol), a capability list, and the interrupt pin. Device models derive
// from it and handle their BARs' MMIO.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

#include "base/result.h"
#include "vmm/devices/device_state.h"

namespace vmmd {

class PciFunction {
 public:
  static constexpr int kMaxBars = 6;
  struct Identity {
    uint16_t vendor;
    uint16_t device;
    uint8_t revision;
    uint32_t class_code;  // class << 16 | subclass << 8 | prog-if
    uint16_t subsystem_vendor;
    uint16_t subsystem;
  };

  explicit PciFunction(const Identity& identity);
  virtual ~PciFunction() = default;

  // Config cycles from the host bridge (1, 2 or 4 bytes, naturally aligned).
  uint32_t configRead(uint16_t offset, unsigned size);
  void configWrite(uint16_t offset, unsigned size, uint32_t value);

  // A 32-bit memory BAR of `size` bytes (a power of 2 >= 4 KiB) at `address`.
  void addMemoryBar(int index, uint64_t address, uint32_t size);
  // Appends a capability (id, then `body` after the next pointer); returns its config offset.
  uint8_t addCapability(uint8_t id, std::span<const uint8_t> body);

  // Where BAR `index` decodes now, or 0 when memory decoding is off or the BAR is unset.
  uint64_t barAddress(int index) const;
  uint32_t barSize(int index) const { return bars_[index].size; }
  bool busMaster() const;

  // The configuration space (256 bytes) and where each BAR decodes, for migration. A load takes
  // only what the guest could have written: a read-only byte that differs (another device, or
  // another BAR size) is an error naming its offset. BARs that moved are then announced
  // (barsChanged), as after the guest's own write.
  void saveConfig(StateWriter& out) const;
  Status loadConfig(StateReader& in);

  // MMIO into one of the BARs (offset within the BAR).
  virtual void barRead(int bar, uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void barWrite(int bar, uint64_t offset, std::span<const uint8_t> data) = 0;

 protected:
  // Config writes the device model cares about (capabilities); called with the new bytes stored.
  virtual void configWritten(uint16_t offset, unsigned size) { (void)offset, (void)size; }
  // Memory decoding or a BAR address changed.
  virtual void barsChanged() {}
  uint8_t* config() { return config_.data(); }
  // Lets the guest change `mask` bits of the config byte at `offset` (capability registers).
  void setWritable(uint16_t offset, uint8_t mask) { writable_[offset] = mask; }
  std::mutex& configMutex() const { return mutex_; }

 private:
  struct Bar {
    uint64_t address = 0;
    uint32_t size = 0;
  };
  std::array<uint8_t, 256> config_{};
  std::array<uint8_t, 256> writable_{};  // per byte: which bits the guest may change
  std::array<Bar, kMaxBars> bars_{};
  uint8_t last_capability_ = 0;
  uint8_t next_capability_offset_ = 0x40;
  mutable std::mutex mutex_;
};

}  // namespace vmmd
