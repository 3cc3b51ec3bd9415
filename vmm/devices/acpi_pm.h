// The ACPI fixed hardware of our classic-ACPI machine: PM1 event (status/enable) and control
// blocks, the PM timer, and the reset register. Turns the guest's S5 request and reset writes into
// machine requests, and the host's power-button press into an SCI.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include "vmm/devices/device.h"
#include "vmm/devices/io_bus.h"
#include "vmm/platform/interrupt_line.h"

namespace vmmd {

enum class PowerRequest { PowerOff, Reset };

class AcpiPm : public BusDevice, public Device {
 public:
  using RequestHandler = std::function<void(PowerRequest)>;
  static constexpr uint64_t kLength = 12;  // PM1 event (4) + control (2) + pad (2) + timer (4)

  AcpiPm(InterruptLine sci, uint8_t s5_sleep_type, RequestHandler on_request);

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // The host pressed the power button (QMP system_powerdown).
  void pressPowerButton();
  const char* name() const override { return "acpi-pm"; }
  void reset() override;
  // PM1 status/enable/control, the SCI level and the PM timer's count (it goes on counting from
  // there after a load).
  Result<DeviceState> saveState() const override;
  Status loadState(const DeviceState& state) override;
  static constexpr uint32_t kStateVersion = 1;

  // The reset register (0xCF9 on this machine): a separate one-byte range on the bus.
  class ResetRegister : public BusDevice {
   public:
    ResetRegister(uint8_t reset_value, RequestHandler on_request) : value_(reset_value), on_request_(std::move(on_request)) {}
    void read(uint64_t, std::span<uint8_t> data) override;
    void write(uint64_t, std::span<const uint8_t> data) override;

   private:
    uint8_t value_;
    RequestHandler on_request_;
  };

 private:
  uint16_t readWord(uint64_t offset);
  void writeWord(uint64_t offset, uint16_t value, uint16_t mask);
  uint32_t timerTicks() const;
  void updateSci();

  InterruptLine sci_;
  uint8_t s5_sleep_type_;
  RequestHandler on_request_;
  uint16_t status_ = 0;
  uint16_t enable_ = 0;
  uint16_t control_ = 1;  // SCI_EN: always in ACPI mode
  bool sci_level_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace vmmd
