// Hostile images: every malformed field is a clear error, never a crash or a huge allocation.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <functional>
#include <random>

#include "storage/endian.h"
#include "storage/qcow2.h"
#include "storage/raw.h"
#include "tests/storage/test_util.h"

namespace vmmd::storage {
namespace {

using test::ScratchDir;

class StorageHostile : public ::testing::Test {
 protected:
  void SetUp() override {
    path = dir / "h.qcow2";
    Qcow2CreateOptions c;
    c.size = 4 << 20;
    ASSERT_TRUE(createQcow2(path, c).ok());
    auto dev = test::openOrDie(path);
    std::vector<uint8_t> d(100000, 0xab);
    ASSERT_TRUE(dev->write(0, d).ok());
  }
  void put32(uint64_t off, uint32_t v) {
    uint8_t b[4];
    storeBe32(b, v);
    poke(off, b, 4);
  }
  void put64(uint64_t off, uint64_t v) {
    uint8_t b[8];
    storeBe64(b, v);
    poke(off, b, 8);
  }
  void poke(uint64_t off, const void* data, size_t len) {
    int fd = ::open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, data, len, static_cast<off_t>(off)), static_cast<ssize_t>(len));
    ::close(fd);
  }
  // Open must fail with a message containing `what`.
  void expectOpenError(const std::string& what) {
    OpenOptions o;
    o.readOnly = true;
    auto dev = openImage(path, o);
    ASSERT_FALSE(dev.ok()) << "opened a hostile image";
    EXPECT_NE(dev.error().message().find(what), std::string::npos) << dev.error().message();
    EXPECT_NE(dev.error().message().find(path), std::string::npos) << dev.error().message();
  }
  // Open may succeed, but reading must fail with a message containing `what`.
  void expectReadError(const std::string& what) {
    OpenOptions o;
    o.readOnly = true;
    auto dev = openImage(path, o);
    ASSERT_TRUE(dev.ok()) << dev.error().message();
    std::vector<uint8_t> buf(1 << 20);
    auto r = (*dev)->read(0, buf);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find(what), std::string::npos) << r.error().message();
  }
  ScratchDir dir;
  std::string path;
};

TEST_F(StorageHostile, TruncatedHeader) {
  ASSERT_EQ(::truncate(path.c_str(), 50), 0);
  expectOpenError("too short");
}

TEST_F(StorageHostile, TruncatedTables) {
  ASSERT_EQ(::truncate(path.c_str(), 3 * 65536 + 4), 0);  // cuts the L1 table (cluster 3)
  expectOpenError("outside the file");
}

TEST_F(StorageHostile, TruncatedData) {
  ASSERT_EQ(::truncate(path.c_str(), 4 * 65536 + 10), 0);  // keeps L1, cuts the L2 table
  expectReadError("outside the file");
}

TEST_F(StorageHostile, HugeL1Size) {
  put32(36, 0x7fffffff);
  expectOpenError("L1 table too large");
}

TEST_F(StorageHostile, HugeRefcountTable) {
  put32(56, 0x10000000);
  expectOpenError("refcount table too large");
}

TEST_F(StorageHostile, L1OutsideFile) {
  put64(40, 1ull << 40);
  expectOpenError("outside the file");
}

TEST_F(StorageHostile, L1OverlapsHeader) {
  put64(40, 0);
  expectOpenError("overlaps the header");
}

TEST_F(StorageHostile, RefcountTableMisaligned) {
  put64(48, 65536 + 8);
  expectOpenError("not cluster aligned");
}

TEST_F(StorageHostile, L2TableOutsideFile) {
  put64(3 * 65536, (1ull << 45) | (1ull << 63));
  expectReadError("outside the file");
}

TEST_F(StorageHostile, DataClusterOutsideFile) {
  // The L2 table is the first cluster after the L1 table; point its first entry far away.
  put64(4 * 65536, (1ull << 50) | (1ull << 63));
  expectReadError("outside the file");
}

