#include "vmm/machine/exit_stats.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <functional>
#include <map>
#include <utility>

namespace vmmd {
namespace {

uint64_t keyOf(AddressSpace space, uint64_t address) { return ((address << 1) | static_cast<uint64_t>(space)) + 1; }

bool busierFirst(const ExitStats::AddressCount& a, const ExitStats::AddressCount& b) {
  if (a.exits != b.exits) return a.exits > b.exits;
  if (a.space != b.space) return a.space < b.space;
  return a.address < b.address;
}

}  // namespace

const char* exitReasonStatName(ExitReason reason) {
  switch (reason) {
    case ExitReason::Io: return "io_exits";
    case ExitReason::Mmio: return "mmio_exits";
    case ExitReason::Hlt: return "hlt_exits";
    case ExitReason::Intr: return "intr_exits";
    case ExitReason::Shutdown: return "shutdown_exits";
    case ExitReason::SystemEvent: return "system_event_exits";
    case ExitReason::InternalError: return "internal_error_exits";
    case ExitReason::FailEntry: return "fail_entry_exits";
    case ExitReason::Other:
    case ExitReason::kCount: break;
  }
  return "other_exits";
}

void ExitStats::countAddress(AddressSpace space, uint64_t address) {
  const uint64_t key = keyOf(space, address);
  // Fibonacci hashing spreads ports and page-aligned MMIO addresses alike.
  size_t slot = static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 54) % kAddressSlots;
  // A bounded probe: once the table fills (a guest touching thousands of addresses), an unknown
  // address costs a few loads on this exit path, not a scan of the whole table.
  constexpr size_t kMaxProbes = 16;
  for (size_t probes = 0; probes < kMaxProbes; ++probes, slot = (slot + 1) % kAddressSlots) {
    uint64_t held = keys_[slot].load(std::memory_order_relaxed);  // only this thread writes keys
    if (held == key) {
      bump(counts_[slot]);
      return;
    }
    if (held == 0) {
      counts_[slot].store(1, std::memory_order_relaxed);
      keys_[slot].store(key, std::memory_order_release);  // a reader seeing the key sees its count
      return;
    }
  }
  bump(other_addresses_);
}

ExitStats::Snapshot ExitStats::snapshot() const {
  Snapshot out;
  for (size_t i = 0; i < reasons_.size(); ++i) out.reasons[i] = reasons_[i].load(std::memory_order_relaxed);
  for (size_t i = 0; i < kAddressSlots; ++i) {
    uint64_t key = keys_[i].load(std::memory_order_acquire);
    if (key == 0) continue;
    --key;
    out.addresses.push_back({static_cast<AddressSpace>(key & 1), key >> 1, counts_[i].load(std::memory_order_relaxed)});
  }
  std::sort(out.addresses.begin(), out.addresses.end(), busierFirst);
  out.other_addresses = other_addresses_.load(std::memory_order_relaxed);
  return out;
}

uint64_t ExitStats::Snapshot::total() const {
  uint64_t sum = 0;
  for (uint64_t n : reasons) sum += n;
  return sum;
}

void ExitStats::Snapshot::add(const Snapshot& other) {
  for (size_t i = 0; i < reasons.size(); ++i) reasons[i] += other.reasons[i];
  std::map<std::pair<AddressSpace, uint64_t>, uint64_t> merged;
  for (const auto& list : {std::cref(addresses), std::cref(other.addresses)}) {
    for (const auto& entry : list.get()) merged[std::make_pair(entry.space, entry.address)] += entry.exits;
  }
  addresses.clear();
  for (const auto& [where, exits] : merged) addresses.push_back({where.first, where.second, exits});
  std::sort(addresses.begin(), addresses.end(), busierFirst);
  other_addresses += other.other_addresses;
}

std::vector<ExitStats::AddressCount> ExitStats::Snapshot::top(AddressSpace space, size_t n) const {
  std::vector<AddressCount> out;
  for (const auto& entry : addresses) {
    if (out.size() == n) break;
    if (entry.space == space) out.push_back(entry);
  }
  return out;
}

std::string addressStatName(const ExitStats::AddressCount& entry) {
  char name[64];
  if (entry.space == AddressSpace::Io) {
    std::snprintf(name, sizeof name, "io_exits_port_0x%" PRIx64, entry.address);
  } else {
    std::snprintf(name, sizeof name, "mmio_exits_addr_0x%" PRIx64, entry.address);
  }
  return name;
}

namespace {

void appendBlock(std::string& out, const std::string& title, const ExitStats::Snapshot& stats, size_t top) {
  char line[128];
  out += title + "\n  provider: vmm\n";
  auto row = [&](const std::string& name, uint64_t value) {
    std::snprintf(line, sizeof line, "    %s (cumulative): %" PRIu64 "\n", name.c_str(), value);
    out += line;
  };
  row("exits", stats.total());
  for (size_t i = 0; i < stats.reasons.size(); ++i) {
    if (stats.reasons[i] != 0) row(exitReasonStatName(static_cast<ExitReason>(i)), stats.reasons[i]);
  }
  for (AddressSpace space : {AddressSpace::Io, AddressSpace::Mmio}) {
    for (const auto& entry : stats.top(space, top)) row(addressStatName(entry), entry.exits);
  }
  if (stats.other_addresses != 0) row("exits_untracked_address", stats.other_addresses);
}

}  // namespace

std::string formatExitStats(const std::vector<ExitStats::Snapshot>& vcpus, size_t top) {
  std::string out;
  ExitStats::Snapshot whole;
  for (size_t i = 0; i < vcpus.size(); ++i) {
    appendBlock(out, "vcpu /machine/unattached/device[" + std::to_string(i) + "]", vcpus[i], top);
    whole.add(vcpus[i]);
  }
  appendBlock(out, "vm", whole, top);
  return out;
}

}  // namespace vmmd
