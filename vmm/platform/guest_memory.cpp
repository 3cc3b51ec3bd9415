#include "vmm/platform/guest_memory.h"

#include <cstring>
#include <string>

#include "base/hex.h"

namespace vmmd {
namespace {

constexpr size_t kHugePageSize = 2u << 20;

}  // namespace

Result<GuestMemory> GuestMemory::create(uint64_t ram_bytes) {
  if (ram_bytes < (2ull << 20)) return Error("guest memory: at least 2 MiB needed");
  auto mapping = Mapping::anonymousAligned(ram_bytes, kHugePageSize);
  if (!mapping) return mapping.error().withContext("guest memory");
  // Transparent huge pages, as QEMU asks for its guest RAM: every first touch of a guest page is
  // a nested page fault that the host kernel handles, and a Linux guest touches ~150 MiB while it
  // boots. Measured in the nested tier (tests/bench/boot/README.md): 36 000 faults mapping 4 KiB
  // each without this, ~550 with it. The cost is RSS for guests that touch little: the probe
  // guest's peak goes from under 4 MiB to ~15 MiB. Where THP is off this changes nothing.
  (void)::madvise(mapping->data(), ram_bytes, MADV_HUGEPAGE);
  std::vector<Region> regions;
  uint64_t low = std::min(ram_bytes, layout::kPciHoleStart);
  regions.push_back({0, low, mapping->data()});
  if (ram_bytes > low) regions.push_back({layout::kFourGiB, ram_bytes - low, mapping->data() + low});
  return GuestMemory(std::move(*mapping), std::move(regions));
}

uint8_t* GuestMemory::hostAddress(uint64_t address, uint64_t length) const {
  for (const auto& region : regions_) {
    if (address >= region.guest_address && length <= region.size &&
        address - region.guest_address <= region.size - length) {
      return region.host + (address - region.guest_address);
    }
  }
  return nullptr;
}

Status GuestMemory::write(uint64_t address, std::span<const uint8_t> bytes) {
  uint8_t* host = hostAddress(address, bytes.size());
  if (!host) {
    return Error("guest memory: write of " + std::to_string(bytes.size()) + " bytes at " + hex(address) +
                 " is outside RAM");
  }
  std::memcpy(host, bytes.data(), bytes.size());
  return {};
}

Status GuestMemory::read(uint64_t address, std::span<uint8_t> bytes) const {
  const uint8_t* host = hostAddress(address, bytes.size());
  if (!host) return Error("guest memory: read of " + std::to_string(bytes.size()) + " bytes at " + hex(address) + " is outside RAM");
  std::memcpy(bytes.data(), host, bytes.size());
  return {};
}

std::vector<MemoryMapEntry> GuestMemory::memoryMap() const {
  using layout::E820Type;
  std::vector<MemoryMapEntry> map;
  map.push_back({0, layout::kEbdaStart, E820Type::Ram});
  map.push_back({layout::kEbdaStart, 0xA0000 - layout::kEbdaStart, E820Type::Reserved});
  map.push_back({layout::kBiosAreaStart, layout::kBiosAreaEnd - layout::kBiosAreaStart, E820Type::Reserved});
  if (ramBelow4G() > layout::kBiosAreaEnd) {
    map.push_back({layout::kBiosAreaEnd, ramBelow4G() - layout::kBiosAreaEnd, E820Type::Ram});
  }
  if (ramAbove4G()) map.push_back({layout::kFourGiB, ramAbove4G(), E820Type::Ram});
  return map;
}

}  // namespace vmmd
