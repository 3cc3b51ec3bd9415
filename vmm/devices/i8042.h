// A minimal i8042 keyboard controller (data port 0x60, status/command port 0x64), for firmware:
// SeaBIOS probes it at boot (self-test, keyboard reset and identify) and operating systems
// reset the machine through it (command 0xFE, or 0xD1 with the reset line low). There is no
// keyboard behind it: no scan codes ever arrive, so it raises no interrupt; replies are polled.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>

#include "vmm/devices/acpi_pm.h"
#include "vmm/devices/device.h"
#include "vmm/devices/io_bus.h"

namespace vmmd {

class I8042 : public Device {
 public:
  static constexpr uint16_t kDataPort = 0x60, kCommandPort = 0x64;

  explicit I8042(AcpiPm::RequestHandler on_request) : on_request_(std::move(on_request)) {}

  // The two ports are separate one-byte ranges: 0x61 between them is the PIT's speaker port.
  BusDevice& dataPort() { return data_port_; }
  BusDevice& commandPort() { return command_port_; }

  const char* name() const override { return "i8042"; }
  void reset() override;
  // The command byte, pending commands and the replies the firmware has not read yet.
  Result<DeviceState> saveState() const override;
  Status loadState(const DeviceState& state) override;
  static constexpr uint32_t kStateVersion = 1;

 private:
  struct Port : BusDevice {
    Port(I8042& controller, bool command) : controller(controller), command(command) {}
    void read(uint64_t, std::span<uint8_t> data) override;
    void write(uint64_t, std::span<const uint8_t> data) override;
    I8042& controller;
    bool command;
  };
  uint8_t readData();
  uint8_t readStatus() const;
  void writeData(uint8_t value);
  void writeCommand(uint8_t value);
  void keyboardCommand(uint8_t value);
  void reply(std::initializer_list<uint8_t> bytes);

  AcpiPm::RequestHandler on_request_;
  Port data_port_{*this, false};
  Port command_port_{*this, true};
  std::deque<uint8_t> output_;
  uint8_t last_output_ = 0;
  uint8_t command_byte_ = 0x45;      // translation, system flag, keyboard interrupt enabled
  uint8_t pending_command_ = 0;      // a controller command waiting for its data byte (0x60, 0xD1...)
  uint8_t pending_keyboard_ = 0;     // a keyboard command waiting for its argument (0xED, 0xF3)
};

// Port 0x92, "system control port A": fast A20 (always on here) and a fast reset on bit 0.
class SystemControlPortA : public BusDevice {
 public:
  static constexpr uint16_t kPort = 0x92;
  explicit SystemControlPortA(AcpiPm::RequestHandler on_request) : on_request_(std::move(on_request)) {}
  void read(uint64_t, std::span<uint8_t> data) override;
  void write(uint64_t, std::span<const uint8_t> data) override;

 private:
  AcpiPm::RequestHandler on_request_;
};

}  // namespace vmmd
