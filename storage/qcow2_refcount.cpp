// Refcount table and blocks, the cluster allocator and the byte allocator for compressed data.
#include <algorithm>
#include <cstring>

#include "storage/endian.h"
#include "storage/qcow2_image.h"

namespace vmmd::storage::qcow2 {

uint64_t Image::refGet(const uint8_t* block, uint64_t index) const {
  switch (refBits_) {
    case 64: return loadBe64(block + index * 8);
    case 32: return loadBe32(block + index * 4);
    case 16: return loadBe16(block + index * 2);
    case 8: return block[index];
    default: {
      uint64_t bit = index * refBits_;
      return (block[bit / 8] >> (bit % 8)) & refMax_;
    }
  }
}

void Image::refSet(uint8_t* block, uint64_t index, uint64_t value) const {
  switch (refBits_) {
    case 64: storeBe64(block + index * 8, value); break;
    case 32: storeBe32(block + index * 4, static_cast<uint32_t>(value)); break;
    case 16: storeBe16(block + index * 2, static_cast<uint16_t>(value)); break;
    case 8: block[index] = static_cast<uint8_t>(value); break;
    default: {
      uint64_t bit = index * refBits_;
      uint8_t& b = block[bit / 8];
      b = static_cast<uint8_t>((b & ~(refMax_ << (bit % 8))) | (value << (bit % 8)));
    }
  }
}

Result<void> Image::loadRefTable() {
  uint64_t bytes = uint64_t(h_.refcountTableClusters) * cs_;
  std::vector<uint8_t> raw(bytes);
  if (auto r = file_->read(h_.refcountTableOffset, raw); !r) return r;
  refTable_.resize(bytes / 8);
  for (size_t i = 0; i < refTable_.size(); ++i) refTable_[i] = loadBe64(&raw[i * 8]) & kRefTableOffsetMask;
  if (readOnly()) return {};  // check reports a shared block as a refcount mismatch
  // One refcount block named twice would count two ranges of clusters in the same bytes: every
  // allocation in one range would corrupt the other.
  std::unordered_map<uint64_t, size_t> seen;
  for (size_t i = 0; i < refTable_.size(); ++i) {
    if (!refTable_[i]) continue;
    auto [it, fresh] = seen.emplace(refTable_[i], i);
    if (!fresh) {
      return Error(path() + ": corrupt qcow2 image: refcount table entries " + std::to_string(it->second) + " and " +
                   std::to_string(i) + " name the same refcount block (offset " + std::to_string(refTable_[i]) +
                   "); it cannot be opened for writing");
    }
  }
  return {};
}

Result<uint8_t*> Image::refBlock(uint64_t blockIndex) {
  if (blockIndex >= refTable_.size() || refTable_[blockIndex] == 0) return static_cast<uint8_t*>(nullptr);
  uint64_t off = refTable_[blockIndex];
  auto it = refCache_.find(off);
  if (it != refCache_.end()) {
    it->second.lastUse = ++useClock_;
    return it->second.bytes.data();
  }
  if ((off & (cs_ - 1)) || off + cs_ > hostEnd_) {
    return corrupt("refcount block " + std::to_string(blockIndex) + " at offset " + std::to_string(off) +
                   " is misaligned or outside the file");
  }
  if (refCache_.size() >= refCacheMax_) {
    auto victim = std::min_element(refCache_.begin(), refCache_.end(),
                                   [](auto& a, auto& b) { return a.second.lastUse < b.second.lastUse; });
    refCache_.erase(victim);
  }
  CachedRefBlock blk;
  blk.bytes.resize(cs_);
  if (auto r = file_->read(off, blk.bytes); !r) return r.error();
  blk.lastUse = ++useClock_;
  return refCache_.emplace(off, std::move(blk)).first->second.bytes.data();
}

Result<uint64_t> Image::refcount(uint64_t cluster) {
  auto blk = refBlock(cluster >> refBlockBits_);
  if (!blk) return blk.error();
  if (!*blk) return uint64_t{0};
  return refGet(*blk, cluster & ((1ull << refBlockBits_) - 1));
}

Result<void> Image::setRefcount(uint64_t cluster, uint64_t value) {
  auto blk = refBlock(cluster >> refBlockBits_);
  if (!blk) return blk.error();
  if (!*blk) return Error(path() + ": cannot repair cluster " + std::to_string(cluster) + ": no refcount block covers it");
  uint64_t idx = cluster & ((1ull << refBlockBits_) - 1);
  refSet(*blk, idx, std::min(value, refMax_));
  uint64_t byte = idx * refBits_ / 8;
  uint64_t len = std::max<uint64_t>(1, refBits_ / 8);
  return file_->write(refTable_[cluster >> refBlockBits_] + byte, std::span<const uint8_t>(*blk + byte, len));
}

Result<void> Image::changeRefcounts(uint64_t first, uint64_t count, int64_t delta) {
  const uint64_t perBlock = 1ull << refBlockBits_;
  uint64_t c = first;
  const uint64_t end = first + count;
  while (c < end) {
    uint64_t b = c >> refBlockBits_;
    uint64_t stop = std::min(end, (b + 1) * perBlock);
    auto blk = refBlock(b);
    if (!blk) return blk.error();
    if (!*blk) return corrupt("cluster " + std::to_string(c) + " has no refcount block");
    uint8_t* p = *blk;
    uint64_t i0 = c - b * perBlock, i1 = stop - b * perBlock;
    for (uint64_t i = i0; i < i1; ++i) {
      uint64_t old = refGet(p, i);
      if ((delta < 0 && old < uint64_t(-delta)) || (delta > 0 && old + uint64_t(delta) > refMax_)) {
        return corrupt("refcount of cluster " + std::to_string(b * perBlock + i) + " would leave its range");
      }
      refSet(p, i, old + uint64_t(delta));
    }
    uint64_t byte0 = i0 * refBits_ / 8, byte1 = (i1 * refBits_ + 7) / 8;
    if (auto r = file_->write(refTable_[b] + byte0, std::span<const uint8_t>(p + byte0, byte1 - byte0)); !r) return r;
    if (delta < 0) {
      // Give the freed clusters back to the host and to the allocator.
      uint64_t runStart = 0, runLen = 0;
      for (uint64_t i = i0; i <= i1; ++i) {
        bool freed = i < i1 && refGet(p, i) == 0;
        if (freed) {
          uint64_t cl = b * perBlock + i;
          if (runLen == 0) runStart = cl;
          ++runLen;
          freeHint_ = std::min(freeHint_, cl);
          if (compressedNext_ && (compressedNext_ >> cb_) == cl) compressedNext_ = 0;
        } else if (runLen) {
          if (auto r = file_->punchHole(runStart << cb_, runLen << cb_); !r) return r;
          runLen = 0;
        }
      }
    }
    c = stop;
  }
  if (delta > 0) noteAllocationWritten();
  return {};
}

Result<void> Image::createRefBlock(uint64_t blockIndex, uint64_t atCluster) {
  std::vector<uint8_t> blk(cs_, 0);
  refSet(blk.data(), atCluster - (blockIndex << refBlockBits_), 1);
  if (auto r = file_->write(atCluster << cb_, blk); !r) return r;
  noteAllocationWritten();
  if (auto r = syncAllocations(); !r) return r;  // the block before the table entry naming it
  uint8_t entry[8];
  storeBe64(entry, atCluster << cb_);
  if (auto r = file_->write(h_.refcountTableOffset + blockIndex * 8, entry); !r) return r;
  noteAllocationWritten();  // refcounts raised in the block count only once the entry is durable
  refTable_[blockIndex] = atCluster << cb_;
  noteHostEnd((atCluster + 1) << cb_);
  refCache_[atCluster << cb_] = CachedRefBlock{std::move(blk), ++useClock_};
  return {};
}

Result<void> Image::growRefTable(uint64_t needed) {
  const uint64_t perCluster = cs_ / 8;
  const uint64_t oldEntries = refTable_.size();
  const uint64_t rbb = refBlockBits_;
  // New blocks and the new table go past both the file end and everything the old table covers,
  // where every cluster is free.
  uint64_t s = std::max((hostEnd_ + cs_ - 1) >> cb_, oldEntries << rbb);
  uint64_t t = (std::max(needed + 1, oldEntries * 2) + perCluster - 1) / perCluster;
  uint64_t k = 0;
  for (int iter = 0;; ++iter) {
    if (iter > 64) return corrupt("cannot place a new refcount table");
    uint64_t end = s + k + t;
    uint64_t blocks = ((end - 1) >> rbb) - (s >> rbb) + 1;
    uint64_t entries = std::max(needed + 1, ((end - 1) >> rbb) + 1);
    uint64_t t2 = (entries + perCluster - 1) / perCluster;
    if (blocks == k && t2 <= t) break;
    k = blocks;
    t = std::max(t, t2);
  }
  if (t * cs_ > kMaxRefTableBytes) return Error(path() + ": image too large: refcount table would exceed 8 MiB");
  const uint64_t end = s + k + t;
  std::vector<uint64_t> table(t * perCluster, 0);
  std::copy(refTable_.begin(), refTable_.end(), table.begin());
  for (uint64_t i = 0; i < k; ++i) {
    uint64_t bi = (s >> rbb) + i;
    std::vector<uint8_t> blk(cs_, 0);
    uint64_t lo = std::max(s, bi << rbb), hi = std::min(end, (bi + 1) << rbb);
    for (uint64_t c = lo; c < hi; ++c) refSet(blk.data(), c - (bi << rbb), 1);
    if (auto r = file_->write((s + i) << cb_, blk); !r) return r;
    table[bi] = (s + i) << cb_;
    refCache_[(s + i) << cb_] = CachedRefBlock{std::move(blk), ++useClock_};
  }
  std::vector<uint8_t> raw(t * cs_);
  for (size_t i = 0; i < table.size(); ++i) storeBe64(&raw[i * 8], table[i]);
  if (auto r = file_->write((s + k) << cb_, raw); !r) return r;
  noteAllocationWritten();
  if (auto r = syncAllocations(); !r) return r;  // the new blocks and table before the header names them
  uint8_t hdr[12];
  storeBe64(hdr, (s + k) << cb_);
  storeBe32(hdr + 8, static_cast<uint32_t>(t));
  if (auto r = file_->write(kOffRefTable, hdr); !r) return r;
  noteAllocationWritten();
  if (auto r = barrier(); !r) return r;  // the switch before the old table's clusters are freed
  uint64_t oldOffset = h_.refcountTableOffset, oldClusters = h_.refcountTableClusters;
  h_.refcountTableOffset = (s + k) << cb_;
  h_.refcountTableClusters = static_cast<uint32_t>(t);
  refTable_ = std::move(table);
  noteHostEnd(end << cb_);
  return changeRefcounts(oldOffset >> cb_, oldClusters, -1);
}

Result<uint64_t> Image::allocClusters(uint64_t count) {
  // Clusters are reserved (refcount raised) in batches, so that most allocations write no
  // refcount at all; a kill leaves at worst the unused rest of a batch leaked.
  if (poolCount_ >= count) {
    uint64_t off = poolStart_ << cb_;
    poolStart_ += count;
    poolCount_ -= count;
    return off;
  }
  if (auto r = releasePool(); !r) return r.error();
  // A batch stays well inside one refcount block's reach: new refcount blocks are placed among
  // the clusters they describe, so longer runs of free clusters may never exist.
  // Batches double (1 MiB, up to 16 MiB) while the guest keeps allocating: the barrier that makes
  // a batch's refcounts durable is paid once per batch.
  const uint64_t batch = std::max(count, std::min<uint64_t>(std::max<uint64_t>(1, batchBytes_ >> cb_), maxAllocClusters()));
  batchBytes_ = std::min<uint64_t>(batchBytes_ * 2, 16u << 20);
  auto off = reserveClusters(batch);
  if (!off) return off;
  poolStart_ = (*off >> cb_) + count;
  poolCount_ = batch - count;
  return *off;
}

Result<void> Image::releasePool() {
  if (!poolCount_) return {};
  uint64_t start = poolStart_, n = poolCount_;
  poolCount_ = 0;
  if (auto r = changeRefcounts(start, n, -1); !r) return r;
  // A batch past the end of the file extended it: give back an unused tail.
  auto fileSize = file_->size();
  if (fileSize && *fileSize == (start + n) << cb_) return file_->truncate(start << cb_);
  return {};
}

Result<uint64_t> Image::reserveClusters(uint64_t count) {
  // Only clusters inside the file are in use in a sound image (reserved clusters past its end
  // extend it first; older writers leaked at most a batch and a request there). A hostile image's
  // refcounts can claim ~10^13 clusters in use: the search stops a little past the end instead
  // (the end as it is now: a new refcount block or table moves it).
  // A retry (a refcount block or table had to be made for the run found) resumes where a run can
  // still start: making them only takes clusters, so nothing before the broken run became free,
  // and a new block inside the run leaves nothing before it long enough. Restarting from the
  // first free cluster made each retry rescan the whole file: a hostile snapshot asking for a
  // 32 MiB L1 table in 512-byte clusters took minutes.
  uint64_t resume = std::max<uint64_t>(freeHint_, 1);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const uint64_t searchEnd = ((hostEnd_ + cs_ - 1) >> cb_) + 2 * (1ull << refBlockBits_) + count;
    uint64_t start = 0, run = 0;
    bool found = false;
    for (uint64_t c = resume; !found;) {
      if (c >= searchEnd) {
        return corrupt("no " + std::to_string(count) + " free clusters before cluster " + std::to_string(searchEnd) +
                       ", past the end of the file (refcounts are wrong)");
      }
      const uint64_t b = c >> refBlockBits_, blockEnd = (b + 1) << refBlockBits_;
      auto blk = refBlock(b);
      if (!blk) return blk.error();
      for (; c < blockEnd && !found; ++c) {
        if (*blk && refGet(*blk, c - (b << refBlockBits_))) {
          run = 0;
          if (c == freeHint_) freeHint_ = c + 1;
          continue;
        }
        if (run == 0) start = c;
        found = ++run == count;
      }
    }
    bool changed = false;
    resume = start;
    for (uint64_t b = start >> refBlockBits_; b <= (start + count - 1) >> refBlockBits_; ++b) {
      if (b >= refTable_.size()) {
        if (auto r = growRefTable(b); !r) return r.error();
        changed = true;
        break;
      }
      if (refTable_[b] == 0) {
        const uint64_t at = std::max(start, b << refBlockBits_);
        if (auto r = createRefBlock(b, at); !r) return r.error();
        resume = at + 1;
        changed = true;
        break;
      }
    }
    if (changed) continue;
    uint64_t off = start << cb_, len = count << cb_;
    auto overlaps = [&](uint64_t o, uint64_t l) { return off < o + l && o < off + len; };
    if (overlaps(h_.l1TableOffset, uint64_t(h_.l1Size) * 8) ||
        overlaps(h_.refcountTableOffset, uint64_t(h_.refcountTableClusters) * cs_)) {
      return corrupt("free clusters overlap the L1 or refcount table (refcounts are wrong)");
    }
    // Clusters past the end of the file: the file is extended first, so that the barrier that
    // makes these refcounts durable makes the size durable too; an L2 entry that survives a power
    // loss then never points past the end of the file (which reads as corruption).
    auto fileSize = file_->size();
    if (!fileSize) return fileSize.error();
    if (off + len > *fileSize) {
      if (auto r = file_->truncate(off + len); !r) return r.error();
    }
    if (auto r = changeRefcounts(start, count, +1); !r) return r.error();
    if (start == freeHint_) freeHint_ = start + count;
    noteHostEnd(off + len);
    return off;
  }
  return corrupt("cluster allocation does not converge");
}

