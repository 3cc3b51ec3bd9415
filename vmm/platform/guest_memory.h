// Guest RAM: one anonymous mapping, shown to the guest below the PCI hole and, for what does not
// fit, above 4 GiB. Every access from the host goes through bounds-checked helpers, since guest
// addresses are guest-controlled.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/mapping.h"
#include "base/result.h"
#include "vmm/platform/layout.h"

namespace vmmd {

struct MemoryMapEntry {
  uint64_t address;
  uint64_t size;
  layout::E820Type type;
};

class GuestMemory {
 public:
  struct Region {
    uint64_t guest_address;
    uint64_t size;
    uint8_t* host;
  };

  static Result<GuestMemory> create(uint64_t ram_bytes);

  uint64_t ramBytes() const { return mapping_.size(); }
  uint64_t ramBelow4G() const { return regions_[0].size; }
  uint64_t ramAbove4G() const { return regions_.size() > 1 ? regions_[1].size : 0; }
  const std::vector<Region>& regions() const { return regions_; }

  // Host pointer for [address, address+length) if that range lies inside one RAM region.
  uint8_t* hostAddress(uint64_t address, uint64_t length) const;
  Status write(uint64_t address, std::span<const uint8_t> bytes);
  Status read(uint64_t address, std::span<uint8_t> bytes) const;

  template <typename T>
  Status writeObject(uint64_t address, const T& object) {
    return write(address, {reinterpret_cast<const uint8_t*>(&object), sizeof(T)});
  }

  // Pages the host wrote into guest memory (device models: used rings, received data), for live
  // migration: KVM's dirty log sees only the guest's own writes. While tracking is on, every
  // write() and every markWritten() sets the pages' bits; takeHostWritten() returns and clears
  // them. Off (the normal case), marking is one relaxed load.
  void startHostWriteTracking() const;
  void stopHostWriteTracking() const;
  bool trackingHostWrites() const { return host_tracking_->load(std::memory_order_relaxed); }
  // `host` points into guest memory (a pointer hostAddress() gave); other pointers are ignored.
  void markWritten(const uint8_t* host, uint64_t length) const {
    if (trackingHostWrites()) markWrittenSlow(host, length);
  }
  // ORs the host-written bits of region `region` into `bitmap` (one bit per 4 KiB page of the
  // region, as KVM_GET_DIRTY_LOG) and clears them.
  void takeHostWritten(size_t region, std::span<uint64_t> bitmap) const;

  // The e820 map every boot protocol hands to the guest.
  std::vector<MemoryMapEntry> memoryMap() const;

 private:
  GuestMemory(Mapping mapping, std::vector<Region> regions);
  void markWrittenSlow(const uint8_t* host, uint64_t length) const;
  Mapping mapping_;
  std::vector<Region> regions_;
  // One bit per 4 KiB page of the whole mapping; regions are slices of it.
  std::unique_ptr<std::atomic<uint64_t>[]> host_written_;
  std::unique_ptr<std::atomic<bool>> host_tracking_ = std::make_unique<std::atomic<bool>>(false);
};

}  // namespace vmmd