TEST_F(StorageHostile, CorruptionFoundWhileWritingSetsTheCorruptBit) {
  put64(4 * 65536, (1ull << 50) | (1ull << 63));
  {
    auto dev = test::openOrDie(path);
    ASSERT_TRUE(dev);
    std::vector<uint8_t> d(4096, 1);
    auto r = dev->write(0, d);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("corrupt"), std::string::npos) << r.error().message();
    EXPECT_FALSE(dev->write(1 << 20, d).ok());  // no more writes
  }
  OpenOptions o;
  auto rw = openImage(path, o);
  ASSERT_FALSE(rw.ok());
  EXPECT_NE(rw.error().message().find("marked corrupt"), std::string::npos) << rw.error().message();
  o.readOnly = true;
  EXPECT_TRUE(openImage(path, o).ok());
  if (test::haveQemuImg()) {
    auto info = test::run("qemu-img info " + path);
    EXPECT_NE(info.output.find("corrupt: true"), std::string::npos) << info.output;
  }
}

TEST_F(StorageHostile, DataClusterMisaligned) {
  put64(4 * 65536, (5 * 65536 + 512) | (1ull << 63));
  expectReadError("not cluster aligned");
}

TEST_F(StorageHostile, BadCompressedCluster) {
  // Compressed entry pointing at the L1 table: not deflate data.
  uint64_t entry = (1ull << 62) | (3ull << 16) | (3 * 65536);
  put64(4 * 65536, entry);
  expectReadError("does not decompress");
}

TEST_F(StorageHostile, BadClusterBits) {
  for (uint32_t bits : {0u, 8u, 22u, 63u, 0xffffffffu}) {
    put32(20, bits);
    expectOpenError("cluster_bits");
  }
}

TEST_F(StorageHostile, BadVersionAndFeatures) {
  put32(4, 4);
  expectOpenError("version");
  put32(4, 3);
  put64(72, 1ull << 40);
  expectOpenError("incompatible features");
  put64(72, 0);
  put32(96, 9);
  expectOpenError("refcount_order");
}

TEST_F(StorageHostile, HeaderLengthBeyondCluster) {
  put32(100, 1 << 20);
  expectOpenError("header length");
}

TEST_F(StorageHostile, AbsurdBackingFileName) {
  std::string name(1000, 'x');
  poke(65536 - 1000, name.data(), name.size());
  put64(8, 65536 - 1000);
  put32(16, 1000);
  expectOpenError("backing file");
  put32(16, 5000);
  expectOpenError("backing file name too long");
  put64(8, 1ull << 40);
  put32(16, 10);
  expectOpenError("backing file name lies outside");
}

TEST_F(StorageHostile, DuplicateRefcountBlockIsRefusedForWriting) {
  // Refcount table entry 1 names the block entry 0 names (cluster 2 of a new image).
  put64(65536 + 8, 2 * 65536);
  OpenOptions o;
  auto rw = openImage(path, o);
  ASSERT_FALSE(rw.ok());
  EXPECT_NE(rw.error().message().find("name the same refcount block"), std::string::npos) << rw.error().message();
  o.readOnly = true;
  auto ro = openImage(path, o);
  ASSERT_TRUE(ro.ok()) << ro.error().message();  // readable, and check says what is wrong
  auto res = dynamic_cast<Qcow2Device*>(ro->get())->check(RepairMode::None);
  ASSERT_TRUE(res.ok()) << res.error().message();
  EXPECT_GT(res->corruptions, 0u);
}

TEST(StorageHostileAllocator, SearchForFreeClustersIsBounded) {
  // 1-bit refcounts: one 64 KiB block covers 2^19 clusters. Three blocks of all ones, appended to
  // the file, claim 1.5 million clusters in use; with a 2 MiB cluster and 512 such blocks a
  // hostile file makes the search ~10^13 long. It must stop a little past the end of the file.
  ScratchDir dir;
  const std::string path = dir / "h.qcow2";
  Qcow2CreateOptions c;
  c.size = 4 << 20;
  c.refcountBits = 1;
  ASSERT_TRUE(createQcow2(path, c).ok());
  {
    int fd = ::open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    std::vector<uint8_t> ones(65536, 0xff);
    for (uint64_t i = 0; i < 3; ++i) {
      const uint64_t at = (4 + i) * 65536;  // after the header, refcount table and block, L1
      ASSERT_EQ(::pwrite(fd, ones.data(), ones.size(), static_cast<off_t>(at)), 65536);
      uint8_t entry[8];
      storeBe64(entry, at);
      ASSERT_EQ(::pwrite(fd, entry, 8, static_cast<off_t>(65536 + i * 8)), 8);
    }
    ::close(fd);
  }
  auto dev = test::openOrDie(path);
  ASSERT_TRUE(dev);
  std::vector<uint8_t> d(4096, 1);
  auto r = dev->write(0, d);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("free clusters"), std::string::npos) << r.error().message();
}

