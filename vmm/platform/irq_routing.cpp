#include "vmm/platform/irq_routing.h"

namespace vmmd {

Result<uint32_t> IrqRouting::allocateMsiGsi() {
  std::lock_guard lock(mutex_);
  if (next_gsi_ >= kMaxGsi) return Error("out of GSIs for MSI vectors");
  return next_gsi_++;
}

std::vector<kvm::GsiRoute> IrqRouting::table() const {
  std::vector<kvm::GsiRoute> routes;
  // As QEMU's pc machine: the PIC carries GSIs 0-15 but 2 (the cascade), the IOAPIC carries 1-23
  // on their own pins and GSI 0 (the PIT's IRQ0) on pin 2.
  for (uint32_t gsi = 0; gsi < 16; ++gsi) {
    if (gsi == 2) continue;
    routes.push_back({gsi, false, gsi < 8 ? uint32_t{KVM_IRQCHIP_PIC_MASTER} : uint32_t{KVM_IRQCHIP_PIC_SLAVE}, gsi % 8, 0, 0});
  }
  for (uint32_t gsi = 0; gsi < 24; ++gsi) {
    if (gsi == 2) continue;
    routes.push_back({gsi, false, KVM_IRQCHIP_IOAPIC, gsi == 0 ? 2u : gsi, 0, 0});
  }
  for (const auto& [gsi, message] : msi_) routes.push_back({gsi, true, 0, 0, message.first, message.second});
  return routes;
}

Status IrqRouting::commitLocked() {
  if (!vm_) return {};
  return vm_->setGsiRouting(table());
}

Status IrqRouting::setMsi(uint32_t gsi, std::optional<std::pair<uint64_t, uint32_t>> message) {
  std::lock_guard lock(mutex_);
  if (message) {
    auto it = msi_.find(gsi);
    if (it != msi_.end() && it->second == *message) return {};
    msi_[gsi] = *message;
  } else if (msi_.erase(gsi) == 0) {
    return {};
  }
  return commitLocked();
}

Status IrqRouting::attach(kvm::Vm* vm) {
  std::lock_guard lock(mutex_);
  vm_ = vm;
  return commitLocked();
}

}  // namespace vmmd
