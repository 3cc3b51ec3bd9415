// Maps guest I/O port (or MMIO) ranges to device models. Built once before the vCPUs start and
// read-only afterwards, so lookups from every vCPU thread need no lock.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"

namespace vmmd {

class BusDevice {
 public:
  virtual ~BusDevice() = default;
  // `offset` is relative to the start of the range the device was registered at.
  virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

class IoBus {
 public:
  Status add(uint64_t base, uint64_t length, BusDevice* device);
  // False when nothing is mapped at `address`: reads then see all-ones, writes are dropped.
  bool read(uint64_t address, std::span<uint8_t> data) const;
  bool write(uint64_t address, std::span<const uint8_t> data) const;

 private:
  struct Range {
    uint64_t base;
    uint64_t length;
    BusDevice* device;
  };
  const Range* find(uint64_t address) const;
  std::vector<Range> ranges_;  // sorted by base, non-overlapping
};

}  // namespace vmmd
