// VM-exit counters of one vCPU: by exit reason and by port / MMIO address.
//
// Written only by the vCPU's own thread, on every exit that reaches userspace; read at any time
// by the monitor (QMP query-stats) and at exit (VMM_EXIT_STATS). The writer uses relaxed loads
// and stores (no lock, no locked read-modify-write), so counting costs a few instructions per
// exit; a reader may see a count some exits old, never a torn one.
//
// Addresses go into a fixed open-addressing table (no allocation in the exit path); a guest that
// touches more distinct ports/addresses than it holds gets them counted as "other".
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace vmmd {

// Why KVM_RUN returned to userspace (KVM_EXIT_*), the ones a PC guest produces.
enum class ExitReason : uint8_t { Io, Mmio, Hlt, Intr, Shutdown, SystemEvent, InternalError, FailEntry, Other, kCount };

// The name of a reason's counter, after KVM's own statistics ("io_exits", "mmio_exits", ...).
const char* exitReasonStatName(ExitReason reason);

enum class AddressSpace : uint8_t { Io, Mmio };

class ExitStats {
 public:
  static constexpr size_t kAddressSlots = 512;

  void count(ExitReason reason) { bump(reasons_[static_cast<size_t>(reason)]); }
  // An IN/OUT exit at `port` (a string instruction's repeats are one exit).
  void countIo(uint16_t port) {
    count(ExitReason::Io);
    countAddress(AddressSpace::Io, port);
  }
  void countMmio(uint64_t address) {
    count(ExitReason::Mmio);
    countAddress(AddressSpace::Mmio, address);
  }

  struct AddressCount {
    AddressSpace space;
    uint64_t address;
    uint64_t exits;
  };
  struct Snapshot {
    std::array<uint64_t, static_cast<size_t>(ExitReason::kCount)> reasons{};
    std::vector<AddressCount> addresses;  // most exits first, then by space and address
    uint64_t other_addresses = 0;         // exits at addresses the table had no room for

    uint64_t total() const;
    // Adds another vCPU's counts (addresses merged, order kept).
    void add(const Snapshot& other);
    // The `n` busiest addresses of one space.
    std::vector<AddressCount> top(AddressSpace space, size_t n) const;
  };
  Snapshot snapshot() const;

 private:
  static void bump(std::atomic<uint64_t>& counter) {
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void countAddress(AddressSpace space, uint64_t address);

  std::array<std::atomic<uint64_t>, static_cast<size_t>(ExitReason::kCount)> reasons_{};
  // key = (address << 1 | space) + 1; 0 = empty. Published with release after its count is 0.
  std::array<std::atomic<uint64_t>, kAddressSlots> keys_{};
  std::array<std::atomic<uint64_t>, kAddressSlots> counts_{};
  std::atomic<uint64_t> other_addresses_{0};
};

// "io_exits_port_0x3f8" / "mmio_exits_addr_0xfee00000": one address's counter name in query-stats.
std::string addressStatName(const ExitStats::AddressCount& entry);

// QEMU's HMP `info stats` shape, one block per vCPU and one for the whole VM (`top` addresses per
// space): what VMM_EXIT_STATS=FILE gets when the worker exits.
std::string formatExitStats(const std::vector<ExitStats::Snapshot>& vcpus, size_t top);

}  // namespace vmmd
