// Internals of the qcow2 implementation, shared by qcow2_*.cpp. Locking: io_ is taken shared by
// read/write and exclusively by requests that free clusters (discard, writeZeroes) and resize,
// so that no data write lands in a cluster that is being freed. meta_ serializes every metadata
// access (tables, caches, refcounts, allocation); data I/O to already allocated clusters runs
// outside it, concurrently. Metadata is written through in crash-safe order: a refcount goes up
// before anything points at the cluster, an entry is cleared before the refcount goes down, so a
// process killed at any point leaves at worst leaked clusters. For a power loss (the page cache
// lost, writes reaching the disk in any order) fdatasync barriers sit on those same edges
// (qcow2_ordering.cpp), so the order holds on the disk too.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <unordered_set>
#include <shared_mutex>
#include <unordered_map>

#include "storage/qcow2.h"
#include "storage/rw_lock.h"

namespace vmmd::storage::qcow2 {

class Image final : public Qcow2Device {
 public:
  ~Image() override;
  static Result<std::unique_ptr<Image>> open(std::unique_ptr<ImageFile> file, const OpenOptions& options,
                                             const BackingOpener& openBacking);

  Result<void> read(uint64_t offset, std::span<uint8_t> buf) override;
  Result<void> readv(uint64_t offset, ReadVector bufs) override;
  Result<void> write(uint64_t offset, std::span<const uint8_t> buf) override;
  Result<void> writev(uint64_t offset, WriteVector bufs) override;
  Result<void> writeZeroes(uint64_t offset, uint64_t length) override;
  Result<void> discard(uint64_t offset, uint64_t length) override;
  Result<void> flush() override;
  Result<void> resize(uint64_t newSize) override;
  uint64_t size() const override { return size_; }
  bool readOnly() const override { return file_->readOnly(); }
  ImageFormat format() const override { return ImageFormat::Qcow2; }
  const std::string& path() const override { return file_->path(); }
  Result<Extent> blockStatus(uint64_t offset, uint64_t maxLength) override;
  BlockDevice* backing() const override { return backing_.get(); }
  Result<void> releaseReserved() override;
  const Header& header() const override { return h_; }
  uint32_t clusterSize() const override { return cs_; }
  Result<CheckResult> check(RepairMode repair) override;
  Result<void> writeCompressed(uint64_t offset, std::span<const uint8_t> data) override;
  std::vector<SnapshotEntry> snapshots() const override;
  Result<SnapshotEntry> createSnapshot(const SnapshotRequest& request) override;
  Result<void> applySnapshot(const std::string& id) override;
  Result<SnapshotEntry> deleteSnapshot(const std::string& id, const std::string& name) override;

 private:
  enum class Kind { Unallocated, Zero, Normal, Compressed };
  struct Run {
    Kind kind;
    uint64_t entry;   // L2 entry of the first cluster
    uint64_t host;    // Normal: host offset of the first byte
    uint64_t length;  // bytes from the guest offset asked for
  };

  Image(std::unique_ptr<ImageFile> file, const Header& h);
  Kind kindOf(uint64_t entry) const;
  Error corrupt(const std::string& what) const;
  // Error unless the image may be changed: read-only, or marked corrupt.
  Result<void> writable() const;
  Result<void> rangeCheck(uint64_t offset, uint64_t length, bool forWrite) const;

  // qcow2_tables.cpp (meta_ held)
  Result<void> loadL1();
  Result<std::vector<uint64_t>*> l2Table(uint64_t l2Offset);
  Result<void> setL2Entries(uint64_t l2Offset, uint64_t first, std::span<const uint64_t> values);
  // The L2 table of an L1 entry, for changing it: allocated when there is none, copied when it is
  // shared with a snapshot (its L1 entry lacks bit 63).
  Result<uint64_t> ensureL2(uint64_t l1Index);
  Result<uint64_t> copyL2OnWrite(uint64_t l1Index);
  // cachedOnly (meta_ held shared): touches nothing; sets *missed when the L2 table is not cached.
  Result<Run> lookup(uint64_t offset, uint64_t maxLength, bool cachedOnly = false, bool* missed = nullptr);
  Result<void> growL1(uint64_t entries);

  // qcow2_check.cpp
  Result<void> checkCopiedFlags(CheckResult& res, bool fix);

  // qcow2_snapshot.cpp (io_ and meta_ held exclusively)
  Result<void> loadSnapshots();
  Result<std::vector<uint64_t>> readL1(uint64_t offset, uint32_t entries);
  // Every cluster an L1 table reaches (its L2 tables and what they point to), once per path, as
  // the refcounts count them: sorted, with repeats.
  Result<std::vector<uint64_t>> referencedClusters(std::span<const uint64_t> l1);
  // Error (nothing changed) when one more reference per path would overflow a refcount.
  Result<void> refcountsFit(std::span<const uint64_t> sortedClusters);
  Result<void> changeRefcountsOf(std::span<const uint64_t> sortedClusters, int64_t delta);
  // Sets bit 63 of the active L1 and L2 entries where `copied` says so (the rest cleared),
  // writing only the tables that change.
  Result<void> rewriteCopiedFlags(const std::function<Result<bool>(uint64_t cluster)>& copied);
  Result<void> writeSnapshotTable(std::vector<SnapshotEntry> entries);
  Result<SnapshotEntry> createSnapshotLocked(const SnapshotRequest& request);
  Result<void> applySnapshotLocked(const SnapshotEntry& snapshot);
  Result<SnapshotEntry> deleteSnapshotLocked(size_t index);

