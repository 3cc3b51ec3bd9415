// A 16550A UART (the PC's COM1 at 0x3f8, IRQ 4). Transmission is instantaneous: each byte the
// guest writes goes straight to the output sink, so THR is always empty again by the next access.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <span>

#include "vmm/devices/device.h"
#include "vmm/devices/io_bus.h"
#include "vmm/platform/interrupt_line.h"

namespace vmmd {

class Serial16550 : public BusDevice, public Device {
 public:
  using Sink = std::function<void(std::span<const uint8_t>)>;
  static constexpr size_t kInputLimit = 64 * 1024;  // bytes held for the guest before new input is dropped

  Serial16550(InterruptLine irq, Sink output) : irq_(std::move(irq)), output_(std::move(output)) {}

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Bytes typed on the host side; returns how many were accepted.
  size_t receive(std::span<const uint8_t> bytes);
  const char* name() const override { return "isa-serial"; }
  // Back to power-on state (host input already queued is kept).
  void reset() override;
  // Registers, the latched THRE interrupt and the bytes the guest has not read yet.
  Result<DeviceState> saveState() const override;
  Status loadState(const DeviceState& state) override;
  static constexpr uint32_t kStateVersion = 1;

 private:
  uint8_t readRegister(uint64_t offset);
  void writeRegister(uint64_t offset, uint8_t value);
  uint8_t interruptIdentification() const;
  uint8_t modemStatus() const;
  void updateInterrupt();

  InterruptLine irq_;
  Sink output_;
  std::deque<uint8_t> rx_;
  uint16_t divisor_ = 12;  // 9600 baud
  uint8_t ier_ = 0, lcr_ = 0, mcr_ = 0, scr_ = 0, fcr_ = 0;
  bool thr_empty_pending_ = false;  // the THRE interrupt is latched until IIR is read or THR written
  bool irq_level_ = false;
};

}  // namespace vmmd
