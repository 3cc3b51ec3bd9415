// Internal snapshots: the snapshot table, create, apply and delete (docs/interop/qcow2.txt,
// "Snapshots"). A refcount counts every path to a cluster: an L2 table once per L1 table naming
// it, a data cluster once per L1 table that reaches it. Bit 63 (COPIED) of an active L1 or L2
// entry says the refcount is exactly 1, i.e. the guest may write in place; shared tables and
// clusters are copied on write (ensureL2 and writeLocked).
//
// Order, for a kill or power loss at any point (a barrier between each step):
//   create: snapshot's L1 copy and raised refcounts -> COPIED cleared in the active tables ->
//           new snapshot table -> header (count and offset in one write) -> old table freed
//   apply:  refcounts of the snapshot's tree raised -> active L1 overwritten (one write) ->
//           refcounts of the old tree lowered -> COPIED rebuilt from the refcounts
//   delete: new table -> header -> COPIED set where the refcount will be 1 -> refcounts lowered
// Each step before the header leaves the old table and at worst leaked clusters; each after, the
// new one. A COPIED bit is set only where the snapshot's reference is already gone from the table,
// so no surviving snapshot's cluster is ever written in place.
#include <algorithm>
#include <cerrno>
#include <ctime>
#include <unordered_set>

#include "storage/endian.h"
#include "storage/qcow2_image.h"

namespace vmmd::storage {

int findSnapshot(const std::vector<qcow2::SnapshotEntry>& list, const std::string& id, const std::string& name) {
  if (id.empty() && name.empty()) return -1;
  for (size_t i = 0; i < list.size(); ++i) {
    if ((id.empty() || list[i].id == id) && (name.empty() || list[i].name == name)) return static_cast<int>(i);
  }
  return -1;
}

int findSnapshotByIdOrName(const std::vector<qcow2::SnapshotEntry>& list, const std::string& tag) {
  int i = findSnapshot(list, tag, "");
  return i >= 0 ? i : findSnapshot(list, "", tag);
}

}  // namespace vmmd::storage

