#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "storage/qcow2.h"
#include "storage/raw.h"
#include "tests/storage/test_util.h"

namespace vmmd::storage {
namespace {

using test::ScratchDir;

using test::qcow2Options;

void expectClean(BlockDevice* dev) {
  auto* q = dynamic_cast<Qcow2Device*>(dev);
  ASSERT_NE(q, nullptr);
  auto r = q->check(RepairMode::None);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->corruptions, 0u);
  EXPECT_EQ(r->leaks, 0u);
  for (auto& m : r->messages) ADD_FAILURE() << m;
}

void expectQemuClean(const std::string& path) {
  if (!test::haveQemuImg()) return;
  auto r = test::qemuCheck(path);
  EXPECT_EQ(r.status, 0) << r.output;
}

TEST(StorageQcow2, NewImageReadsZeroes) {
  ScratchDir dir;
  std::string path = dir / "a.qcow2";
  ASSERT_TRUE(createQcow2(path, qcow2Options(10 << 20)).ok());
  auto dev = test::openOrDie(path);
  ASSERT_TRUE(dev);
  EXPECT_EQ(dev->format(), ImageFormat::Qcow2);
  EXPECT_EQ(dev->size(), 10u << 20);
  std::vector<uint8_t> buf(1 << 20, 0xff);
  ASSERT_TRUE(dev->read(3 << 20, buf).ok());
  EXPECT_TRUE(std::all_of(buf.begin(), buf.end(), [](uint8_t b) { return b == 0; }));
  auto st = dev->blockStatus(0, 10 << 20);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->kind, ExtentKind::Unallocated);
  EXPECT_EQ(st->length, 10u << 20);
  expectClean(dev.get());
}

struct Geometry {
  uint32_t cluster;
  uint32_t version;
  uint32_t refBits;
};

class StorageQcow2Geometry : public ::testing::TestWithParam<Geometry> {};

TEST_P(StorageQcow2Geometry, UnalignedWritesRoundTripAndStayClean) {
  auto g = GetParam();
  ScratchDir dir;
  std::string path = dir / "a.qcow2";
  const uint64_t size = 24 << 20;
  ASSERT_TRUE(createQcow2(path, qcow2Options(size, g.cluster, g.version, g.refBits)).ok());
  std::vector<uint8_t> shadow(size, 0);
  std::mt19937_64 rng(g.cluster + g.version * 7 + g.refBits);
  {
    auto dev = test::openOrDie(path);
    ASSERT_TRUE(dev);
    for (int i = 0; i < 150; ++i) {
      uint64_t len = 1 + rng() % (300 << 10);
      uint64_t off = rng() % (size - len);
      auto data = test::randomBytes(rng, len);
      ASSERT_TRUE(dev->write(off, data).ok());
      std::memcpy(&shadow[off], data.data(), len);
      if (i % 10 == 9) {
        uint64_t zl = rng() % (1 << 20), zo = rng() % (size - zl);
        ASSERT_TRUE(dev->writeZeroes(zo, zl).ok());
        std::memset(&shadow[zo], 0, zl);
      }
    }
    ASSERT_TRUE(dev->flush().ok());
    expectClean(dev.get());
  }
  auto dev = test::openOrDie(path, true);
  ASSERT_TRUE(dev);
  std::vector<uint8_t> back(size);
  ASSERT_TRUE(dev->read(0, back).ok());
  EXPECT_TRUE(back == shadow);
  dev.reset();
  expectQemuClean(path);
}

INSTANTIATE_TEST_SUITE_P(Clusters, StorageQcow2Geometry,
                         ::testing::Values(Geometry{512, 3, 16}, Geometry{4096, 3, 16}, Geometry{65536, 3, 16},
                                           Geometry{2 << 20, 3, 16}, Geometry{65536, 2, 16}, Geometry{4096, 3, 1},
                                           Geometry{4096, 3, 64}, Geometry{65536, 3, 8}),
                         [](const auto& info) {
                           return "c" + std::to_string(info.param.cluster) + "_v" + std::to_string(info.param.version) +
                                  "_r" + std::to_string(info.param.refBits);
                         });

