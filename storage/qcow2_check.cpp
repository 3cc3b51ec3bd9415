// Consistency check: recount every reference the tables make and compare with the refcounts.
#include <algorithm>
#include <cstdio>
#include <unordered_set>

#include "storage/endian.h"
#include "storage/qcow2_image.h"

namespace vmmd::storage::qcow2 {

Result<CheckResult> Image::check(RepairMode repair) {
  if (repair != RepairMode::None && readOnly()) return Error(path() + ": repairing needs a writable image");
  std::unique_lock io(io_);
  std::lock_guard meta(meta_);
  if (!readOnly()) {
    if (auto r = releasePool(); !r) return r.error();
  }
  CheckResult res;
  auto fsize = file_->size();
  if (!fsize) return fsize.error();
  const uint64_t nClusters = (*fsize + cs_ - 1) >> cb_;
  std::vector<uint32_t> refs(nClusters, 0);
  char msg[256];
  auto say = [&](const char* fmt, auto... args) {
    std::snprintf(msg, sizeof msg, fmt, args...);
    res.messages.emplace_back(msg);
  };
  auto add = [&](uint64_t off, uint64_t len, const char* what) {
    if (len == 0) return;
    uint64_t first = off >> cb_, last = (off + len - 1) >> cb_;
    if (last >= nClusters) {
      say("ERROR %s at offset 0x%llx lies beyond the end of the image file", what, (unsigned long long)off);
      ++res.corruptions;
      return;
    }
    for (uint64_t c = first; c <= last; ++c) ++refs[c];
  };
  add(0, cs_, "header");
  add(h_.l1TableOffset, uint64_t(h_.l1Size) * 8, "L1 table");
  add(h_.refcountTableOffset, uint64_t(h_.refcountTableClusters) * cs_, "refcount table");
  for (uint64_t b = 0; b < refTable_.size(); ++b) {
    uint64_t off = refTable_[b];
    if (!off) continue;
    if (off & (cs_ - 1)) {
      say("ERROR refcount block %llu is not cluster aligned", (unsigned long long)b);
      ++res.corruptions;
      continue;
    }
    add(off, cs_, "refcount block");
  }
  const uint64_t l2n = 1ull << l2Bits_;
  uint64_t prevHost = 0;
  std::vector<uint8_t> raw(cs_);
  // Every L1 table counts its L2 tables and what they reach once (a refcount counts paths: a
  // cluster shared by the active disk and a snapshot has refcount 2). Statistics are the active
  // disk's.
  auto walk = [&](std::span<const uint64_t> l1, bool active) -> Result<void> {
    std::unordered_set<uint64_t> seenL2;
    for (uint64_t i = 0; i < l1.size(); ++i) {
      uint64_t l2off = l1[i] & kOffsetMask;
      if (!l2off) continue;
      if (l2off & (cs_ - 1)) {
        say("ERROR L2 table %llu at offset 0x%llx is not cluster aligned", (unsigned long long)i, (unsigned long long)l2off);
        ++res.corruptions;
        continue;
      }
      add(l2off, cs_, "L2 table");
      if (l2off + cs_ > *fsize) continue;
      if (!seenL2.insert(l2off).second) continue;  // shared within one table: its refcount mismatch says enough
      if (auto r = file_->read(l2off, raw); !r) return r;
      for (uint64_t j = 0; j < l2n; ++j) {
        uint64_t e = loadBe64(&raw[j * 8]);
        switch (kindOf(e)) {
          case Kind::Unallocated: break;
          case Kind::Zero:
            if (e & kOffsetMask) {
              add(e & kOffsetMask, cs_, "data cluster");
              if (active) ++res.allocatedClusters;
            }
            break;
          case Kind::Normal: {
            uint64_t host = e & kOffsetMask;
            if (host & (cs_ - 1)) {
              say("ERROR offset=%llx: cluster is not properly aligned; L2 entry corrupted", (unsigned long long)host);
              ++res.corruptions;
              break;
            }
            add(host, cs_, "data cluster");
            if (!active) break;
            ++res.allocatedClusters;
            if (prevHost && host != prevHost + cs_) ++res.fragmentedClusters;
            prevHost = host;
            break;
          }
          case Kind::Compressed: {
            uint64_t off, len;
            compressedExtent(e, &off, &len);
            add(off & ~511ull, len + (off & 511), "compressed cluster");
            if (!active) break;
            ++res.allocatedClusters;
            ++res.compressedClusters;
            break;
          }
        }
      }
    }
    return {};
  };
  if (auto r = walk(l1_, true); !r) return r.error();
  if (!snapshots_.empty()) add(h_.snapshotsOffset, snapshotTableBytes_, "snapshot table");
  for (const auto& sn : snapshots_) {
    add(sn.l1Offset, uint64_t(sn.l1Size) * 8, "snapshot L1 table");
    auto l1 = readL1(sn.l1Offset, sn.l1Size);
    if (!l1) return l1.error();
    if (auto r = walk(*l1, false); !r) return r.error();
  }
  res.totalClusters = (size_ + cs_ - 1) >> cb_;
  for (uint64_t c = 0; c < nClusters; ++c) {
    auto rc = refcount(c);
    uint64_t stored = 0;
    if (!rc) {
      say("ERROR cannot read the refcount of cluster %llu: %s", (unsigned long long)c, rc.error().message().c_str());
      ++res.corruptions;
      continue;
    }
    stored = *rc;
    uint64_t expected = refs[c];
    if (stored == expected) continue;
    bool isLeak = stored > expected;
    bool fix = repair == RepairMode::All || (isLeak && repair == RepairMode::Leaks);
    if (fix) {
      auto r = setRefcount(c, expected);
      if (!r) {
        say("ERROR could not repair cluster %llu: %s", (unsigned long long)c, r.error().message().c_str());
        fix = false;
      }
    }
    say("%s cluster %llu refcount=%llu reference=%llu", fix ? "Repairing" : isLeak ? "Leaked" : "ERROR",
        (unsigned long long)c, (unsigned long long)stored, (unsigned long long)expected);
    if (fix) {
      ++(isLeak ? res.leaksFixed : res.corruptionsFixed);
      if (expected == 0) freeHint_ = std::min(freeHint_, c);
    } else {
      ++(isLeak ? res.leaks : res.corruptions);
    }
  }
  // Bit 63 of the active tables must say whether the refcount (as it is now, after repairs) is 1.
  if (auto r = checkCopiedFlags(res, repair == RepairMode::All); !r) return r.error();
  for (uint64_t c = nClusters; c-- > 0;) {
    if (refs[c]) {
      res.imageEndOffset = (c + 1) << cb_;
      break;
    }
  }
  const uint64_t clearable = kIncompatDirty | kIncompatCorrupt;
  if (repair == RepairMode::All && (h_.incompatible & clearable) && res.corruptions == 0) {
    uint8_t v[8];
    storeBe64(v, h_.incompatible & ~clearable);
    if (auto r = file_->write(kOffIncompatible, v); !r) return r.error();
    h_.incompatible &= ~clearable;
    markedCorrupt_ = false;
  }
  if (res.leaksFixed || res.corruptionsFixed) {
    if (auto r = file_->sync(); !r) return r.error();
  }
  return res;
}

}  // namespace vmmd::storage::qcow2

