// L1 and L2 tables: lookup of guest clusters, the L2 cache, table allocation and L1 growth.
#include <algorithm>

#include "storage/endian.h"
#include "storage/qcow2_image.h"

namespace vmmd::storage::qcow2 {

Result<void> Image::loadL1() {
  auto l1 = readL1(h_.l1TableOffset, h_.l1Size);
  if (!l1) return l1.error();
  l1_ = std::move(*l1);
  return {};
}

Result<std::vector<uint64_t>*> Image::l2Table(uint64_t off) {
  auto it = l2Cache_.find(off);
  if (it != l2Cache_.end()) {
    it->second.lastUse = ++useClock_;
    return &it->second.entries;
  }
  if (off & (cs_ - 1)) return corrupt("L2 table offset " + std::to_string(off) + " is not cluster aligned");
  if (off == 0) return corrupt("L2 table overlaps the header");
  if (off + cs_ > hostEnd_) return corrupt("L2 table at offset " + std::to_string(off) + " lies outside the file");
  if (l2Cache_.size() >= l2CacheMax_) {
    auto victim = std::min_element(l2Cache_.begin(), l2Cache_.end(),
                                   [](auto& a, auto& b) { return a.second.lastUse < b.second.lastUse; });
    l2Cache_.erase(victim);
  }
  std::vector<uint8_t> raw(cs_);
  if (auto r = file_->read(off, raw); !r) return r.error();
  CachedL2 t;
  t.entries.resize(cs_ / 8);
  for (size_t i = 0; i < t.entries.size(); ++i) t.entries[i] = loadBe64(&raw[i * 8]);
  t.lastUse = ++useClock_;
  return &l2Cache_.emplace(off, std::move(t)).first->second.entries;
}

Result<void> Image::setL2Entries(uint64_t l2Offset, uint64_t first, std::span<const uint64_t> values) {
  auto it = l2Cache_.find(l2Offset);
  if (it != l2Cache_.end()) std::copy(values.begin(), values.end(), it->second.entries.begin() + first);
  std::vector<uint8_t> raw(values.size() * 8);
  for (size_t i = 0; i < values.size(); ++i) storeBe64(&raw[i * 8], values[i]);
  return file_->write(l2Offset + first * 8, raw);
}

Result<uint64_t> Image::ensureL2(uint64_t l1Index) {
  if (l1Index >= l1_.size()) return corrupt("guest offset beyond the L1 table");
  const uint64_t current = l1_[l1Index] & kOffsetMask;
  if (current && (l1_[l1Index] & kOflagCopied)) return current;
  if (current) return copyL2OnWrite(l1Index);
  auto off = allocClusters(1);
  if (!off) return off;
  std::vector<uint8_t> zero(cs_, 0);
  if (auto r = file_->write(*off, zero); !r) return r.error();
  noteAllocationWritten();
  if (auto r = syncAllocations(); !r) return r.error();  // the table and its refcount before the L1 entry
  uint8_t entry[8];
  storeBe64(entry, *off | kOflagCopied);
  if (auto r = file_->write(h_.l1TableOffset + l1Index * 8, entry); !r) return r.error();
  l1_[l1Index] = *off | kOflagCopied;
  l2Cache_[*off] = CachedL2{std::vector<uint64_t>(cs_ / 8, 0), ++useClock_};
  return *off;
}

Result<uint64_t> Image::copyL2OnWrite(uint64_t l1Index) {
  const uint64_t old = l1_[l1Index] & kOffsetMask;
  auto rc = refcount(old >> cb_);
  if (!rc) return rc.error();
  auto table = l2Table(old);
  if (!table) return table.error();
  uint8_t entry[8];
  if (*rc == 1) {
    // Only a stale bit 63 (a crash between steps of a snapshot operation): the table is ours.
    storeBe64(entry, old | kOflagCopied);
    if (auto r = file_->write(h_.l1TableOffset + l1Index * 8, entry); !r) return r.error();
    l1_[l1Index] = old | kOflagCopied;
    return old;
  }
  // Shared with a snapshot: the active disk gets its own copy. Every cluster the table reaches is
  // reached through the snapshot too (refcount >= 2), so none of the copied entries is COPIED;
  // their refcounts stay (the snapshot's path through the old table, ours through the new one).
  std::vector<uint64_t> entries = **table;
  for (auto& e : entries) e &= ~kOflagCopied;
  auto off = allocClusters(1);
  if (!off) return off;
  if (auto r = file_->write(*off, bigEndianTable(entries)); !r) return r.error();
  noteAllocationWritten();
  if (auto r = syncAllocations(); !r) return r.error();  // the copy and its refcount before the L1 entry
  storeBe64(entry, *off | kOflagCopied);
  if (auto r = file_->write(h_.l1TableOffset + l1Index * 8, entry); !r) return r.error();
  l1_[l1Index] = *off | kOflagCopied;
  l2Cache_[*off] = CachedL2{std::move(entries), ++useClock_};
  if (auto r = barrier(); !r) return r.error();  // the switched entry before the old table's refcount drops
  if (auto r = changeRefcounts(old >> cb_, 1, -1); !r) return r.error();
  return *off;
}

Result<Image::Run> Image::lookup(uint64_t offset, uint64_t maxLength, bool cachedOnly, bool* missed) {
  const uint64_t gc = offset >> cb_;
  const uint64_t l2n = 1ull << l2Bits_;
  const uint64_t l1i = gc >> l2Bits_, l2i = gc & (l2n - 1);
  const uint64_t inOff = offset & (cs_ - 1);
  const uint64_t limit = std::min(maxLength, (l2n - l2i) * cs_ - inOff);
  if (l1i >= l1_.size()) return Run{Kind::Unallocated, 0, 0, limit};
  uint64_t l2off = l1_[l1i] & kOffsetMask;
  if (l2off == 0) return Run{Kind::Unallocated, 0, 0, limit};
  const std::vector<uint64_t>* tp;
  if (cachedOnly) {
    auto it = l2Cache_.find(l2off);
    if (it == l2Cache_.end()) {
      *missed = true;
      return Run{Kind::Unallocated, 0, 0, 0};
    }
    tp = &it->second.entries;
  } else {
    auto table = l2Table(l2off);
    if (!table) return table.error();
    tp = *table;
  }
  const std::vector<uint64_t>& t = *tp;
  const uint64_t e = t[l2i];
  const Kind kind = kindOf(e);
  Run run{kind, e, 0, cs_ - inOff};
  uint64_t j = l2i + 1;
  switch (kind) {
    case Kind::Normal: {
      uint64_t host = e & kOffsetMask;
      if (host & (cs_ - 1)) return corrupt("data cluster offset " + std::to_string(host) + " is not cluster aligned");
      run.host = host + inOff;
      while (run.length < limit && j < l2n) {
        uint64_t e2 = t[j];
        if (kindOf(e2) != Kind::Normal || (e2 & kOffsetMask) != host + (j - l2i) * cs_ ||
            (e2 & kOflagCopied) != (e & kOflagCopied)) {
          break;
        }
        run.length += cs_;
        ++j;
      }
      run.length = std::min(run.length, limit);
      if (host + inOff + run.length > hostEnd_) {
        return corrupt("data cluster at offset " + std::to_string(host) + " lies outside the file");
      }
      return run;
    }
    case Kind::Compressed: break;
    case Kind::Zero:
    case Kind::Unallocated:
      while (run.length < limit && j < l2n && kindOf(t[j]) == kind) {
        run.length += cs_;
        ++j;
      }
      break;
  }
  run.length = std::min(run.length, limit);
  return run;
}

Result<void> Image::growL1(uint64_t entries) {
  if (entries * 8 > kMaxL1Bytes) return Error(path() + ": image too large: L1 table would exceed 32 MiB");
  uint64_t clusters = (entries * 8 + cs_ - 1) / cs_;
  entries = clusters * cs_ / 8;  // use the whole clusters
  if (entries * 8 > kMaxL1Bytes) entries = kMaxL1Bytes / 8;
  auto off = allocClusters(clusters);
  if (!off) return off.error();
  std::vector<uint8_t> raw(clusters * cs_, 0);
  for (size_t i = 0; i < l1_.size(); ++i) storeBe64(&raw[i * 8], l1_[i]);
  if (auto r = file_->write(*off, raw); !r) return r;
  noteAllocationWritten();
  if (auto r = syncAllocations(); !r) return r;  // the new table and its refcounts before the header
  uint8_t hdr[12];
  storeBe32(hdr, static_cast<uint32_t>(entries));
  storeBe64(hdr + 4, *off);
  if (auto r = file_->write(kOffL1Size, hdr); !r) return r;
  uint64_t oldOff = h_.l1TableOffset, oldBytes = uint64_t(h_.l1Size) * 8;
  h_.l1TableOffset = *off;
  h_.l1Size = static_cast<uint32_t>(entries);
  l1_.resize(entries, 0);
  if (!oldBytes) return {};
  if (auto r = barrier(); !r) return r;  // the switch before the old table's clusters are freed
  return changeRefcounts(oldOff >> cb_, (oldBytes + cs_ - 1) / cs_, -1);
}

}  // namespace vmmd::storage::qcow2
