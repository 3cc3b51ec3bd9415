// Plays the driver side of a split virtqueue on a GuestMemory: lays out the rings, writes
// descriptors (well-formed or deliberately broken), offers chains and reads back used entries.
#pragma once

#include <cstring>
#include <vector>

#include "vmm/devices/virtio/virtqueue.h"

namespace vmmd::virtio::testing {

struct Desc {
  uint64_t address;
  uint32_t length;
  uint16_t flags;
  uint16_t next;
};

constexpr uint16_t kNext = 1, kWrite = 2, kIndirect = 4;

class DriverHarness {
 public:
  static constexpr uint64_t kDescriptors = 0x10000, kAvail = 0x20000, kUsed = 0x30000, kData = 0x100000;

  DriverHarness(GuestMemory& memory, uint16_t size) : memory_(memory), size_(size) {}

  Virtqueue::Layout layout() const { return {size_, kDescriptors, kAvail, kUsed}; }

  void setDescriptor(uint16_t index, Desc d, uint64_t table = kDescriptors) {
    (void)memory_.write(table + 16ull * index, {reinterpret_cast<const uint8_t*>(&d), 16});
  }
  // Offers the chain starting at `head`.
  void offer(uint16_t head) {
    uint16_t index;
    (void)memory_.read(kAvail + 2, {reinterpret_cast<uint8_t*>(&index), 2});
    (void)memory_.write(kAvail + 4 + 2ull * (index % size_), {reinterpret_cast<const uint8_t*>(&head), 2});
    ++index;
    (void)memory_.write(kAvail + 2, {reinterpret_cast<const uint8_t*>(&index), 2});
  }
  void setAvailIndex(uint16_t index) { (void)memory_.write(kAvail + 2, {reinterpret_cast<const uint8_t*>(&index), 2}); }
  void setAvailFlags(uint16_t flags) { (void)memory_.write(kAvail, {reinterpret_cast<const uint8_t*>(&flags), 2}); }
  void setUsedEvent(uint16_t value) {
    (void)memory_.write(kAvail + 4 + 2ull * size_, {reinterpret_cast<const uint8_t*>(&value), 2});
  }
  uint16_t usedIndex() const { return read16(kUsed + 2); }
  uint16_t availEvent() const { return read16(kUsed + 4 + 8ull * size_); }
  std::pair<uint32_t, uint32_t> usedElement(uint16_t slot) const {
    uint32_t id, len;
    (void)memory_.read(kUsed + 4 + 8ull * (slot % size_), {reinterpret_cast<uint8_t*>(&id), 4});
    (void)memory_.read(kUsed + 8 + 8ull * (slot % size_), {reinterpret_cast<uint8_t*>(&len), 4});
    return {id, len};
  }

 private:
  uint16_t read16(uint64_t at) const {
    uint16_t v;
    (void)memory_.read(at, {reinterpret_cast<uint8_t*>(&v), 2});
    return v;
  }
  GuestMemory& memory_;
  uint16_t size_;
};

}  // namespace vmmd::virtio::testing