namespace vmmd::storage::qcow2 {

Result<void> Image::checkCopiedFlags(CheckResult& res, bool fix) {
  char msg[160];
  l2Cache_.clear();
  for (uint64_t i = 0; i < l1_.size(); ++i) {
    const uint64_t l2off = l1_[i] & kOffsetMask;
    if (!l2off || (l2off & (cs_ - 1)) || l2off + cs_ > hostEnd_) continue;
    auto rc = refcount(l2off >> cb_);
    if (!rc) continue;  // reported above
    if ((*rc == 1) != ((l1_[i] & kOflagCopied) != 0)) {
      std::snprintf(msg, sizeof msg, "%s OFLAG_COPIED L2 cluster: l1_index=%llu l1_entry=%llx refcount=%llu",
                    fix ? "Repairing" : "ERROR", (unsigned long long)i, (unsigned long long)l1_[i], (unsigned long long)*rc);
      res.messages.emplace_back(msg);
      if (fix) {
        uint8_t entry[8];
        const uint64_t v = *rc == 1 ? l1_[i] | kOflagCopied : l1_[i] & ~kOflagCopied;
        storeBe64(entry, v);
        if (auto r = file_->write(h_.l1TableOffset + i * 8, entry); !r) return r;
        l1_[i] = v;
        ++res.corruptionsFixed;
      } else {
        ++res.corruptions;
      }
    }
    auto table = l2Table(l2off);
    if (!table) continue;
    std::vector<uint64_t> entries = **table;
    bool changed = false;
    for (auto& e : entries) {
      const Kind k = kindOf(e);
      const uint64_t host = e & kOffsetMask;
      if ((k != Kind::Normal && k != Kind::Zero) || !host || (host & (cs_ - 1))) continue;
      auto drc = refcount(host >> cb_);
      if (!drc || (*drc == 1) == ((e & kOflagCopied) != 0)) continue;
      std::snprintf(msg, sizeof msg, "%s OFLAG_COPIED data cluster: l2_entry=%llx refcount=%llu", fix ? "Repairing" : "ERROR",
                    (unsigned long long)e, (unsigned long long)*drc);
      res.messages.emplace_back(msg);
      if (fix) {
        e = *drc == 1 ? e | kOflagCopied : e & ~kOflagCopied;
        changed = true;
        ++res.corruptionsFixed;
      } else {
        ++res.corruptions;
      }
    }
    if (changed) {
      if (auto r = setL2Entries(l2off, 0, entries); !r) return r;
    }
  }
  return {};
}

}  // namespace vmmd::storage::qcow2
