// The ACPI hardware of a hardware-reduced machine (-M microvm, laid out as QEMU's microvm): a
// Generic Event Device and the sleep control, sleep status and reset registers the FADT points
// at, all in one MMIO window. The GED's event selector (4 bytes at the window's start) holds the
// pending events and clears when read; each new event pulses its edge-triggered interrupt, and the
// DSDT's _EVT reads the selector and notifies the power button device. No PM timer, no PM1
// blocks, no SCI: a guest finds nothing to calibrate or poll.
#pragma once

#include <cstdint>
#include <functional>

#include "vmm/devices/acpi_pm.h"
#include "vmm/devices/device.h"
#include "vmm/devices/io_bus.h"
#include "vmm/platform/interrupt_line.h"

namespace vmmd {

class AcpiGed : public BusDevice, public Device {
 public:
  using RequestHandler = std::function<void(PowerRequest)>;
  // Offsets in the window.
  static constexpr uint64_t kEventSelector = 0x000;  // 4 bytes
  static constexpr uint64_t kSleepControl = 0x200, kSleepStatus = 0x201, kReset = 0x202;
  static constexpr uint64_t kLength = 0x203;
  static constexpr uint32_t kPowerDownEvent = 1u << 1;  // the event selector bit QEMU's GED uses
  static constexpr uint8_t kResetValue = 0x42;

  AcpiGed(InterruptLine line, uint8_t s5_sleep_type, RequestHandler on_request);

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // The host pressed the power button (QMP system_powerdown).
  void pressPowerButton();
  const char* name() const override { return "acpi-ged"; }
  void reset() override;
  // The pending events: a press the guest has not read yet survives a migration.
  Result<DeviceState> saveState() const override;
  Status loadState(const DeviceState& state) override;
  static constexpr uint32_t kStateVersion = 1;

 private:
  InterruptLine line_;
  uint8_t s5_sleep_type_;
  RequestHandler on_request_;
  uint32_t pending_ = 0;
};

}  // namespace vmmd
