// readv/writev through the block layer: the buffer-list helper, ImageFile's preadv/pwritev loop
// (more buffers than IOV_MAX, end of file), and raw and qcow2 devices driven with guest-like
// page lists against a shadow copy, over every kind of qcow2 cluster (unallocated with a backing
// file, zero, compressed, normal), buffered and O_DIRECT.
#include <gtest/gtest.h>

#include <climits>
#include <cstring>
#include <random>

#include "storage/image_file.h"
#include "storage/io_vector.h"
#include "storage/qcow2.h"
#include "storage/raw.h"
#include "tests/storage/test_util.h"

namespace vmmd::storage {
namespace {

using test::ScratchDir;

TEST(StorageBufferList, SliceTrimsTheEndsAndSkipsEmptyBuffers) {
  std::vector<uint8_t> a{0, 1, 2}, c{3, 4, 5, 6, 7}, d{8, 9, 10, 11, 12, 13, 14};
  const std::span<const uint8_t> parts[] = {a, {}, c, d};
  WriteSource src(parts);
  EXPECT_EQ(src.size(), 15u);
  auto s = src.slice(2, 9);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].data(), a.data() + 2);
  EXPECT_EQ(s[0].size(), 1u);
  EXPECT_EQ(s[1].size(), 5u);
  EXPECT_EQ(s[2].data(), d.data());
  EXPECT_EQ(s[2].size(), 3u);
  EXPECT_TRUE(src.slice(15, 0).empty());
  EXPECT_EQ(src.slice(14, 1).front().data(), d.data() + 6);
  std::vector<uint8_t> out(6);
  src.copyTo(5, out);
  EXPECT_EQ(out, (std::vector<uint8_t>{5, 6, 7, 8, 9, 10}));
}

// Splits [0, n) into pieces of random sizes (multiples of `grain`, at most `largest`).
std::vector<std::pair<size_t, size_t>> randomPieces(std::mt19937_64& rng, size_t n, size_t grain, size_t largest) {
  std::vector<std::pair<size_t, size_t>> pieces;
  for (size_t at = 0; at < n;) {
    size_t len = std::min(n - at, grain * (1 + rng() % (largest / grain)));
    pieces.emplace_back(at, len);
    at += len;
  }
  return pieces;
}

template <class Byte, class Bytes>
std::vector<std::span<Byte>> spansOf(Bytes& data, const std::vector<std::pair<size_t, size_t>>& pieces) {
  std::vector<std::span<Byte>> spans;
  for (auto [at, len] : pieces) spans.emplace_back(data.data() + at, len);
  return spans;
}

TEST(StorageImageFile, VectorsLongerThanIovMaxAndPastTheEnd) {
  ScratchDir dir;
  ASSERT_TRUE(createRaw(dir / "f.raw", 0).ok());
  auto file = ImageFile::open(dir / "f.raw", false, CacheMode::Writeback);
  ASSERT_TRUE(file.ok());
  std::mt19937_64 rng(7);
  auto data = test::randomBytes(rng, 3 * IOV_MAX * 512 + 100);
  auto pieces = randomPieces(rng, data.size() - 100, 512, 512);
  pieces.emplace_back(data.size() - 100, 100);
  ASSERT_GT(pieces.size(), size_t{IOV_MAX} * 2);
  ASSERT_TRUE((*file)->writev(4096, spansOf<const uint8_t>(data, pieces)).ok());

  // Read it back in other pieces, with 3000 bytes more than the file holds: those read as zeroes.
  std::vector<uint8_t> back(4096 + data.size() + 3000, 0xee);
  auto readPieces = randomPieces(rng, back.size(), 1, 700);
  ASSERT_TRUE((*file)->readv(0, spansOf<uint8_t>(back, readPieces)).ok());
  EXPECT_TRUE(std::all_of(back.begin(), back.begin() + 4096, [](uint8_t b) { return b == 0; }));
  EXPECT_TRUE(std::equal(data.begin(), data.end(), back.begin() + 4096));
  EXPECT_TRUE(std::all_of(back.end() - 3000, back.end(), [](uint8_t b) { return b == 0; }));
}

// Page-aligned memory for O_DIRECT, as guest RAM is.
struct AlignedBytes {
  explicit AlignedBytes(size_t n) : size_(n) {
    void* p = nullptr;
    EXPECT_EQ(posix_memalign(&p, 4096, n), 0);
    mem_.reset(static_cast<uint8_t*>(p));
  }
  uint8_t* data() { return mem_.get(); }
  size_t size() const { return size_; }
  std::span<uint8_t> span() { return {data(), size_}; }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> mem_;
  size_t size_;
};

struct VectoredCase {
  const char* name;
  ImageFormat format;
  uint32_t cluster;
  CacheMode cache;
};

class StorageVectored : public ::testing::TestWithParam<VectoredCase> {};