Result<uint64_t> Image::allocBytes(uint64_t bytes) {
  uint64_t used = compressedNext_ & (cs_ - 1);
  if (compressedNext_ && used && used + bytes <= cs_) {
    uint64_t off = compressedNext_;
    if (auto r = changeRefcounts(off >> cb_, 1, +1); !r) return r.error();
    compressedNext_ = (used + bytes == cs_) ? 0 : off + bytes;
    return off;
  }
  auto off = allocClusters(1);
  if (!off) return off;
  compressedNext_ = bytes >= cs_ ? 0 : *off + bytes;
  return *off;
}

Result<void> Image::freeEntries(std::span<const uint64_t> entries) {
  // The entries were just cleared or replaced: that must be durable before a refcount goes down,
  // or a power loss could leave an entry pointing at a cluster that was reused meanwhile.
  auto referencesHost = [&](uint64_t e) { return kindOf(e) == Kind::Compressed || (e & kOffsetMask) != 0; };
  if (std::any_of(entries.begin(), entries.end(), referencesHost)) {
    if (auto r = barrier(); !r) return r;
  }
  // Contiguous host clusters are freed with one refcount update (and one hole punched).
  uint64_t runStart = 0, runLen = 0;
  for (size_t i = 0; i <= entries.size(); ++i) {
    uint64_t host = 0;
    if (i < entries.size()) {
      Kind k = kindOf(entries[i]);
      if (k == Kind::Normal || k == Kind::Zero) host = entries[i] & kOffsetMask;
      if (k == Kind::Compressed) {
        uint64_t off, len;
        compressedExtent(entries[i], &off, &len);
        uint64_t first = (off & ~511ull) >> cb_, last = ((off & ~511ull) + len - 1) >> cb_;
        if (auto r = changeRefcounts(first, last - first + 1, -1); !r) return r;
      }
    }
    if (host && runLen && host == ((runStart + runLen) << cb_)) {
      ++runLen;
      continue;
    }
    if (runLen) {
      if (auto r = changeRefcounts(runStart, runLen, -1); !r) return r;
      runLen = 0;
    }
    if (host) {
      runStart = host >> cb_;
      runLen = 1;
    }
  }
  return {};
}

Result<void> Image::freeEntry(uint64_t entry) { return freeEntries(std::span<const uint64_t>(&entry, 1)); }

}  // namespace vmmd::storage::qcow2
