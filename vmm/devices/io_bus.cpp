#include "vmm/devices/io_bus.h"

#include <algorithm>
#include <cstring>

#include "base/hex.h"

namespace vmmd {

Status IoBus::add(uint64_t base, uint64_t length, BusDevice* device) {
  if (length == 0) return Error("I/O bus: empty range at " + hex(base));
  // Compare last addresses, not ends: a range may end exactly at 2^64, where base + length is 0.
  uint64_t last = base + (length - 1);
  if (last < base) return Error("I/O bus: range at " + hex(base) + " wraps past the top of the address space");
  auto at = std::lower_bound(ranges_.begin(), ranges_.end(), base, [](const Range& r, uint64_t b) { return r.base < b; });
  if (at != ranges_.end() && at->base <= last) return Error("I/O bus: range at " + hex(base) + " overlaps " + hex(at->base));
  if (at != ranges_.begin() && std::prev(at)->base + (std::prev(at)->length - 1) >= base) {
    return Error("I/O bus: range at " + hex(base) + " overlaps " + hex(std::prev(at)->base));
  }
  ranges_.insert(at, {base, length, device});
  return {};
}

const IoBus::Range* IoBus::find(uint64_t address) const {
  auto at = std::upper_bound(ranges_.begin(), ranges_.end(), address, [](uint64_t a, const Range& r) { return a < r.base; });
  if (at == ranges_.begin()) return nullptr;
  --at;
  return address - at->base < at->length ? &*at : nullptr;
}

bool IoBus::read(uint64_t address, std::span<uint8_t> data) const {
  const Range* range = find(address);
  if (!range) {
    std::memset(data.data(), 0xFF, data.size());
    return false;
  }
  range->device->read(address - range->base, data);
  return true;
}

bool IoBus::write(uint64_t address, std::span<const uint8_t> data) const {
  const Range* range = find(address);
  if (!range) return false;
  range->device->write(address - range->base, data);
  return true;
}

}  // namespace vmmd