// Requests as a guest issues them (a list of 512-byte-aligned pieces of one range, each at most
// a page) against a shadow copy; the qcow2 overlay starts with every kind of cluster, over a
// backing file shorter than itself.
TEST_P(StorageVectored, GuestLikeRequestsMatchAShadowCopy) {
  const VectoredCase& c = GetParam();
  ScratchDir dir;
  const uint64_t size = 8 << 20;
  std::mt19937_64 rng(c.cluster + static_cast<int>(c.cache));
  std::vector<uint8_t> shadow(size, 0);
  std::string path = dir / "disk";
  if (c.format == ImageFormat::Raw) {
    ASSERT_TRUE(createRaw(path, size).ok());
  } else {
    // The base ends 385 sectors short of the overlay: the overlay reads zeroes past it.
    const uint64_t baseSize = size - 385 * 512;
    ASSERT_TRUE(createRaw(dir / "base.raw", baseSize).ok());
    shadow = test::randomBytes(rng, size);
    std::memset(&shadow[baseSize], 0, size - baseSize);
    {
      auto base = test::openOrDie(dir / "base.raw");
      ASSERT_TRUE(base->write(0, std::span(shadow.data(), baseSize)).ok());
    }
    Qcow2CreateOptions o;
    o.size = size;
    o.clusterSize = c.cluster;
    o.backingFile = "base.raw";
    o.backingFormat = "raw";
    ASSERT_TRUE(createQcow2(path, o).ok());
    auto dev = test::openOrDie(path);
    auto* q = dynamic_cast<Qcow2Device*>(dev.get());
    ASSERT_NE(q, nullptr);
    std::vector<uint8_t> cl(c.cluster);
    for (size_t i = 0; i < cl.size(); ++i) cl[i] = static_cast<uint8_t>(i / 64);
    for (uint64_t at = 0; at < size / 2; at += 3 * c.cluster) {  // compressed clusters
      ASSERT_TRUE(q->writeCompressed(at, cl).ok());
      std::memcpy(&shadow[at], cl.data(), cl.size());
    }
    for (uint64_t at = size / 2; at < size; at += 5 * c.cluster) {  // zero clusters over the base
      ASSERT_TRUE(dev->writeZeroes(at, c.cluster).ok());
      std::memset(&shadow[at], 0, c.cluster);
    }
  }
  OpenOptions o;
  o.cache = c.cache;
  auto opened = openImage(path, o);
  ASSERT_TRUE(opened.ok()) << opened.error().message();
  auto& dev = *opened;

  for (int round = 0; round < 60; ++round) {
    const uint64_t length = 512 * (1 + rng() % 2048);  // up to 1 MiB
    const uint64_t offset = 512 * (rng() % ((size - length) / 512 + 1));
    AlignedBytes buf(length);
    if (rng() % 3) {
      auto data = test::randomBytes(rng, length);
      std::memcpy(buf.data(), data.data(), length);
      auto pieces = randomPieces(rng, length, 512, 4096);
      ASSERT_TRUE(dev->writev(offset, spansOf<const uint8_t>(buf, pieces)).ok()) << "round " << round;
      std::memcpy(&shadow[offset], data.data(), length);
    } else {
      auto pieces = randomPieces(rng, length, 512, 4096);
      ASSERT_TRUE(dev->readv(offset, spansOf<uint8_t>(buf, pieces)).ok()) << "round " << round;
      ASSERT_EQ(std::memcmp(buf.data(), &shadow[offset], length), 0) << "round " << round << " at " << offset;
    }
  }
  // Starting inside a cluster (in the qcow2 case, cluster 0 is compressed unless overwritten).
  {
    const uint64_t at = 1536, length = 3 * 65536;
    AlignedBytes some(length);
    auto pieces = randomPieces(rng, length, 512, 4096);
    ASSERT_TRUE(dev->readv(at, spansOf<uint8_t>(some, pieces)).ok());
    EXPECT_EQ(std::memcmp(some.data(), &shadow[at], length), 0);
  }
  AlignedBytes all(size);
  auto pieces = randomPieces(rng, size, 512, 65536);
  ASSERT_TRUE(dev->readv(0, spansOf<uint8_t>(all, pieces)).ok());
  EXPECT_EQ(std::memcmp(all.data(), shadow.data(), size), 0);
  // A request past the end is refused as a whole.
  EXPECT_FALSE(dev->writev(size - 512, spansOf<const uint8_t>(all, {{0, 512}, {512, 512}})).ok());
  dev.reset();
  if (c.format == ImageFormat::Qcow2 && test::haveQemuImg()) {
    auto r = test::qemuCheck(path);
    EXPECT_EQ(r.status, 0) << r.output;
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, StorageVectored,
                         ::testing::Values(VectoredCase{"raw", ImageFormat::Raw, 0, CacheMode::Writeback},
                                           VectoredCase{"raw_direct", ImageFormat::Raw, 0, CacheMode::None},
                                           VectoredCase{"qcow2_4k", ImageFormat::Qcow2, 4096, CacheMode::Writeback},
                                           VectoredCase{"qcow2_64k", ImageFormat::Qcow2, 65536, CacheMode::Writeback},
                                           VectoredCase{"qcow2_64k_direct", ImageFormat::Qcow2, 65536, CacheMode::None},
                                           VectoredCase{"qcow2_1m", ImageFormat::Qcow2, 1 << 20, CacheMode::Writeback}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace vmmd::storage