namespace vmmd::storage::qcow2 {

constexpr uint64_t kOffSnapshots = 60;  // nb_snapshots u32, then snapshots_offset u64

Result<std::vector<uint64_t>> Image::readL1(uint64_t offset, uint32_t entries) {
  std::vector<uint8_t> raw(uint64_t(entries) * 8);
  if (auto r = file_->read(offset, raw); !r) return r.error();
  std::vector<uint64_t> l1(entries);
  for (size_t i = 0; i < l1.size(); ++i) l1[i] = loadBe64(&raw[i * 8]);
  return l1;
}

Result<void> Image::loadSnapshots() {
  if (h_.nbSnapshots == 0) return {};
  auto fsize = file_->size();
  if (!fsize) return fsize.error();
  const std::string bad = path() + ": invalid qcow2 image: snapshot table ";
  if (h_.snapshotsOffset == 0 || h_.snapshotsOffset >= *fsize) return Error(bad + "lies outside the file");
  // The entries' sizes are only known while reading them: read what may hold them (at most
  // QEMU's limit on the table), then parse.
  const uint64_t avail = std::min<uint64_t>(*fsize - h_.snapshotsOffset, kMaxSnapshotTableBytes);
  std::vector<uint8_t> raw(avail);
  if (auto r = file_->read(h_.snapshotsOffset, raw); !r) return r;
  uint64_t tableBytes = 0;
  auto list = parseSnapshotTable(raw, h_.nbSnapshots, h_, *fsize, path(), &tableBytes);
  if (!list) return list.error();
  auto overlaps = [](uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) { return a < b + blen && b < a + alen; };
  const uint64_t l1Bytes = uint64_t(h_.l1Size) * 8, refBytes = uint64_t(h_.refcountTableClusters) * cs_;
  if (overlaps(h_.snapshotsOffset, tableBytes, 0, cs_) || overlaps(h_.snapshotsOffset, tableBytes, h_.l1TableOffset, l1Bytes) ||
      overlaps(h_.snapshotsOffset, tableBytes, h_.refcountTableOffset, refBytes)) {
    return Error(bad + "overlaps the header, the L1 table or the refcount table");
  }
  // Every snapshot has an L1 table of its own clusters: together they fit in the file. (Bounds
  // the work of walking them: a hostile table cannot name one huge L1 table 65536 times.)
  uint64_t l1Total = 0;
  for (const auto& e : *list) l1Total += (uint64_t(e.l1Size) * 8 + cs_ - 1) & ~(cs_ - 1);
  if (l1Total > *fsize) return Error(bad + "names L1 tables larger together than the file");
  for (size_t i = 0; i < list->size(); ++i) {
    const auto& e = (*list)[i];
    const uint64_t bytes = uint64_t(e.l1Size) * 8;
    if (overlaps(e.l1Offset, bytes, h_.l1TableOffset, l1Bytes) || overlaps(e.l1Offset, bytes, h_.refcountTableOffset, refBytes) ||
        overlaps(e.l1Offset, bytes, h_.snapshotsOffset, tableBytes)) {
      return Error(path() + ": invalid qcow2 image: snapshot " + std::to_string(i) +
                   ": L1 table overlaps the active L1, refcount or snapshot table");
    }
  }
  snapshots_ = std::move(*list);
  snapshotTableBytes_ = tableBytes;
  return {};
}

Result<std::vector<uint64_t>> Image::referencedClusters(std::span<const uint64_t> l1) {
  std::vector<uint64_t> out;
  const uint64_t l2n = 1ull << l2Bits_;
  auto inside = [&](uint64_t off, uint64_t len) { return off + len <= hostEnd_; };
  // A sound L1 table names each L2 table once; a hostile one naming one table a million times
  // would make this list grow without bound.
  std::unordered_set<uint64_t> seen;
  for (uint64_t i = 0; i < l1.size(); ++i) {
    const uint64_t l2off = l1[i] & kOffsetMask;
    if (!l2off) continue;
    if ((l2off & (cs_ - 1)) || !inside(l2off, cs_)) {
      return corrupt("L2 table at offset " + std::to_string(l2off) + " is misaligned or outside the file");
    }
    if (!seen.insert(l2off).second) {
      return corrupt("L2 table at offset " + std::to_string(l2off) + " is named twice in one L1 table");
    }
    out.push_back(l2off >> cb_);
    auto table = l2Table(l2off);
    if (!table) return table.error();
    for (uint64_t j = 0; j < l2n; ++j) {
      const uint64_t e = (**table)[j];
      switch (kindOf(e)) {
        case Kind::Unallocated: break;
        case Kind::Zero:
        case Kind::Normal: {
          const uint64_t host = e & kOffsetMask;
          if (!host) break;
          if ((host & (cs_ - 1)) || !inside(host, cs_)) {
            return corrupt("data cluster at offset " + std::to_string(host) + " is misaligned or outside the file");
          }
          out.push_back(host >> cb_);
          break;
        }
        case Kind::Compressed: {
          uint64_t off, len;
          compressedExtent(e, &off, &len);
          const uint64_t first = (off & ~511ull) >> cb_, last = ((off & ~511ull) + len - 1) >> cb_;
          if (!inside(first << cb_, (last - first + 1) << cb_)) {
            return corrupt("compressed cluster at offset " + std::to_string(off) + " lies outside the file");
          }
          for (uint64_t c = first; c <= last; ++c) out.push_back(c);
          break;
        }
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<void> Image::refcountsFit(std::span<const uint64_t> sorted) {
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    while (j < sorted.size() && sorted[j] == sorted[i]) ++j;
    auto rc = refcount(sorted[i]);
    if (!rc) return rc.error();
    if (*rc + (j - i) > refMax_) {
      return Error(path() + ": the refcount of cluster " + std::to_string(sorted[i]) + " would exceed " +
                   std::to_string(refMax_) + " (refcount_bits=" + std::to_string(refBits_) +
                   "); convert the image with a larger refcount_bits for more snapshots",
                   EOVERFLOW);
    }
    i = j;
  }
  return {};
}

Result<void> Image::changeRefcountsOf(std::span<const uint64_t> sorted, int64_t delta) {
  // A cluster reached n times changes by n * delta; runs of neighbours with the same n change at once.
  uint64_t runStart = 0, runLen = 0;
  int64_t runDelta = 0;
  for (size_t i = 0; i <= sorted.size();) {
    size_t j = i;
    while (j < sorted.size() && sorted[j] == sorted[i]) ++j;
    const bool more = i < sorted.size();
    const int64_t d = more ? delta * static_cast<int64_t>(j - i) : 0;
    if (more && runLen && sorted[i] == runStart + runLen && d == runDelta) {
      ++runLen;
    } else {
      if (runLen) {
        if (auto r = changeRefcounts(runStart, runLen, runDelta); !r) return r;
      }
      if (more) {
        runStart = sorted[i];
        runLen = 1;
        runDelta = d;
      }
    }
    if (!more) break;
    i = j;
  }
  return {};
}

Result<void> Image::rewriteCopiedFlags(const std::function<Result<bool>(uint64_t cluster)>& copied) {
  auto flagged = [&](uint64_t entry, uint64_t cluster) -> Result<uint64_t> {
    auto c = copied(cluster);
    if (!c) return c.error();
    return *c ? entry | kOflagCopied : entry & ~kOflagCopied;
  };
  std::vector<uint64_t> newL1 = l1_;
  for (uint64_t i = 0; i < newL1.size(); ++i) {
    const uint64_t l2off = l1_[i] & kOffsetMask;
    if (!l2off) continue;
    auto e = flagged(l1_[i], l2off >> cb_);
    if (!e) return e.error();
    newL1[i] = *e;
    auto table = l2Table(l2off);
    if (!table) return table.error();
    std::vector<uint64_t> entries = **table;
    for (auto& entry : entries) {
      const Kind k = kindOf(entry);
      if ((k != Kind::Normal && k != Kind::Zero) || !(entry & kOffsetMask)) continue;
      auto f = flagged(entry, (entry & kOffsetMask) >> cb_);
      if (!f) return f.error();
      entry = *f;
    }
    if (entries != **table) {
      if (auto r = setL2Entries(l2off, 0, entries); !r) return r;
    }
  }
  if (newL1 != l1_) {
    if (auto r = file_->write(h_.l1TableOffset, bigEndianTable(newL1)); !r) return r;
    l1_ = std::move(newL1);
  }
  return {};
}

Result<void> Image::writeSnapshotTable(std::vector<SnapshotEntry> entries) {
  const std::vector<uint8_t> table = serializeSnapshotTable(entries);
  if (table.size() > kMaxSnapshotTableBytes) return Error(path() + ": the snapshot table would exceed 64 MiB");
  uint64_t offset = 0;
  if (!table.empty()) {
    const uint64_t clusters = (table.size() + cs_ - 1) >> cb_;
    auto at = allocClusters(clusters);
    if (!at) return at.error();
    std::vector<uint8_t> padded(clusters << cb_, 0);
    std::copy(table.begin(), table.end(), padded.begin());
    if (auto r = file_->write(*at, padded); !r) return r;
    noteAllocationWritten();
    offset = *at;
  }
  if (auto r = syncAllocations(); !r) return r;  // the table (and all before it) before the header names it
  uint8_t hdr[12];
  storeBe32(hdr, static_cast<uint32_t>(entries.size()));
  storeBe64(hdr + 4, offset);
  if (auto r = file_->write(kOffSnapshots, hdr); !r) return r;
  if (auto r = barrier(); !r) return r;  // the switch before the old table's clusters are freed
  const uint64_t oldOffset = h_.snapshotsOffset, oldBytes = snapshotTableBytes_;
  h_.nbSnapshots = static_cast<uint32_t>(entries.size());
  h_.snapshotsOffset = offset;
  snapshots_ = std::move(entries);
  snapshotTableBytes_ = table.size();
  if (oldBytes && oldOffset) return changeRefcounts(oldOffset >> cb_, (oldBytes + cs_ - 1) >> cb_, -1);
  return {};
}

std::vector<SnapshotEntry> Image::snapshots() const {
  std::shared_lock meta(meta_);
  return snapshots_;
}

Result<SnapshotEntry> Image::createSnapshot(const SnapshotRequest& request) {
  if (auto r = writable(); !r) return r.error();
  std::unique_lock io(io_);
  std::lock_guard meta(meta_);
  auto r = createSnapshotLocked(request);
  l2Cache_.clear();
  if (!r) (void)noteCorruption(Result<void>(r.error()));
  return r;
}

Result<SnapshotEntry> Image::createSnapshotLocked(const SnapshotRequest& request) {
  if (snapshots_.size() >= kMaxSnapshots) return Error(path() + ": too many snapshots (at most 65536)");
  if (request.name.size() > 0xffff || request.id.size() > 0xffff) return Error(path() + ": snapshot name or id too long");
  SnapshotEntry e;
  e.name = request.name;
  e.id = request.id;
  if (e.id.empty()) {
    // As QEMU: one more than the largest numeric id.
    unsigned long long top = 0;
    for (const auto& s : snapshots_) top = std::max(top, std::strtoull(s.id.c_str(), nullptr, 10));
    e.id = std::to_string(top + 1);
  }
  if (findSnapshot(snapshots_, e.id, "") >= 0) return Error(path() + ": a snapshot with id '" + e.id + "' exists", EEXIST);
  if (request.dateSec) {
    e.dateSec = request.dateSec;
    e.dateNsec = request.dateNsec;
  } else {
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    e.dateSec = static_cast<uint32_t>(now.tv_sec);
    e.dateNsec = static_cast<uint32_t>(now.tv_nsec);
  }
  e.vmClockNsec = request.vmClockNsec;
  e.vmStateSize = request.vmStateSize;
  e.icount = request.icount;
  e.diskSize = size_;
  e.l1Size = static_cast<uint32_t>(l1_.size());

  auto refs = referencedClusters(l1_);
  if (!refs) return refs.error();
  if (auto r = refcountsFit(*refs); !r) return r.error();
  // 1. The snapshot's L1 table (bit 63 means nothing in an inactive table: cleared) and the
  //    refcounts of everything it reaches.
  if (e.l1Size) {
    const uint64_t clusters = (uint64_t(e.l1Size) * 8 + cs_ - 1) >> cb_;
    auto at = allocClusters(clusters);
    if (!at) return at.error();
    std::vector<uint64_t> copy = l1_;
    for (auto& entry : copy) entry &= ~kOflagCopied;
    if (auto r = file_->write(*at, bigEndianTable(copy, clusters << cb_)); !r) return r.error();
    noteAllocationWritten();
    e.l1Offset = *at;
  }
  if (auto r = changeRefcountsOf(*refs, +1); !r) return r.error();
  if (auto r = syncAllocations(); !r) return r.error();
  // 2. Everything the active disk reaches is now shared: no entry may be written in place.
  if (auto r = rewriteCopiedFlags([](uint64_t) -> Result<bool> { return false; }); !r) return r.error();
  if (auto r = barrier(); !r) return r.error();
  // 3. The table with the new entry, then the header.
  std::vector<SnapshotEntry> list = snapshots_;
  list.push_back(e);
  if (auto r = writeSnapshotTable(std::move(list)); !r) return r.error();
  return e;
}

Result<void> Image::applySnapshot(const std::string& id) {
  if (auto r = writable(); !r) return r.error();
  std::unique_lock io(io_);
  std::lock_guard meta(meta_);
  int i = findSnapshot(snapshots_, id, "");
  if (i < 0) return Error(path() + ": no snapshot with id '" + id + "'", ENOENT);
  auto r = applySnapshotLocked(snapshots_[i]);
  l2Cache_.clear();
  return noteCorruption(r);
}

Result<void> Image::applySnapshotLocked(const SnapshotEntry& sn) {
  const uint64_t needed = std::max<uint64_t>(sn.l1Size, l1EntriesFor(sn.diskSize, cb_));
  if (needed > l1_.size()) {
    if (auto r = growL1(needed); !r) return r;
  }
  auto snL1 = readL1(sn.l1Offset, sn.l1Size);
  if (!snL1) return snL1.error();
  std::vector<uint64_t> newL1(l1_.size(), 0);
  for (size_t i = 0; i < snL1->size(); ++i) newL1[i] = (*snL1)[i] & ~kOflagCopied;
  auto newRefs = referencedClusters(newL1);
  if (!newRefs) return newRefs.error();
  auto oldRefs = referencedClusters(l1_);
  if (!oldRefs) return oldRefs.error();
  if (auto r = refcountsFit(*newRefs); !r) return r;
  // 1. What the snapshot reaches gains the active table's reference first.
  if (auto r = changeRefcountsOf(*newRefs, +1); !r) return r;
  if (auto r = syncAllocations(); !r) return r;
  // 2. The switch: the active L1 table in one write (every entry shared, so none marked COPIED),
  //    and the snapshot's disk size.
  if (auto r = file_->write(h_.l1TableOffset, bigEndianTable(newL1)); !r) return r;
  l1_ = newL1;
  if (sn.diskSize != size_) {
    uint8_t v[8];
    storeBe64(v, sn.diskSize);
    if (auto r = file_->write(kOffSize, v); !r) return r;
    size_ = sn.diskSize;
    h_.size = sn.diskSize;
  }
  if (auto r = barrier(); !r) return r;
  // 3. The old active disk's clusters lose that reference; then bit 63 is rebuilt from the
  //    refcounts, as the spec asks after loading a snapshot.
  if (auto r = changeRefcountsOf(*oldRefs, -1); !r) return r;
  l2Cache_.clear();
  return rewriteCopiedFlags([this](uint64_t cluster) -> Result<bool> {
    auto rc = refcount(cluster);
    if (!rc) return rc.error();
    return *rc == 1;
  });
}

Result<SnapshotEntry> Image::deleteSnapshot(const std::string& id, const std::string& name) {
  if (auto r = writable(); !r) return r.error();
  std::unique_lock io(io_);
  std::lock_guard meta(meta_);
  int i = findSnapshot(snapshots_, id, name);
  if (i < 0) return Error(path() + ": snapshot not found", ENOENT);
  auto r = deleteSnapshotLocked(static_cast<size_t>(i));
  l2Cache_.clear();
  if (!r) (void)noteCorruption(Result<void>(r.error()));
  return r;
}

Result<SnapshotEntry> Image::deleteSnapshotLocked(size_t index) {
  const SnapshotEntry sn = snapshots_[index];
  auto snL1 = readL1(sn.l1Offset, sn.l1Size);
  if (!snL1) return snL1.error();
  auto refs = referencedClusters(*snL1);
  if (!refs) return refs.error();
  // 1. The table without it, then the header: from here on its references are leaks.
  std::vector<SnapshotEntry> list = snapshots_;
  list.erase(list.begin() + static_cast<std::ptrdiff_t>(index));
  if (auto r = writeSnapshotTable(std::move(list)); !r) return r.error();
  // 2. Bit 63 where the active disk will be the only user once the refcounts drop.
  const std::vector<uint64_t>& dropped = *refs;
  if (auto r = rewriteCopiedFlags([&](uint64_t cluster) -> Result<bool> {
        auto rc = refcount(cluster);
        if (!rc) return rc.error();
        auto range = std::equal_range(dropped.begin(), dropped.end(), cluster);
        return *rc - std::min<uint64_t>(*rc, uint64_t(range.second - range.first)) == 1;
      });
      !r) {
    return r.error();
  }
  if (auto r = barrier(); !r) return r.error();
  // 3. The references go, and the snapshot's L1 table.
  if (auto r = changeRefcountsOf(dropped, -1); !r) return r.error();
  if (sn.l1Size) {
    if (auto r = changeRefcounts(sn.l1Offset >> cb_, (uint64_t(sn.l1Size) * 8 + cs_ - 1) >> cb_, -1); !r) return r.error();
  }
  return sn;
}

}  // namespace vmmd::storage::qcow2