TEST(StorageHostileChain, BackingFileWithoutFormatIsNeverProbed) {
  // A guest that writes a qcow2 header into its raw base image must not choose what opens next:
  // an image that does not name its backing file's format is refused (the message says how to
  // record it), read-only too.
  ScratchDir dir;
  std::vector<uint8_t> magic = {'Q', 'F', 'I', 0xfb};
  magic.resize(1 << 20);
  {
    int fd = ::open((dir / "base.raw").c_str(), O_RDWR | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, magic.data(), magic.size(), 0), static_cast<ssize_t>(magic.size()));
    ::close(fd);
  }
  Qcow2CreateOptions c;
  c.size = 1 << 20;
  c.backingFile = "base.raw";
  ASSERT_TRUE(createQcow2(dir / "ov.qcow2", c).ok());
  for (bool readOnly : {false, true}) {
    OpenOptions o;
    o.readOnly = readOnly;
    auto dev = openImage(dir / "ov.qcow2", o);
    ASSERT_FALSE(dev.ok());
    EXPECT_NE(dev.error().message().find("never probed"), std::string::npos) << dev.error().message();
    EXPECT_NE(dev.error().message().find("-F raw|qcow2"), std::string::npos) << dev.error().message();
  }
  c.backingFormat = "raw";  // named: the magic is just data
  ASSERT_TRUE(createQcow2(dir / "ov.qcow2", c).ok());
  auto dev = test::openOrDie(dir / "ov.qcow2", true);
  ASSERT_TRUE(dev);
  std::vector<uint8_t> buf(4);
  ASSERT_TRUE(dev->read(0, buf).ok());
  EXPECT_EQ(buf, std::vector<uint8_t>(magic.begin(), magic.begin() + 4));
}

TEST(StorageHostileChain, BackingFileLoop) {
  ScratchDir dir;
  Qcow2CreateOptions c;
  c.size = 1 << 20;
  c.backingFile = "b.qcow2";
  c.backingFormat = "qcow2";
  ASSERT_TRUE(createQcow2(dir / "a.qcow2", c).ok());
  c.backingFile = "a.qcow2";
  ASSERT_TRUE(createQcow2(dir / "b.qcow2", c).ok());
  OpenOptions o;
  o.readOnly = true;
  auto dev = openImage(dir / "a.qcow2", o);
  ASSERT_FALSE(dev.ok());
  EXPECT_NE(dev.error().message().find("loop"), std::string::npos) << dev.error().message();
  c.backingFile = "self.qcow2";
  ASSERT_TRUE(createQcow2(dir / "self.qcow2", c).ok());
  dev = openImage(dir / "self.qcow2", o);
  ASSERT_FALSE(dev.ok());
  EXPECT_NE(dev.error().message().find("loop"), std::string::npos);
}

TEST(StorageHostileChain, ChainTooDeep) {
  ScratchDir dir;
  Qcow2CreateOptions c;
  c.size = 1 << 20;
  ASSERT_TRUE(createQcow2(dir / "0.qcow2", c).ok());
  c.backingFormat = "qcow2";
  for (int i = 1; i <= 40; ++i) {
    c.backingFile = std::to_string(i - 1) + ".qcow2";
    ASSERT_TRUE(createQcow2(dir / (std::to_string(i) + ".qcow2"), c).ok());
  }
  OpenOptions o;
  o.readOnly = true;
  auto dev = openImage(dir / "40.qcow2", o);
  ASSERT_FALSE(dev.ok());
  EXPECT_NE(dev.error().message().find("deeper than"), std::string::npos) << dev.error().message();
  EXPECT_TRUE(openImage(dir / "30.qcow2", o).ok());
}

