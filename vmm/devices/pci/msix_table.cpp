#include "vmm/devices/pci/msix_table.h"

#include <algorithm>
#include <cstring>

namespace vmmd {

void MsixTable::pack(const Entry& entry, uint8_t (&raw)[kEntrySize]) {
  uint32_t control = entry.masked ? 1 : 0;
  std::memcpy(raw, &entry.address, 8);
  std::memcpy(raw + 8, &entry.data, 4);
  std::memcpy(raw + 12, &control, 4);
}

void MsixTable::readTable(uint64_t offset, std::span<uint8_t> data) const {
  std::fill(data.begin(), data.end(), 0);
  size_t vector = offset / kEntrySize, at = offset % kEntrySize;
  if (vector >= entries_.size() || data.empty()) return;
  uint8_t raw[kEntrySize];
  pack(entries_[vector], raw);
  std::memcpy(data.data(), raw + at, std::min<size_t>(data.size(), kEntrySize - at));
}

size_t MsixTable::writeTable(uint64_t offset, std::span<const uint8_t> data) {
  size_t vector = offset / kEntrySize, at = offset % kEntrySize;
  if (vector >= entries_.size() || data.empty()) return vector;
  Entry& entry = entries_[vector];
  uint8_t raw[kEntrySize];
  pack(entry, raw);
  std::memcpy(raw + at, data.data(), std::min<size_t>(data.size(), kEntrySize - at));
  uint32_t control;
  std::memcpy(&entry.address, raw, 8);
  std::memcpy(&entry.data, raw + 8, 4);
  std::memcpy(&control, raw + 12, 4);
  entry.masked = control & 1;
  return vector;
}

void MsixTable::readPba(uint64_t offset, std::span<uint8_t> data) const {
  std::fill(data.begin(), data.end(), 0);
  if (data.empty()) return;
  size_t qword = offset / 8, at = offset % 8;
  uint64_t pending = 0;
  for (size_t bit = 0; bit < 64 && qword * 64 + bit < entries_.size(); ++bit) {
    pending |= uint64_t{entries_[qword * 64 + bit].pending} << bit;
  }
  std::memcpy(data.data(), reinterpret_cast<const uint8_t*>(&pending) + at, std::min<size_t>(data.size(), 8 - at));
}

void MsixTable::setControl(bool enabled, bool function_masked) {
  enabled_ = enabled;
  function_masked_ = function_masked;
}

bool MsixTable::fire(size_t vector) {
  if (vector >= entries_.size()) return false;
  Entry& entry = entries_[vector];
  if (deliverable(entry)) return true;
  entry.pending = true;  // delivered once unmasked (INTx is not offered)
  return false;
}

bool MsixTable::takePending(size_t vector) {
  if (vector >= entries_.size()) return false;
  Entry& entry = entries_[vector];
  if (!entry.pending || !deliverable(entry)) return false;
  entry.pending = false;
  return true;
}

void MsixTable::reset() { std::fill(entries_.begin(), entries_.end(), Entry{}); }

void MsixTable::save(StateWriter& out) const {
  out.u32(static_cast<uint32_t>(entries_.size()));
  for (const auto& entry : entries_) {
    out.u64(entry.address);
    out.u32(entry.data);
    out.boolean(entry.masked);
    out.boolean(entry.pending);
  }
}

void MsixTable::load(StateReader& in) {
  uint32_t count = in.u32();
  if (count != entries_.size()) {
    in.reject("MSI-X table of " + std::to_string(count) + " vectors, this function has " + std::to_string(entries_.size()));
    return;
  }
  for (auto& entry : entries_) {
    entry.address = in.u64();
    entry.data = in.u32();
    entry.masked = in.boolean();
    entry.pending = in.boolean();
  }
}

}  // namespace vmmd