// Before another process takes an open image over (migration), the clusters reserved for later
// writes go back: the image on the disk then has no leak while this one still has it open.
TEST(StorageQcow2, ReleaseReservedLeavesNoLeakBehind) {
  ScratchDir dir;
  ASSERT_TRUE(createQcow2(dir / "a.qcow2", qcow2Options(64 << 20)).ok());
  OpenOptions o;
  auto dev = openImage(dir / "a.qcow2", o);
  ASSERT_TRUE(dev.ok()) << dev.error().message();
  std::vector<uint8_t> data(192 << 10, 0x5a);
  ASSERT_TRUE((*dev)->write(1 << 20, data).ok());
  OpenOptions look;
  look.readOnly = true;
  look.lock = false;
  auto leaks = [&] {
    auto other = openImage(dir / "a.qcow2", look);
    EXPECT_TRUE(other.ok());
    auto r = dynamic_cast<Qcow2Device*>(other->get())->check(RepairMode::None);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r->corruptions, 0u);
    return r->leaks;
  };
  EXPECT_GT(leaks(), 0u);  // the reserve of the open image
  ASSERT_TRUE((*dev)->releaseReserved().ok());
  ASSERT_TRUE((*dev)->flush().ok());
  EXPECT_EQ(leaks(), 0u);
  // It goes on writing (reserving again) and reads back what it wrote.
  ASSERT_TRUE((*dev)->write(8 << 20, data).ok());
  std::vector<uint8_t> back(data.size());
  ASSERT_TRUE((*dev)->read(1 << 20, back).ok());
  EXPECT_EQ(back, data);
  dev->reset();
  EXPECT_EQ(leaks(), 0u);
}

TEST(StorageQcow2, BackingChainCopyOnWrite) {
  ScratchDir dir;
  const uint64_t size = 4 << 20;
  ASSERT_TRUE(createRaw(dir / "base.raw", size).ok());
  std::mt19937_64 rng(1);
  auto baseData = test::randomBytes(rng, size);
  {
    auto base = test::openOrDie(dir / "base.raw");
    ASSERT_TRUE(base->write(0, baseData).ok());
  }
  auto mid = qcow2Options(size);
  mid.backingFile = "base.raw";
  mid.backingFormat = "raw";
  ASSERT_TRUE(createQcow2(dir / "mid.qcow2", mid).ok());
  auto top = qcow2Options(size, 4096);
  top.backingFile = dir / "mid.qcow2";  // absolute works too
  top.backingFormat = "qcow2";
  ASSERT_TRUE(createQcow2(dir / "top.qcow2", top).ok());
  std::vector<uint8_t> expect = baseData;
  {
    auto m = test::openOrDie(dir / "mid.qcow2");
    std::vector<uint8_t> d(1000, 0x11);
    ASSERT_TRUE(m->write(70000, d).ok());  // partial cluster: COW from base
    std::memcpy(&expect[70000], d.data(), d.size());
    ASSERT_TRUE(m->writeZeroes(1 << 20, 1 << 20).ok());  // zero clusters hide the base
    std::memset(&expect[1 << 20], 0, 1 << 20);
    expectClean(m.get());
  }
  auto t = test::openOrDie(dir / "top.qcow2");
  ASSERT_TRUE(t);
  ASSERT_NE(t->backing(), nullptr);
  ASSERT_NE(t->backing()->backing(), nullptr);
  std::vector<uint8_t> d(5000, 0x22);
  ASSERT_TRUE(t->write(69000, d).ok());
  std::memcpy(&expect[69000], d.data(), d.size());
  ASSERT_TRUE(t->discard(2 << 20, 1 << 20).ok());  // v3 over a backing file: reads zeroes
  std::memset(&expect[2 << 20], 0, 1 << 20);
  std::vector<uint8_t> back(size);
  ASSERT_TRUE(t->read(0, back).ok());
  EXPECT_TRUE(back == expect);
  expectClean(t.get());
  t.reset();
  // The base is untouched.
  auto base = test::openOrDie(dir / "base.raw", true);
  ASSERT_TRUE(base->read(0, back).ok());
  EXPECT_TRUE(back == baseData);
  expectQemuClean(dir / "top.qcow2");
  expectQemuClean(dir / "mid.qcow2");
}