// Random corruption of a valid image: opening and reading may fail but must not crash (this runs
// under ASan/UBSan too). `hot`: how many leading bytes hold the metadata most flips go to;
// `more` exercises a writable image further.
void mutateAndExercise(const std::string& good, size_t hot, uint64_t seed,
                       const std::function<void(Qcow2Device&, std::mt19937_64&)>& more) {
  std::string bytes;
  {
    FILE* f = std::fopen(good.c_str(), "rb");
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.append(buf, n);
    std::fclose(f);
  }
  std::mt19937_64 rng(seed);
  std::string bad = good + ".bad";
  for (int iter = 0; iter < 300; ++iter) {
    std::string m = bytes;
    int flips = 1 + rng() % 8;
    for (int i = 0; i < flips; ++i) {
      size_t pos = (rng() % 4 == 0) ? rng() % m.size() : rng() % std::min<size_t>(m.size(), hot);
      m[pos] = static_cast<char>(rng());
    }
    FILE* f = std::fopen(bad.c_str(), "wb");
    std::fwrite(m.data(), 1, m.size(), f);
    std::fclose(f);
    OpenOptions o;
    o.readOnly = iter % 2 == 0;
    o.openBacking = false;
    o.lock = false;
    auto dev = openImage(bad, o);
    if (!dev.ok()) continue;
    std::vector<uint8_t> buf(64 << 10);
    for (uint64_t off = 0; off + buf.size() <= std::min<uint64_t>((*dev)->size(), 4 << 20); off += buf.size()) {
      (void)(*dev)->read(off, buf);
    }
    if (!o.readOnly && (*dev)->size() > 10000) {
      std::vector<uint8_t> d(5000, 1);
      (void)(*dev)->write(rng() % std::min<uint64_t>((*dev)->size() - 5000, 4 << 20), d);
      (void)(*dev)->discard(0, 1 << 20);
    }
    auto* q = dynamic_cast<Qcow2Device*>(dev->get());
    if (!q) continue;
    if (!o.readOnly) more(*q, rng);
    (void)q->check(RepairMode::None);
  }
}

TEST(StorageHostileRandom, MutatedImagesNeverCrash) {
  ScratchDir dir;
  std::string good = dir / "good.qcow2";
  Qcow2CreateOptions c;
  c.size = 2 << 20;
  c.clusterSize = 4096;
  ASSERT_TRUE(createQcow2(good, c).ok());
  {
    auto dev = test::openOrDie(good);
    std::vector<uint8_t> d(300000, 0x5c);
    ASSERT_TRUE(dev->write(1000, d).ok());
    auto* q = dynamic_cast<Qcow2Device*>(dev.get());
    std::vector<uint8_t> cl(4096, 0x12);
    ASSERT_TRUE(q->writeCompressed(1 << 20, cl).ok());
  }
  // Mostly metadata: header, refcount table/block, L1, L2.
  mutateAndExercise(good, 6 * 4096, 42, [](Qcow2Device&, std::mt19937_64&) {});
}

// The same with internal snapshots: flips in the snapshot table and the snapshots' L1 and L2
// tables, then apply, delete and create on what still opens.
TEST(StorageHostileRandom, MutatedSnapshotImagesNeverCrash) {
  ScratchDir dir;
  std::string good = dir / "good.qcow2";
  Qcow2CreateOptions c;
  c.size = 2 << 20;
  c.clusterSize = 4096;
  ASSERT_TRUE(createQcow2(good, c).ok());
  {
    auto dev = test::openOrDie(good);
    auto* q = dynamic_cast<Qcow2Device*>(dev.get());
    std::vector<uint8_t> d(100000, 0x5c);
    SnapshotRequest request;
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(dev->write(i * 200000, d).ok());
      request.name = "s" + std::to_string(i);
      ASSERT_TRUE(q->createSnapshot(request).ok());
    }
  }
  uint64_t hot = 0;  // up to the end of the snapshot table, the last metadata written
  {
    auto dev = test::openOrDie(good, true);
    hot = dynamic_cast<Qcow2Device*>(dev.get())->header().snapshotsOffset + 4096;
  }
  mutateAndExercise(good, hot, 43, [](Qcow2Device& q, std::mt19937_64& rng) {
    auto list = q.snapshots();
    if (!list.empty()) (void)q.applySnapshot(list[rng() % list.size()].id);
    if (!list.empty()) (void)q.deleteSnapshot(list[rng() % list.size()].id, "");
    SnapshotRequest request;
    request.name = "again";
    (void)q.createSnapshot(request);
    std::vector<uint8_t> d(5000, 2);
    if (q.size() > 10000) (void)q.write(rng() % (q.size() - 5000), d);
  });
}

}  // namespace
}  // namespace vmmd::storage
