// Interop with real qemu-img: images QEMU makes read and write correctly with ours, images we make
// or modify pass `qemu-img check` and compare identical to a raw shadow copy.
#include <gtest/gtest.h>

#include <cstring>

#include "storage/qcow2.h"
#include "storage/raw.h"
#include "tests/storage/test_util.h"

namespace vmmd::storage {
namespace {

using test::run;
using test::ScratchDir;

std::vector<uint8_t> readAll(BlockDevice* dev) {
  std::vector<uint8_t> v(dev->size());
  auto r = dev->read(0, v);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  return v;
}

void writeFile(const std::string& path, const std::vector<uint8_t>& data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(std::fwrite(data.data(), 1, data.size(), f), data.size());
  std::fclose(f);
}

// Some random, some compressible, some zero.
std::vector<uint8_t> mixedData(std::mt19937_64& rng, size_t size) {
  std::vector<uint8_t> v(size, 0);
  for (size_t off = 0; off < size; off += 256 << 10) {
    size_t len = std::min<size_t>(256 << 10, size - off);
    switch (rng() % 3) {
      case 0: {
        auto r = test::randomBytes(rng, len);
        std::memcpy(&v[off], r.data(), len);
        break;
      }
      case 1:
        for (size_t i = 0; i < len; ++i) v[off + i] = static_cast<uint8_t>((i / 64) ^ (off >> 18));
        break;
      default: break;
    }
  }
  return v;
}

void expectQemuClean(const std::string& path) {
  auto r = test::qemuCheck(path);
  EXPECT_EQ(r.status, 0) << path << ": " << r.output;
}

void expectQemuIdentical(const std::string& a, const std::string& b) {
  auto r = run("qemu-img compare " + a + " " + b);
  EXPECT_EQ(r.status, 0) << r.output;
}

// Random writes, zeroes and discards to dev and the same to a raw shadow.
void stress(BlockDevice* dev, BlockDevice* shadow, std::mt19937_64& rng, int ops, uint64_t maxLen) {
  auto* q = dynamic_cast<Qcow2Device*>(dev);
  const uint64_t cluster = q ? q->clusterSize() : 65536;
  const uint64_t size = dev->size();
  for (int i = 0; i < ops; ++i) {
    uint64_t len = 1 + rng() % maxLen;
    uint64_t off = rng() % (size - len);
    int what = static_cast<int>(rng() % 20);
    if (what == 0) {
      ASSERT_TRUE(dev->writeZeroes(off, len).ok());
      ASSERT_TRUE(shadow->writeZeroes(off, len).ok());
    } else if (what == 1 && !dev->backing()) {
      // Without a backing file, discarded whole clusters read as zeroes: mirror with zeroes on a
      // cluster-aligned range.
      uint64_t a = off & ~(cluster - 1), l = (len + cluster - 1) & ~(cluster - 1);
      if (a + l > size) continue;
      ASSERT_TRUE(dev->discard(a, l).ok());
      ASSERT_TRUE(shadow->writeZeroes(a, l).ok());
    } else {
      auto d = test::randomBytes(rng, len);
      ASSERT_TRUE(dev->write(off, d).ok());
      ASSERT_TRUE(shadow->write(off, d).ok());
    }
  }
}

class StorageInterop : public ::testing::TestWithParam<uint32_t> {};

TEST_P(StorageInterop, QemuMadeImageReadsAndWrites) {
  REQUIRE_QEMU_IMG();
  const uint32_t cluster = GetParam();
  ScratchDir dir;
  const uint64_t size = 8 << 20;
  std::mt19937_64 rng(cluster);
  auto data = mixedData(rng, size);
  writeFile(dir / "src.raw", data);
  auto r = run("qemu-img convert -O qcow2 -o cluster_size=" + std::to_string(cluster) + " " + dir / "src.raw " +
               dir / "q.qcow2");
  ASSERT_EQ(r.status, 0) << r.output;
  auto dev = test::openOrDie(dir / "q.qcow2");
  ASSERT_TRUE(dev);
  EXPECT_TRUE(readAll(dev.get()) == data);
  auto shadow = test::openOrDie(dir / "src.raw", false, ImageFormat::Raw);
  stress(dev.get(), shadow.get(), rng, 200, 200000);
  dev.reset();
  shadow.reset();
  expectQemuClean(dir / "q.qcow2");
  expectQemuIdentical(dir / "src.raw", dir / "q.qcow2");
}

TEST_P(StorageInterop, CompressedImageReadsAndWrites) {
  REQUIRE_QEMU_IMG();
  const uint32_t cluster = GetParam();
  ScratchDir dir;
  const uint64_t size = 4 << 20;
  std::mt19937_64 rng(cluster + 1);
  auto data = mixedData(rng, size);
  writeFile(dir / "src.raw", data);
  auto r = run("qemu-img convert -c -O qcow2 -o cluster_size=" + std::to_string(cluster) + " " + dir / "src.raw " +
               dir / "c.qcow2");
  ASSERT_EQ(r.status, 0) << r.output;
  auto dev = test::openOrDie(dir / "c.qcow2");
  ASSERT_TRUE(dev);
  EXPECT_TRUE(readAll(dev.get()) == data);
  auto shadow = test::openOrDie(dir / "src.raw", false, ImageFormat::Raw);
  stress(dev.get(), shadow.get(), rng, 100, 100000);
  dev.reset();
  shadow.reset();
  expectQemuClean(dir / "c.qcow2");
  expectQemuIdentical(dir / "src.raw", dir / "c.qcow2");
}

INSTANTIATE_TEST_SUITE_P(Clusters, StorageInterop, ::testing::Values(4096u, 65536u, 2u << 20),
                         [](const auto& info) { return "c" + std::to_string(info.param); });

TEST(StorageInterop, QemuOverlayWithBackingFile) {
  REQUIRE_QEMU_IMG();
  ScratchDir dir;
  const uint64_t size = 8 << 20;
  std::mt19937_64 rng(7);
  auto data = mixedData(rng, size);
  writeFile(dir / "base.raw", data);
  writeFile(dir / "shadow.raw", data);
  ASSERT_EQ(run("qemu-img convert -O qcow2 " + dir / "base.raw " + dir / "base.qcow2").status, 0);
  auto r = run("qemu-img create -f qcow2 -o cluster_size=4096 -b base.qcow2 -F qcow2 " + dir / "ov.qcow2");
  ASSERT_EQ(r.status, 0) << r.output;
  ASSERT_EQ(run("qemu-io -c 'write -P 0x5a 1000 300000' " + dir / "ov.qcow2").status, 0);
  std::memset(&data[1000], 0x5a, 300000);
  auto dev = test::openOrDie(dir / "ov.qcow2");
  ASSERT_TRUE(dev);
  EXPECT_TRUE(readAll(dev.get()) == data);
  writeFile(dir / "shadow.raw", data);
  auto shadow = test::openOrDie(dir / "shadow.raw", false, ImageFormat::Raw);
  stress(dev.get(), shadow.get(), rng, 200, 100000);
  dev.reset();
  shadow.reset();
  expectQemuClean(dir / "ov.qcow2");
  expectQemuClean(dir / "base.qcow2");
  expectQemuIdentical(dir / "shadow.raw", dir / "ov.qcow2");
  expectQemuIdentical(dir / "base.raw", dir / "base.qcow2");  // base untouched
}

TEST(StorageInterop, QemuV2Image) {
  REQUIRE_QEMU_IMG();
  ScratchDir dir;
  ASSERT_EQ(run("qemu-img create -f qcow2 -o compat=0.10 " + dir / "v2.qcow2 8M").status, 0);
  ASSERT_EQ(run("qemu-io -c 'write -P 0x11 0 1M' " + dir / "v2.qcow2").status, 0);
  std::vector<uint8_t> data(8 << 20, 0);
  std::memset(data.data(), 0x11, 1 << 20);
  writeFile(dir / "shadow.raw", data);
  auto dev = test::openOrDie(dir / "v2.qcow2");
  ASSERT_TRUE(dev);
  EXPECT_TRUE(readAll(dev.get()) == data);
  auto shadow = test::openOrDie(dir / "shadow.raw", false, ImageFormat::Raw);
  std::mt19937_64 rng(9);
  stress(dev.get(), shadow.get(), rng, 200, 100000);
  dev.reset();
  shadow.reset();
  expectQemuClean(dir / "v2.qcow2");
  expectQemuIdentical(dir / "shadow.raw", dir / "v2.qcow2");
  auto info = run("qemu-img info " + dir / "v2.qcow2");
  EXPECT_NE(info.output.find("compat: 0.10"), std::string::npos) << info.output;
}

// Thousands of random writes of random offsets and lengths into one of our images over a backing
// file, mirrored into a raw shadow: identical and clean at the end.
TEST(StorageInterop, RandomWriteStressAgainstRawShadow) {
  REQUIRE_QEMU_IMG();
  ScratchDir dir;
  const uint64_t size = 32 << 20;
  std::mt19937_64 rng(2024);
  auto data = mixedData(rng, size);
  writeFile(dir / "base.raw", data);
  writeFile(dir / "shadow.raw", data);
  Qcow2CreateOptions c;
  c.size = size;
  c.clusterSize = 16384;
  c.backingFile = "base.raw";
  c.backingFormat = "raw";
  ASSERT_TRUE(createQcow2(dir / "ov.qcow2", c).ok());
  auto dev = test::openOrDie(dir / "ov.qcow2");
  auto shadow = test::openOrDie(dir / "shadow.raw", false, ImageFormat::Raw);
  stress(dev.get(), shadow.get(), rng, 2000, 128 << 10);
  EXPECT_TRUE(readAll(dev.get()) == readAll(shadow.get()));
  dev.reset();
  shadow.reset();
  expectQemuClean(dir / "ov.qcow2");
  expectQemuIdentical(dir / "shadow.raw", dir / "ov.qcow2");
}

TEST(StorageInterop, OurImagesWithBackingPassQemuInfo) {
  REQUIRE_QEMU_IMG();
  ScratchDir dir;
  Qcow2CreateOptions c;
  c.size = 1 << 20;
  ASSERT_TRUE(createQcow2(dir / "base.qcow2", c).ok());
  c.backingFile = "base.qcow2";
  c.backingFormat = "qcow2";
  ASSERT_TRUE(createQcow2(dir / "top.qcow2", c).ok());
  auto info = run("qemu-img info --backing-chain " + dir / "top.qcow2");
  EXPECT_EQ(info.status, 0) << info.output;
  EXPECT_NE(info.output.find("backing file format: qcow2"), std::string::npos) << info.output;
  expectQemuClean(dir / "top.qcow2");
}

}  // namespace
}  // namespace vmmd::storage
