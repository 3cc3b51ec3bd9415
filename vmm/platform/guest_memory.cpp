#include "vmm/platform/guest_memory.h"

#include <cstring>
#include <string>

#include "base/hex.h"

namespace vmmd {
namespace {

constexpr size_t kHugePageSize = 2u << 20;
constexpr uint64_t kPage = 4096;

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

GuestMemory::GuestMemory(Mapping mapping, std::vector<Region> regions)
    : mapping_(std::move(mapping)),
      regions_(std::move(regions)),
      host_written_(std::make_unique<std::atomic<uint64_t>[]>((mapping_.size() / kPage + 63) / 64)) {}

void GuestMemory::startHostWriteTracking() const {
  size_t words = (mapping_.size() / kPage + 63) / 64;
  for (size_t i = 0; i < words; ++i) host_written_[i].store(0, std::memory_order_relaxed);
  host_tracking_->store(true);
}

void GuestMemory::stopHostWriteTracking() const { host_tracking_->store(false); }

void GuestMemory::markWrittenSlow(const uint8_t* host, uint64_t length) const {
  const uint8_t* base = mapping_.data();
  if (host < base || length == 0 || static_cast<uint64_t>(host - base) >= mapping_.size()) return;
  uint64_t offset = static_cast<uint64_t>(host - base);
  uint64_t end = std::min<uint64_t>(mapping_.size(), offset + length);
  for (uint64_t page = offset / kPage; page <= (end - 1) / kPage; ++page) {
    host_written_[page / 64].fetch_or(uint64_t{1} << (page % 64), std::memory_order_relaxed);
  }
}

void GuestMemory::takeHostWritten(size_t region, std::span<uint64_t> bitmap) const {
  const Region& r = regions_.at(region);
  uint64_t first = static_cast<uint64_t>(r.host - mapping_.data()) / kPage;
  uint64_t pages = std::min<uint64_t>(r.size / kPage, bitmap.size() * 64);
  for (uint64_t i = 0; i < pages;) {
    uint64_t page = first + i;
    if (page % 64 == 0 && pages - i >= 64 && i % 64 == 0) {  // whole words where both line up
      bitmap[i / 64] |= host_written_[page / 64].exchange(0, std::memory_order_relaxed);
      i += 64;
      continue;
    }
    uint64_t bit = uint64_t{1} << (page % 64);
    if (host_written_[page / 64].fetch_and(~bit, std::memory_order_relaxed) & bit) bitmap[i / 64] |= uint64_t{1} << (i % 64);
    ++i;
  }
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
  markWritten(host, bytes.size());
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
