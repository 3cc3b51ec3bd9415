// Descriptor chains no correct driver ever offers, shared by every device's tests: each device
// must mark itself broken (DEVICE_NEEDS_RESET) on them, never crash and never write anywhere.
#pragma once

#include <cctype>
#include <string>
#include <utility>
#include <vector>

#include "tests/vmm/devices/virtio/virtio_driver_harness.h"

namespace vmmd::virtio::testing {

struct HostileChain {
  std::string name;
  // Descriptor index -> descriptor, in the queue's own table; `indirect` entries go to the table
  // at kIndirectTable.
  std::vector<std::pair<uint16_t, Desc>> descriptors;
  std::vector<std::pair<uint16_t, Desc>> indirect;
  uint16_t head;
};

constexpr uint64_t kHostileData = DriverHarness::kData;           // where hostile chains point
constexpr uint64_t kIndirectTable = DriverHarness::kData + 0x8000;

// For a queue of `queue_size` (at least 4) descriptors on a guest of `ram_bytes`.
inline std::vector<HostileChain> hostileChains(uint16_t queue_size, uint64_t ram_bytes) {
  constexpr uint64_t D = kHostileData;
  std::vector<HostileChain> chains = {
      {"loop", {{0, {D, 16, kNext, 1}}, {1, {D + 16, 16, kNext, 0}}}, {}, 0},
      {"self_loop", {{2, {D, 16, kNext | kWrite, 2}}}, {}, 2},
      {"past_the_end_of_ram", {{0, {ram_bytes - 8, 64, kWrite, 0}}}, {}, 0},
      {"in_the_pci_hole", {{0, {0xFEC00000ull, 64, kWrite, 0}}}, {}, 0},
      {"address_wraps_around", {{0, {~0ull - 4, 64, kWrite, 0}}}, {}, 0},
      {"next_out_of_range", {{0, {D, 16, kNext, static_cast<uint16_t>(queue_size + 5)}}}, {}, 0},
      {"head_out_of_range", {}, {}, static_cast<uint16_t>(queue_size + 1)},
      {"readable_after_writable", {{0, {D, 16, kNext | kWrite, 1}}, {1, {D + 16, 16, 0, 0}}}, {}, 0},
      {"indirect_with_next", {{0, {kIndirectTable, 32, kIndirect | kNext, 1}}}, {}, 0},
      {"indirect_table_of_odd_size", {{0, {kIndirectTable, 20, kIndirect, 0}}}, {}, 0},
      {"indirect_table_outside_ram", {{0, {ram_bytes - 16, 64, kIndirect, 0}}}, {}, 0},
      {"nested_indirect", {{0, {kIndirectTable, 16, kIndirect, 0}}}, {{0, {kIndirectTable, 16, kIndirect, 0}}}, 0},
      {"loop_inside_indirect_table", {{0, {kIndirectTable, 32, kIndirect, 0}}},
       {{0, {D, 16, kNext, 1}}, {1, {D + 16, 16, kNext | kWrite, 0}}}, 0},
  };
  // A chain through every descriptor of the queue and back to the start: longer than the queue.
  HostileChain longer{"chain_longer_than_the_queue", {}, {}, 0};
  for (uint16_t i = 0; i < queue_size; ++i) {
    longer.descriptors.push_back({i, {D + 16ull * i, 16, kNext, static_cast<uint16_t>((i + 1) % queue_size)}});
  }
  chains.push_back(std::move(longer));
  return chains;
}

// Writes `chain` into the queue's descriptor table and offers it.
inline void offerHostile(DriverHarness& driver, const HostileChain& chain) {
  for (const auto& [index, d] : chain.descriptors) driver.setDescriptor(index, d);
  for (const auto& [index, d] : chain.indirect) driver.setDescriptor(index, d, kIndirectTable);
  driver.offer(chain.head);
}

inline std::string hostileChainName(const std::string& name) {
  std::string out = name;
  for (char& c : out) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

}  // namespace vmmd::virtio::testing
