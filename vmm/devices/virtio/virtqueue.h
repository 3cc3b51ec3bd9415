// A split virtqueue (virtio 1.x, section 2.7) as the device sees it. Every descriptor is
// guest-controlled input: chains that loop, leave guest memory, exceed the queue size, nest
// indirect tables or put a device-readable buffer after a device-writable one are refused with
// an error; the device then marks itself broken (DEVICE_NEEDS_RESET). Nothing here ever touches
// memory outside the buffers a valid chain names.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/result.h"
#include "vmm/platform/guest_memory.h"

namespace vmmd::virtio {

constexpr uint16_t kMaxQueueSize = 32768;
// The most descriptors one chain may have, direct and indirect together, for queues of up to this
// many entries (a longer queue allows chains as long as itself, the spec's own limit). QEMU's
// VIRTQUEUE_MAX_SIZE: a Linux driver puts at most seg_max + 2 (virtio-blk) or MAX_SKB_FRAGS + 2
// (virtio-net) buffers in one indirect table, far below it, while a hostile 32768-entry table
// would otherwise cost 512 KiB of buffer list per request.
constexpr uint32_t kMaxChainDescriptors = 1024;

// One buffer of a chain, already translated to host memory.
struct Buffer {
  uint8_t* data;
  uint32_t length;
  bool device_writable;
};

struct DescriptorChain {
  uint16_t head;
  std::vector<Buffer> readable;  // driver -> device, in order
  std::vector<Buffer> writable;  // device -> driver, in order
  uint64_t readableBytes() const;
  uint64_t writableBytes() const;
};

class Virtqueue {
 public:
  struct Layout {
    uint16_t size = 0;          // number of descriptors, a power of 2
    uint64_t descriptors = 0;   // guest addresses
    uint64_t driver_area = 0;   // "avail" ring
    uint64_t device_area = 0;   // "used" ring
  };

  Virtqueue() = default;
  // Validates the layout against guest memory; the queue is usable once this succeeded.
  Status configure(const GuestMemory& memory, const Layout& layout, bool event_idx);
  bool ready() const { return ready_; }
  uint16_t size() const { return layout_.size; }

  // The next available chain, or nullopt when the driver has offered nothing new. An error, after
  // which the device must fail, also when the driver offers a head that is still in flight or more
  // chains than the queue has entries before the device returned any (QEMU: "Virtqueue size
  // exceeded"): a device keeps at most size() chains, however the driver moves its index.
  Result<std::optional<DescriptorChain>> pop();
  // The same into `chain`, reusing its buffers' storage (no allocation per chain on hot paths);
  // false when the driver has offered nothing new.
  Result<bool> pop(DescriptorChain& chain);
  // Gives back the last `count` chains popped and not pushed, to be popped again later (a device
  // that found it lacks buffers for a whole frame).
  void unpop(uint16_t count);
  // Returns a chain to the driver with `written` bytes placed in its writable buffers.
  Status push(uint16_t head, uint32_t written);
  // Whether the driver wants an interrupt for what was pushed since the last call (EVENT_IDX or
  // the NO_INTERRUPT flag).
  bool shouldNotify();
  // Asks the driver to kick again once it offers more (EVENT_IDX: avail_event; else clear flags),
  // then looks again: true when buffers arrived meanwhile, so the caller must drain once more
  // (otherwise a buffer offered between the last pop and this call would never be kicked).
  bool enableNotifications();

  void reset();

  // Where the device is in the rings: what a saved queue resumes from after configure().
  struct Position {
    uint16_t next_avail = 0;
    uint16_t next_used = 0;
    uint16_t signalled_used = 0;
  };
  Position position() const { return {next_avail_, next_used_, signalled_used_}; }
  // The heads popped before the state was saved are not known in flight: only the count bounds
  // them (they are not checked for reuse).
  void setPosition(const Position& position) {
    next_avail_ = position.next_avail;
    next_used_ = position.next_used;
    signalled_used_ = position.signalled_used;
  }
  // Chains popped and not yet pushed.
  uint16_t inFlight() const { return static_cast<uint16_t>(next_avail_ - next_used_); }

 private:
  Status walk(uint16_t head, DescriptorChain& chain);
  void markChainWritten(uint16_t head);
  uint16_t availIndex() const;
  uint16_t availRing(uint16_t slot) const;
  uint16_t availFlags() const;
  uint16_t usedEvent() const;

  const GuestMemory* memory_ = nullptr;
  Layout layout_;
  bool event_idx_ = false;
  bool ready_ = false;
  uint8_t* descriptors_ = nullptr;
  uint8_t* avail_ = nullptr;
  uint8_t* used_ = nullptr;
  uint16_t next_avail_ = 0;
  uint16_t next_used_ = 0;
  uint16_t signalled_used_ = 0;  // used index when the driver was last notified
  std::vector<uint64_t> in_flight_heads_;  // one bit per head popped and not pushed
  bool headInFlight(uint16_t head) const { return in_flight_heads_[head / 64] >> (head % 64) & 1; }
  void markHead(uint16_t head, bool in_flight);
  DescriptorChain written_scratch_;  // markChainWritten's, kept to reuse its storage
};

}  // namespace vmmd::virtio
