// One wire into the interrupt controller (an ISA IRQ / GSI of the in-kernel PIC+IOAPIC).
// Devices drive it as a level; the owner decides how the level reaches KVM.
#pragma once

#include <cstdint>
#include <functional>

namespace vmmd {

class InterruptLine {
 public:
  using Setter = std::function<void(uint32_t gsi, bool level)>;
  InterruptLine() = default;
  InterruptLine(uint32_t gsi, Setter setter) : gsi_(gsi), setter_(std::move(setter)) {}

  void set(bool level) const {
    if (setter_) setter_(gsi_, level);
  }
  uint32_t gsi() const { return gsi_; }

 private:
  uint32_t gsi_ = 0;
  Setter setter_;
};

}  // namespace vmmd
