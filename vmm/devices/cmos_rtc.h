// The PC's CMOS RTC and NVRAM (ports 0x70 index, 0x71 data). Linux stalls for seconds probing a
// missing RTC, and the NVRAM survives a guest reset (the probe counts its boots there).
#pragma once

#include <array>
#include <cstdint>
#include <ctime>

#include "vmm/devices/device.h"
#include "vmm/devices/io_bus.h"

namespace vmmd {

class CmosRtc : public BusDevice, public Device {
 public:
  // Memory sizes go into the NVRAM bytes firmware and old kernels read.
  CmosRtc(uint64_t ram_below_4g, uint64_t ram_above_4g);

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  const char* name() const override { return "mc146818rtc"; }
  // The index register back to 0; NVRAM and the guest's clock offset survive, as on a PC.
  void reset() override;
  // Version 1: the index register, the 128 NVRAM bytes, the guest clock's offset from the host's.
  Result<DeviceState> saveState() const override;
  Status loadState(const DeviceState& state) override;
  static constexpr uint32_t kStateVersion = 1;

 private:
  uint8_t readRegister(uint8_t index);
  void writeRegister(uint8_t index, uint8_t value);
  uint8_t encode(int value) const;  // BCD or binary, as register B says
  int decode(uint8_t value) const;
  uint8_t encodeHours(int hour24) const;  // 24-hour, or 12-hour with bit 7 for PM, as register B says
  int decodeHours(uint8_t value) const;   // back to 0..23
  std::tm guestTime() const;

  uint8_t index_ = 0;
  std::array<uint8_t, 128> nvram_{};
  time_t offset_seconds_ = 0;  // guest clock minus host UTC, set when the guest writes the time
};

}  // namespace vmmd
