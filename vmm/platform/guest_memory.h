// Guest RAM: one anonymous mapping, shown to the guest below the PCI hole and, for what does not
// fit, above 4 GiB. Every access from the host goes through bounds-checked helpers, since guest
// addresses are guest-controlled.
#pragma once

#include <cstdint>
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

  // The e820 map every boot protocol hands to the guest.
  std::vector<MemoryMapEntry> memoryMap() const;

 private:
  GuestMemory(Mapping mapping, std::vector<Region> regions) : mapping_(std::move(mapping)), regions_(std::move(regions)) {}
  Mapping mapping_;
  std::vector<Region> regions_;
};

}  // namespace vmmd