TEST(StorageQcow2, BackingSmallerThanOverlayReadsZeroesPastIt) {
  ScratchDir dir;
  ASSERT_TRUE(createRaw(dir / "base.raw", 1 << 20).ok());
  {
    auto b = test::openOrDie(dir / "base.raw");
    std::vector<uint8_t> d(1 << 20, 0x77);
    ASSERT_TRUE(b->write(0, d).ok());
  }
  auto o = qcow2Options(3 << 20);
  o.backingFile = "base.raw";
  o.backingFormat = "raw";
  ASSERT_TRUE(createQcow2(dir / "ov.qcow2", o).ok());
  auto dev = test::openOrDie(dir / "ov.qcow2");
  std::vector<uint8_t> buf(2 << 20);
  ASSERT_TRUE(dev->read(0, buf).ok());
  EXPECT_EQ(buf[(1 << 20) - 1], 0x77);
  EXPECT_EQ(buf[1 << 20], 0);
  std::vector<uint8_t> d(10, 1);
  ASSERT_TRUE(dev->write((1 << 20) - 5, d).ok());
  ASSERT_TRUE(dev->read(0, buf).ok());
  EXPECT_EQ(buf[(1 << 20) - 6], 0x77);
  EXPECT_EQ(buf[(1 << 20) + 4], 1);
  EXPECT_EQ(buf[(1 << 20) + 5], 0);
}

TEST(StorageQcow2, DiscardFreesClustersAndReadsZeroes) {
  ScratchDir dir;
  std::string path = dir / "a.qcow2";
  ASSERT_TRUE(createQcow2(path, qcow2Options(8 << 20)).ok());
  auto dev = test::openOrDie(path);
  std::vector<uint8_t> d(4 << 20, 0x33);
  ASSERT_TRUE(dev->write(0, d).ok());
  ASSERT_TRUE(dev->discard(0, 4 << 20).ok());
  std::vector<uint8_t> back(4 << 20);
  ASSERT_TRUE(dev->read(0, back).ok());
  EXPECT_TRUE(std::all_of(back.begin(), back.end(), [](uint8_t b) { return b == 0; }));
  expectClean(dev.get());
  // Freed clusters are reused.
  ASSERT_TRUE(dev->write(4 << 20, d).ok());
  auto* q = dynamic_cast<Qcow2Device*>(dev.get());
  auto r = q->check(RepairMode::None);
  ASSERT_TRUE(r.ok());
  EXPECT_LE(r->imageEndOffset, (4u << 20) + (8u << 16));
}

TEST(StorageQcow2, ResizeGrowsL1) {
  ScratchDir dir;
  std::string path = dir / "a.qcow2";
  ASSERT_TRUE(createQcow2(path, qcow2Options(64 << 10, 512)).ok());  // 512-byte clusters: L2 covers 32 KiB
  auto dev = test::openOrDie(path);
  std::vector<uint8_t> d(4096, 0x44);
  ASSERT_TRUE(dev->write(0, d).ok());
  ASSERT_TRUE(dev->resize(40 << 20).ok());
  EXPECT_EQ(dev->size(), 40u << 20);
  ASSERT_TRUE(dev->write((40 << 20) - 4096, d).ok());
  std::vector<uint8_t> back(4096);
  ASSERT_TRUE(dev->read(0, back).ok());
  EXPECT_EQ(back, d);
  ASSERT_TRUE(dev->read((40 << 20) - 4096, back).ok());
  EXPECT_EQ(back, d);
  ASSERT_TRUE(dev->read(20 << 20, back).ok());
  EXPECT_TRUE(std::all_of(back.begin(), back.end(), [](uint8_t b) { return b == 0; }));
  EXPECT_FALSE(dev->resize(1 << 20).ok());  // no qcow2 shrinking
  expectClean(dev.get());
  dev.reset();
  expectQemuClean(path);
}

TEST(StorageQcow2, RefcountTableGrows) {
  ScratchDir dir;
  std::string path = dir / "a.qcow2";
  // 512-byte clusters with 16-bit refcounts: one refcount table cluster covers 8 MiB of file.
  ASSERT_TRUE(createQcow2(path, qcow2Options(32 << 20, 512)).ok());
  auto dev = test::openOrDie(path);
  std::vector<uint8_t> d(1 << 20);
  std::mt19937_64 rng(5);
  for (int i = 0; i < 20; ++i) {
    d = test::randomBytes(rng, 1 << 20);
    ASSERT_TRUE(dev->write(uint64_t(i) << 20, d).ok());
  }
  std::vector<uint8_t> back(1 << 20);
  ASSERT_TRUE(dev->read(19 << 20, back).ok());
  EXPECT_EQ(back, d);
  expectClean(dev.get());
  dev.reset();
  expectQemuClean(path);
}

