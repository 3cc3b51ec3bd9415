// The machine's GSI routing: the PC's legacy lines (PIC + IOAPIC, with ISA IRQ0 on IOAPIC pin 2
// as the MADT says) plus one MSI route per MSI-X vector that devices program. KVM only takes the
// table whole, so it is kept here and pushed again on every change and on every new VM.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "base/result.h"
#include "vmm/kvm/kvm.h"

namespace vmmd {

class IrqRouting {
 public:
  static constexpr uint32_t kFirstMsiGsi = 24;  // after the IOAPIC's 24 pins
  static constexpr uint32_t kMaxGsi = 1024;

  // Reserves a GSI for one MSI vector (no route until set).
  Result<uint32_t> allocateMsiGsi();
  // Sets (or clears, with nullopt) the MSI message of a GSI and updates KVM.
  Status setMsi(uint32_t gsi, std::optional<std::pair<uint64_t, uint32_t>> message);
  // A new VM: push the whole table to it. nullptr: no VM right now.
  Status attach(kvm::Vm* vm);

  std::vector<kvm::GsiRoute> table() const;

 private:
  Status commitLocked();
  mutable std::mutex mutex_;
  kvm::Vm* vm_ = nullptr;
  uint32_t next_gsi_ = kFirstMsiGsi;
  std::map<uint32_t, std::pair<uint64_t, uint32_t>> msi_;
};

}  // namespace vmmd
