// The PC's CMOS RTC and NVRAM (ports 0x70 index, 0x71 data). Linux stalls for seconds probing a
// missing RTC, and the NVRAM survives a guest reset (the probe counts its boots there).
#pragma once

#include <array>
#include <cstdint>
#include <ctime>
#include <mutex>

#include "vmm/devices/io_bus.h"

namespace vmmd {

class CmosRtc : public BusDevice {
 public:
  // Memory sizes go into the NVRAM bytes firmware and old kernels read.
  CmosRtc(uint64_t ram_below_4g, uint64_t ram_above_4g);

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  uint8_t readRegister(uint8_t index);
  void writeRegister(uint8_t index, uint8_t value);
  uint8_t encode(int value) const;  // BCD or binary, as register B says
  int decode(uint8_t value) const;
  uint8_t encodeHours(int hour24) const;  // 24-hour, or 12-hour with bit 7 for PM, as register B says
  int decodeHours(uint8_t value) const;   // back to 0..23
  std::tm guestTime() const;

  std::mutex mutex_;
  uint8_t index_ = 0;
  std::array<uint8_t, 128> nvram_{};
  time_t offset_seconds_ = 0;  // guest clock minus host UTC, set when the guest writes the time
};

}  // namespace vmmd