TEST(StorageQcow2, DirtyImageRefusesWritableOpen) {
  ScratchDir dir;
  std::string path = dir / "a.qcow2";
  ASSERT_TRUE(createQcow2(path, qcow2Options(1 << 20)).ok());
  {
    int fd = ::open(path.c_str(), O_RDWR);
    uint8_t b = 1;  // incompatible_features, big endian: bit 0 is the last byte
    ASSERT_EQ(::pwrite(fd, &b, 1, 79), 1);
    ::close(fd);
  }
  OpenOptions o;
  auto dev = openImage(path, o);
  ASSERT_FALSE(dev.ok());
  EXPECT_NE(dev.error().message().find("dirty"), std::string::npos);
  o.readOnly = true;
  EXPECT_TRUE(openImage(path, o).ok());
  // check -r all repairs and clears the bit.
  o.readOnly = false;
  o.repair = true;
  auto rep = openImage(path, o);
  ASSERT_TRUE(rep.ok());
  auto* q = dynamic_cast<Qcow2Device*>(rep->get());
  ASSERT_TRUE(q->check(RepairMode::All).ok());
  rep->reset();
  OpenOptions plain;
  EXPECT_TRUE(openImage(path, plain).ok());
}

TEST(StorageQcow2, ConcurrentWritersOnDisjointRanges) {
  ScratchDir dir;
  std::string path = dir / "a.qcow2";
  const uint64_t size = 64 << 20;
  ASSERT_TRUE(createQcow2(path, qcow2Options(size, 4096)).ok());
  auto dev = test::openOrDie(path);
  const int threads = 8;
  const uint64_t slice = size / threads;
  std::vector<std::thread> ts;
  std::atomic<int> failures{0};
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      std::vector<uint8_t> shadow(slice, 0);
      for (int i = 0; i < 200; ++i) {
        uint64_t len = 1 + rng() % 20000, off = rng() % (slice - len);
        auto d = test::randomBytes(rng, len);
        if (!dev->write(t * slice + off, d).ok()) ++failures;
        std::memcpy(&shadow[off], d.data(), len);
        uint64_t z = off & ~4095ull;
        if (i % 50 == 0 && z + 8192 <= slice) {
          if (!dev->discard(t * slice + z, 8192).ok()) ++failures;
          std::memset(&shadow[z], 0, 8192);  // discard without backing reads zeroes
        }
        std::vector<uint8_t> back(len);
        if (!dev->read(t * slice + off, back).ok() || std::memcmp(back.data(), &shadow[off], len) != 0) ++failures;
      }
      std::vector<uint8_t> all(slice);
      if (!dev->read(t * slice, all).ok() || all != shadow) ++failures;
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(failures.load(), 0);
  expectClean(dev.get());
  dev.reset();
  expectQemuClean(path);
}

TEST(StorageQcow2, CompressedWritesReadBackAndOverwrite) {
  ScratchDir dir;
  std::string path = dir / "a.qcow2";
  ASSERT_TRUE(createQcow2(path, qcow2Options(4 << 20)).ok());
  auto dev = test::openOrDie(path);
  auto* q = dynamic_cast<Qcow2Device*>(dev.get());
  std::vector<uint8_t> expect(4 << 20, 0);
  for (uint64_t c = 0; c < 64; ++c) {
    std::vector<uint8_t> cl(65536);
    for (size_t i = 0; i < cl.size(); ++i) cl[i] = static_cast<uint8_t>((i / 100 + c) & 0xff);
    ASSERT_TRUE(q->writeCompressed(c << 16, cl).ok());
    std::memcpy(&expect[c << 16], cl.data(), cl.size());
  }
  std::vector<uint8_t> d(3000, 0x99);
  ASSERT_TRUE(dev->write(65536 * 5 + 100, d).ok());  // COW out of a compressed cluster
  std::memcpy(&expect[65536 * 5 + 100], d.data(), d.size());
  std::vector<uint8_t> back(4 << 20);
  ASSERT_TRUE(dev->read(0, back).ok());
  EXPECT_TRUE(back == expect);
  auto r = q->check(RepairMode::None);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->compressedClusters, 63u);
  expectClean(dev.get());
  dev.reset();
  expectQemuClean(path);
}

}  // namespace
}  // namespace vmmd::storage
