// The MSI-X table and pending-bit array of one PCI function (PCI Local Bus 3.0, section 6.8.2):
// each vector's message address, data and mask bit as the driver programs them through the BAR,
// a pending bit for a vector fired while masked, and the capability's enable and function-mask
// bits. Delivery stays with the owner: fire() and unmasked() say when to signal a vector.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "vmm/devices/device_state.h"

namespace vmmd {

class MsixTable {
 public:
  static constexpr uint64_t kEntrySize = 16;  // address (8), data (4), vector control (4)
  struct Entry {
    uint64_t address = 0;
    uint32_t data = 0;
    bool masked = true;
    bool pending = false;
  };

  explicit MsixTable(size_t vectors) : entries_(vectors) {}

  size_t size() const { return entries_.size(); }
  const Entry& entry(size_t vector) const { return entries_[vector]; }
  uint64_t tableBytes() const { return kEntrySize * entries_.size(); }
  uint64_t pbaBytes() const { return 8 * ((entries_.size() + 63) / 64); }  // 64 bits to a qword

  // Accesses at `offset` from the table's / PBA's start, below tableBytes() / pbaBytes(); an
  // access stays within one entry / qword (what does not fit reads as zero, is not written).
  void readTable(uint64_t offset, std::span<uint8_t> data) const;
  // Returns the vector whose entry was written: its route may have changed.
  size_t writeTable(uint64_t offset, std::span<const uint8_t> data);
  void readPba(uint64_t offset, std::span<uint8_t> data) const;

  // The capability's Message Control bits, as config space holds them.
  void setControl(bool enabled, bool function_masked);
  // The vector fired: true when it is to be signalled now, else it is left pending. Vectors past
  // the table (NO_VECTOR) are never signalled.
  bool fire(size_t vector);
  // After any change that may unmask `vector`: true (pending bit cleared) when a pending message
  // is to be signalled now.
  bool takePending(size_t vector);
  // Function reset: every entry zero and masked, nothing pending (Message Control stays: config space's).
  void reset();

  void save(StateWriter& out) const;
  // Restores entries and pending bits; a state for another table size is rejected.
  void load(StateReader& in);

 private:
  bool deliverable(const Entry& entry) const { return enabled_ && !function_masked_ && !entry.masked; }
  static void pack(const Entry& entry, uint8_t (&raw)[kEntrySize]);

  std::vector<Entry> entries_;
  bool enabled_ = false;
  bool function_masked_ = false;
};

}  // namespace vmmd
