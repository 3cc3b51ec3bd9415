#include "vmm/devices/virtio/virtqueue.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "base/hex.h"

namespace vmmd::virtio {
namespace {

constexpr uint16_t kDescNext = 1, kDescWrite = 2, kDescIndirect = 4;
constexpr uint16_t kAvailNoInterrupt = 1;
constexpr size_t kDescriptorSize = 16;

struct Descriptor {
  uint64_t address;
  uint32_t length;
  uint16_t flags;
  uint16_t next;
};

template <typename T>
T loadAcquire(const uint8_t* at) {
  T value;
  std::memcpy(&value, at, sizeof(T));
  std::atomic_thread_fence(std::memory_order_acquire);
  return value;
}

Descriptor readDescriptor(const uint8_t* table, uint32_t index) {
  Descriptor d;
  std::memcpy(&d, table + size_t{index} * kDescriptorSize, kDescriptorSize);
  return d;
}

}  // namespace

uint64_t DescriptorChain::readableBytes() const {
  uint64_t total = 0;
  for (const auto& b : readable) total += b.length;
  return total;
}

uint64_t DescriptorChain::writableBytes() const {
  uint64_t total = 0;
  for (const auto& b : writable) total += b.length;
  return total;
}

Status Virtqueue::configure(const GuestMemory& memory, const Layout& layout, bool event_idx) {
  ready_ = false;
  if (layout.size == 0 || layout.size > kMaxQueueSize || (layout.size & (layout.size - 1))) {
    return Error("virtqueue: size " + std::to_string(layout.size) + " is not a power of 2 up to 32768");
  }
  // Alignments from the spec: descriptors 16, driver area 2, device area 4.
  if (layout.descriptors % 16 || layout.driver_area % 2 || layout.device_area % 4) {
    return Error("virtqueue: misaligned ring addresses");
  }
  uint64_t n = layout.size;
  uint8_t* descriptors = memory.hostAddress(layout.descriptors, n * kDescriptorSize);
  uint8_t* avail = memory.hostAddress(layout.driver_area, 6 + 2 * n);
  uint8_t* used = memory.hostAddress(layout.device_area, 6 + 8 * n);
  if (!descriptors || !avail || !used) return Error("virtqueue: rings lie outside guest memory");
  memory_ = &memory;
  layout_ = layout;
  event_idx_ = event_idx;
  descriptors_ = descriptors;
  avail_ = avail;
  used_ = used;
  next_avail_ = next_used_ = signalled_used_ = 0;
  in_flight_heads_.assign((n + 63) / 64, 0);
  ready_ = true;
  return {};
}

void Virtqueue::reset() {
  ready_ = false;
  layout_ = {};
  descriptors_ = avail_ = used_ = nullptr;
  next_avail_ = next_used_ = signalled_used_ = 0;
  in_flight_heads_.clear();
}

void Virtqueue::markHead(uint16_t head, bool in_flight) {
  if (head >= layout_.size) return;
  uint64_t bit = uint64_t{1} << (head % 64);
  in_flight_heads_[head / 64] = in_flight ? in_flight_heads_[head / 64] | bit : in_flight_heads_[head / 64] & ~bit;
}

void Virtqueue::unpop(uint16_t count) {
  // The heads come back out of the ring slots they were read from (the device gives them back at
  // once, under its lock; a driver that rewrote the slot meanwhile only confuses its own device).
  for (uint16_t i = 1; i <= count && ready_; ++i) {
    markHead(availRing(static_cast<uint16_t>(next_avail_ - i) % layout_.size), false);
  }
  next_avail_ = static_cast<uint16_t>(next_avail_ - count);
}

uint16_t Virtqueue::availFlags() const { return loadAcquire<uint16_t>(avail_); }
uint16_t Virtqueue::availIndex() const { return loadAcquire<uint16_t>(avail_ + 2); }
uint16_t Virtqueue::availRing(uint16_t slot) const { return loadAcquire<uint16_t>(avail_ + 4 + 2 * slot); }
uint16_t Virtqueue::usedEvent() const { return loadAcquire<uint16_t>(avail_ + 4 + 2 * layout_.size); }

Result<std::optional<DescriptorChain>> Virtqueue::pop() {
  DescriptorChain chain;
  auto got = pop(chain);
  if (!got) return got.error();
  if (!*got) return std::optional<DescriptorChain>();
  return std::optional<DescriptorChain>(std::move(chain));
}

Result<bool> Virtqueue::pop(DescriptorChain& chain) {
  if (!ready_) return Error("virtqueue: not ready");
  uint16_t avail = availIndex();
  uint16_t pending = static_cast<uint16_t>(avail - next_avail_);
  if (pending == 0) return false;
  if (pending > layout_.size) {
    return Error("virtqueue: driver claims " + std::to_string(pending) + " new buffers in a queue of " +
                 std::to_string(layout_.size));
  }
  if (inFlight() >= layout_.size) {
    return Error("virtqueue: driver offers more than " + std::to_string(layout_.size) +
                 " buffers in flight (virtqueue size exceeded)");
  }
  uint16_t head = availRing(static_cast<uint16_t>(next_avail_ % layout_.size));
  if (head < layout_.size && headInFlight(head)) {
    return Error("virtqueue: head " + std::to_string(head) + " offered again while still in flight");
  }
  ++next_avail_;
  if (auto st = walk(head, chain); !st) return st.error();
  markHead(head, true);
  return true;
}

Status Virtqueue::walk(uint16_t head, DescriptorChain& chain) {
  if (head >= layout_.size) return Error("virtqueue: head index " + std::to_string(head) + " out of range");
  chain.head = head;
  chain.readable.clear();  // keeps their capacity: a device popping into one chain allocates once
  chain.writable.clear();
  const uint8_t* table = descriptors_;
  uint32_t table_size = layout_.size;
  uint32_t index = head;
  bool in_indirect = false;
  uint32_t visited = 0;
  uint32_t descriptors = 0;  // direct and indirect together
  uint32_t max_descriptors = std::max<uint32_t>(kMaxChainDescriptors, layout_.size);
  uint64_t total = 0;
  for (;;) {
    // A chain can never have more descriptors than its table: anything longer is a loop.
    if (++visited > table_size) return Error("virtqueue: descriptor chain loops or is longer than its table");
    Descriptor d = readDescriptor(table, index);
    if (d.flags & kDescIndirect) {
      if (in_indirect) return Error("virtqueue: nested indirect descriptor table");
      if (d.flags & kDescNext) return Error("virtqueue: indirect descriptor with NEXT set");
      if (d.length == 0 || d.length % kDescriptorSize || d.length / kDescriptorSize > kMaxQueueSize) {
        return Error("virtqueue: indirect table of " + std::to_string(d.length) + " bytes");
      }
      const uint8_t* indirect = memory_->hostAddress(d.address, d.length);
      if (!indirect) return Error("virtqueue: indirect table at " + hex(d.address) + " is outside guest memory");
      table = indirect;
      table_size = d.length / kDescriptorSize;
      index = 0;
      visited = 0;
      in_indirect = true;
      continue;
    }
    // Buffers, not the descriptor that points at an indirect table, count (as in QEMU).
    if (++descriptors > max_descriptors) {
      return Error("virtqueue: descriptor chain longer than " + std::to_string(max_descriptors) + " descriptors");
    }
    uint8_t* data = memory_->hostAddress(d.address, d.length);
    if (!data && d.length) {
      return Error("virtqueue: buffer " + hex(d.address) + "+" + std::to_string(d.length) + " is outside guest memory");
    }
    total += d.length;
    if (total > (1ull << 32)) return Error("virtqueue: chain larger than 4 GiB");
    bool writable = d.flags & kDescWrite;
    if (!writable && !chain.writable.empty()) {
      return Error("virtqueue: device-readable buffer after a device-writable one");
    }
    (writable ? chain.writable : chain.readable).push_back({data, d.length, writable});
    if (!(d.flags & kDescNext)) break;
    if (d.next >= table_size) return Error("virtqueue: next index " + std::to_string(d.next) + " out of range");
    index = d.next;
  }
  return {};
}

Status Virtqueue::push(uint16_t head, uint32_t written) {
  if (!ready_) return Error("virtqueue: not ready");
  markHead(head, false);
  if (memory_->trackingHostWrites()) markChainWritten(head);
  uint8_t* element = used_ + 4 + 8 * (next_used_ % layout_.size);
  uint32_t id = head;
  std::memcpy(element, &id, 4);
  std::memcpy(element + 4, &written, 4);
  ++next_used_;
  // The element must be visible before the index that publishes it.
  std::atomic_thread_fence(std::memory_order_release);
  std::memcpy(used_ + 2, &next_used_, 2);
  return {};
}

// A migration is tracking host writes: the pages the device wrote for this chain (found again
// from the descriptor table, which the driver may not change while the chain is in flight) and
// the used ring must reach the destination.
void Virtqueue::markChainWritten(uint16_t head) {
  if (walk(head, written_scratch_)) {
    for (const Buffer& buffer : written_scratch_.writable) memory_->markWritten(buffer.data, buffer.length);
  }
  memory_->markWritten(used_, 6 + 8 * uint64_t{layout_.size});
}

bool Virtqueue::shouldNotify() {
  if (!ready_) return false;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  uint16_t old_used = signalled_used_;
  uint16_t new_used = next_used_;
  signalled_used_ = new_used;
  if (new_used == old_used) return false;
  if (!event_idx_) return !(availFlags() & kAvailNoInterrupt);
  // vring_need_event(): notify when used_event lies in (old, new].
  uint16_t event = usedEvent();
  return static_cast<uint16_t>(new_used - event - 1) < static_cast<uint16_t>(new_used - old_used);
}

bool Virtqueue::enableNotifications() {
  if (!ready_) return false;
  if (event_idx_) {
    // avail_event lives after the used ring: ask for a kick at the next new entry.
    std::memcpy(used_ + 4 + 8 * layout_.size, &next_avail_, 2);
    memory_->markWritten(used_ + 4 + 8 * layout_.size, 2);
  } else {
    uint16_t flags = 0;  // VIRTQ_USED_F_NO_NOTIFY cleared
    std::memcpy(used_, &flags, 2);
    memory_->markWritten(used_, 2);
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return availIndex() != next_avail_;
}

}  // namespace vmmd::virtio
