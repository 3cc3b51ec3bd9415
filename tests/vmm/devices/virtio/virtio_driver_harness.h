// Plays the driver side of a split virtqueue on a GuestMemory: lays out the rings, writes
// descriptors (well-formed or deliberately broken), offers chains and reads back used entries.
// Several queues share one GuestMemory by giving each harness its own `base` (its rings move up
// by that much; kData stays where it is for buffers).
#pragma once

#include <cstring>
#include <initializer_list>
#include <utility>
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

  DriverHarness(GuestMemory& memory, uint16_t size, uint64_t base = 0) : memory_(memory), size_(size), base_(base) {}

  Virtqueue::Layout layout() const { return {size_, descriptors(), avail(), used()}; }
  uint64_t descriptors() const { return base_ + kDescriptors; }
  uint64_t avail() const { return base_ + kAvail; }
  uint64_t used() const { return base_ + kUsed; }

  void setDescriptor(uint16_t index, Desc d) { setDescriptor(index, d, descriptors()); }
  void setDescriptor(uint16_t index, Desc d, uint64_t table) {
    (void)memory_.write(table + 16ull * index, {reinterpret_cast<const uint8_t*>(&d), 16});
  }
  // Offers the chain starting at `head`.
  void offer(uint16_t head) {
    uint16_t index = read16(avail() + 2);
    (void)memory_.write(avail() + 4 + 2ull * (index % size_), {reinterpret_cast<const uint8_t*>(&head), 2});
    ++index;
    (void)memory_.write(avail() + 2, {reinterpret_cast<const uint8_t*>(&index), 2});
  }

  // One buffer of a well-formed chain: guest address, length, device-writable or not.
  struct Segment {
    uint64_t address;
    uint32_t length;
    bool writable;
  };
  // Writes `segments` as a chain into the next free descriptors (taken round-robin, so at most
  // size() descriptors may be outstanding) and offers it; returns its head.
  uint16_t offerChain(std::initializer_list<Segment> segments) { return offerChain(std::vector<Segment>(segments)); }
  uint16_t offerChain(const std::vector<Segment>& segments) {
    uint16_t head = next_free_;
    for (size_t i = 0; i < segments.size(); ++i) {
      uint16_t index = next_free_;
      next_free_ = static_cast<uint16_t>((next_free_ + 1) % size_);
      bool last = i + 1 == segments.size();
      uint16_t flags = static_cast<uint16_t>((segments[i].writable ? kWrite : 0) | (last ? 0 : kNext));
      setDescriptor(index, {segments[i].address, segments[i].length, flags, last ? uint16_t{0} : next_free_});
    }
    offer(head);
    return head;
  }

  void setAvailIndex(uint16_t index) { (void)memory_.write(avail() + 2, {reinterpret_cast<const uint8_t*>(&index), 2}); }
  void setAvailFlags(uint16_t flags) { (void)memory_.write(avail(), {reinterpret_cast<const uint8_t*>(&flags), 2}); }
  void setUsedEvent(uint16_t value) {
    (void)memory_.write(avail() + 4 + 2ull * size_, {reinterpret_cast<const uint8_t*>(&value), 2});
  }
  uint16_t usedIndex() const { return read16(used() + 2); }
  uint16_t availEvent() const { return read16(used() + 4 + 8ull * size_); }
  std::pair<uint32_t, uint32_t> usedElement(uint16_t slot) const {
    uint32_t id, len;
    (void)memory_.read(used() + 4 + 8ull * (slot % size_), {reinterpret_cast<uint8_t*>(&id), 4});
    (void)memory_.read(used() + 8 + 8ull * (slot % size_), {reinterpret_cast<uint8_t*>(&len), 4});
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
  uint64_t base_;
  uint16_t next_free_ = 0;
};

}  // namespace vmmd::virtio::testing