  // qcow2_refcount.cpp (meta_ held)
  Result<void> loadRefTable();
  Result<uint8_t*> refBlock(uint64_t blockIndex);
  Result<uint64_t> refcount(uint64_t cluster);
  Result<void> setRefcount(uint64_t cluster, uint64_t value);
  Result<void> changeRefcounts(uint64_t firstCluster, uint64_t count, int64_t delta);
  Result<uint64_t> allocClusters(uint64_t count);     // from the reserved pool
  Result<uint64_t> reserveClusters(uint64_t count);   // raises refcounts
  Result<void> releasePool();
  uint64_t maxAllocClusters() const { return std::max<uint64_t>(1, (1ull << refBlockBits_) / 4); }
  Result<uint64_t> allocBytes(uint64_t bytes);
  Result<void> freeEntry(uint64_t entry);
  Result<void> freeEntries(std::span<const uint64_t> entries);
  Result<void> createRefBlock(uint64_t blockIndex, uint64_t atCluster);
  Result<void> growRefTable(uint64_t neededBlockIndex);
  uint64_t refGet(const uint8_t* block, uint64_t index) const;
  void refSet(uint8_t* block, uint64_t index, uint64_t value) const;
  void noteHostEnd(uint64_t end) {
    if (end > hostEnd_) hostEnd_ = end;
  }

  // qcow2_compressed.cpp
  Result<void> readCompressed(uint64_t entry, std::span<uint8_t> cluster) const;
  Result<void> writeCompressedCluster(uint64_t offset, const uint8_t* data, uint64_t length);
  void compressedExtent(uint64_t entry, uint64_t* offset, uint64_t* length) const;

  // Reads [offset, offset + the buffers' size) of one run outside meta_ (the buffers cover no
  // more than the run).
  Result<void> readRun(const Run& run, uint64_t offset, ReadVector parts);
  Result<void> readRun(const Run& run, uint64_t offset, std::span<uint8_t> buf);
  Result<void> readBacking(uint64_t offset, ReadVector bufs);
  // Clears (to zero flag or unallocated) whole clusters; io_ held exclusively.
  Result<void> clearClusters(uint64_t offset, uint64_t length, bool zero);
  Result<void> writeLocked(uint64_t offset, std::span<const uint8_t> buf);
  Result<void> writeLocked(uint64_t offset, const WriteSource& buf);
  // Writes src's bytes [pos, pos + length) at host offset `host` of the image file.
  Result<void> writeHost(uint64_t host, const WriteSource& src, uint64_t pos, uint64_t length);
  Result<void> zeroesLocked(uint64_t offset, uint64_t length);
  Result<void> noteCorruption(Result<void> r);

  // qcow2_ordering.cpp: the write-ordering barriers.
  // Called after a write that a later pointer will depend on completed: a refcount raised, a new
  // L2 table, refcount block or table written (or the pointer to a new refcount block).
  void noteAllocationWritten() { allocGen_.fetch_add(1); }
  uint64_t allocationsWritten() const { return allocGen_.load(); }
  // Makes the allocation writes noted up to `generation` durable; nothing when they already are
  // (one fdatasync covers every allocation written before it, so a pool of reserved clusters
  // costs one barrier, not one per cluster).
  Result<void> syncAllocations(uint64_t generation);
  Result<void> syncAllocations() { return syncAllocations(allocationsWritten()); }
  // An unconditional barrier: copied data before the entry that publishes it, a cleared or
  // switched pointer before the refcount of what it pointed to goes down.
  Result<void> barrier();
  // fdatasync, counting what it made durable (flush and the barriers).
  Result<void> syncFile();

  std::unique_ptr<ImageFile> file_;
  std::unique_ptr<BlockDevice> backing_;
  bool writeBarriers_ = true;
  std::atomic<uint64_t> allocGen_{0};    // allocation writes completed
  std::atomic<uint64_t> durableGen_{0};  // allocation writes known durable
  Header h_;
  uint32_t cb_;           // cluster bits
  uint64_t cs_;           // cluster size
  uint32_t l2Bits_;       // log2(entries per L2 table)
  uint64_t size_;
  uint32_t refBits_;      // bits per refcount
  uint32_t refBlockBits_; // log2(refcounts per refcount block)
  uint64_t refMax_;
  uint32_t csizeShift_;
  uint64_t csizeMask_;

  RwLock io_;
  std::atomic<bool> markedCorrupt_{false};
  mutable RwLock meta_;  // shared: lookups that hit the L2 cache; exclusive: everything else
  std::vector<uint64_t> l1_;
  std::vector<SnapshotEntry> snapshots_;
  uint64_t snapshotTableBytes_ = 0;  // as on disk
  struct CachedL2 {
    std::vector<uint64_t> entries;
    uint64_t lastUse = 0;
  };
  std::unordered_map<uint64_t, CachedL2> l2Cache_;
  // Guest clusters whose new data is being written outside meta_ (allocation in flight).
  std::unordered_set<uint64_t> inflight_;
  std::condition_variable_any inflightDone_;
  size_t l2CacheMax_;
  std::vector<uint64_t> refTable_;
  struct CachedRefBlock {
    std::vector<uint8_t> bytes;
    uint64_t lastUse = 0;
  };
  std::unordered_map<uint64_t, CachedRefBlock> refCache_;
  size_t refCacheMax_;
  uint64_t useClock_ = 0;
  uint64_t freeHint_ = 0;        // no free cluster below this index
  std::atomic<uint64_t> hostEnd_{0};  // end of the host file as far as we have allocated
  uint64_t compressedNext_ = 0;  // next free byte in the cluster being filled by compressed data
  uint64_t poolStart_ = 0;       // reserved clusters not yet used (refcount 1, unreferenced)
  uint64_t poolCount_ = 0;
  uint64_t batchBytes_ = 1u << 20;  // the next batch of reserved clusters
};

}  // namespace vmmd::storage::qcow2
