// The bzImage payload formats, made here with the same libraries' encoders (and the lz4 legacy
// framing the kernel's build writes with `lz4 -l`), each followed by the 4-byte length a
// bzImage appends: what decompresses, and what is refused.
#include "vmm/boot/kernel_decompress.h"

#include <gtest/gtest.h>
#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <cstddef>
#include <cstring>
#include <random>
#include <span>
#include <vector>

namespace vmmd::boot {
namespace {

using Bytes = std::vector<uint8_t>;

// Compressible but not trivial: a kernel-like mix of repeats and noise.
Bytes sampleData(size_t size) {
  Bytes data(size);
  std::mt19937 rng(7);
  for (size_t i = 0; i < size; ++i) data[i] = (i % 97 < 60) ? static_cast<uint8_t>(i / 97) : static_cast<uint8_t>(rng());
  return data;
}

void appendLength(Bytes& out, uint32_t length) {
  uint8_t le[4];
  std::memcpy(le, &length, 4);
  out.insert(out.end(), le, le + 4);
}

Bytes gzipOf(const Bytes& data) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  Bytes out(deflateBound(&zs, data.size()) + 64);
  zs.next_in = const_cast<Bytef*>(data.data());
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

Bytes xzOf(const Bytes& data) {
  Bytes out(lzma_stream_buffer_bound(data.size()));
  size_t pos = 0;
  EXPECT_EQ(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, nullptr, data.data(), data.size(), out.data(), &pos, out.size()), LZMA_OK);
  out.resize(pos);
  return out;
}

Bytes lzmaAloneOf(const Bytes& data) {
  lzma_options_lzma options;
  lzma_lzma_preset(&options, 6);
  lzma_stream stream = LZMA_STREAM_INIT;
  EXPECT_EQ(lzma_alone_encoder(&stream, &options), LZMA_OK);
  Bytes out(data.size() * 2 + 1024);
  stream.next_in = data.data();
  stream.avail_in = data.size();
  stream.next_out = out.data();
  stream.avail_out = out.size();
  EXPECT_EQ(lzma_code(&stream, LZMA_FINISH), LZMA_STREAM_END);
  out.resize(stream.total_out);
  lzma_end(&stream);
  return out;
}

// lz4 -l: magic, then [size][block] per 8 MiB of input.
Bytes lz4LegacyOf(const Bytes& data) {
  Bytes out = {0x02, 0x21, 0x4c, 0x18};
  for (size_t at = 0; at < data.size(); at += 8u << 20) {
    int chunk = static_cast<int>(std::min<size_t>(8u << 20, data.size() - at));
    Bytes block(LZ4_compressBound(chunk));
    int n = LZ4_compress_default(reinterpret_cast<const char*>(&data[at]), reinterpret_cast<char*>(block.data()), chunk,
                                 static_cast<int>(block.size()));
    EXPECT_GT(n, 0);
    appendLength(out, static_cast<uint32_t>(n));
    out.insert(out.end(), block.begin(), block.begin() + n);
  }
  return out;
}

Bytes zstdOf(const Bytes& data) {
  Bytes out(ZSTD_compressBound(data.size()));
  size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), 19);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

struct Format {
  Compression kind;
  Bytes (*make)(const Bytes&);
};

class KernelDecompress : public ::testing::TestWithParam<Format> {
 protected:
  // As a bzImage carries it: the stream, then the decompressed length.
  Bytes payload(const Bytes& data) {
    Bytes out = GetParam().make(data);
    appendLength(out, static_cast<uint32_t>(data.size()));
    return out;
  }
};

TEST_P(KernelDecompress, RecognisesAndRestoresTheData) {
  // Over 8 MiB, so lz4 takes more than one block.
  Bytes data = sampleData((9u << 20) + 12345);
  Bytes in = payload(data);
  EXPECT_EQ(detectCompression(in), GetParam().kind);
  Bytes out(data.size() + (1u << 20), 0xAA);
  auto size = decompress(GetParam().kind, in, out);
  ASSERT_TRUE(size.ok()) << size.error().message();
  ASSERT_EQ(*size, data.size());
  EXPECT_TRUE(std::equal(data.begin(), data.end(), out.begin()));
  EXPECT_EQ(out[data.size()], 0xAA) << "nothing written past the data";
}

TEST_P(KernelDecompress, RefusesOutputLargerThanTheRoom) {
  Bytes data = sampleData(1u << 20);
  Bytes in = payload(data);
  Bytes out(data.size() / 2 + 4096);
  out.resize(data.size() / 2);  // the capacity past size() is not the decompressor's to use
  auto size = decompress(GetParam().kind, in, out);
  ASSERT_FALSE(size.ok());
  EXPECT_NE(size.error().message().find(std::to_string(out.size())), std::string::npos) << size.error().message();
}

TEST_P(KernelDecompress, RefusesATruncatedStream) {
  Bytes data = sampleData(1u << 20);
  Bytes in = GetParam().make(data);
  in.resize(in.size() / 2);
  Bytes out(data.size());
  auto size = decompress(GetParam().kind, in, out);
  // lz4's legacy frame has no end marker: a cut between blocks would look complete; this cut is
  // inside its one block, which is then not a whole block and is not taken.
  if (size.ok()) {
    EXPECT_LT(*size, data.size());
  } else {
    EXPECT_FALSE(size.error().message().empty());
  }
}

TEST_P(KernelDecompress, RefusesCorruptData) {
  Bytes data = sampleData(1u << 20);
  Bytes in = payload(data);
  // Flip bytes through the middle of the stream (past any header).
  for (size_t i = in.size() / 3; i < in.size() / 3 + 64; ++i) in[i] ^= 0x5A;
  Bytes out(data.size());
  auto size = decompress(GetParam().kind, in, out);
  if (size.ok()) {
    // A format without a checksum of its data (lz4 legacy) may decode garbage: never past `out`,
    // and never the original.
    EXPECT_LE(*size, out.size());
    EXPECT_FALSE(*size == data.size() && std::equal(data.begin(), data.end(), out.begin()));
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, KernelDecompress,
                         ::testing::Values(Format{Compression::Gzip, gzipOf}, Format{Compression::Xz, xzOf},
                                           Format{Compression::Lzma, lzmaAloneOf}, Format{Compression::Lz4Legacy, lz4LegacyOf},
                                           Format{Compression::Zstd, zstdOf}),
                         [](const auto& info) { return std::string(compressionName(info.param.kind)); });

TEST(KernelDecompressDetect, UnknownFormatsAreNotClaimed) {
  EXPECT_FALSE(detectCompression(Bytes{'B', 'Z', 'h', '9'}).has_value());         // bzip2: the guest's job
  EXPECT_FALSE(detectCompression(Bytes{0x89, 'L', 'Z', 'O', 0, 0x0d}).has_value());  // lzo
  EXPECT_FALSE(detectCompression(Bytes{0x1f}).has_value());                        // too short for any magic
  EXPECT_FALSE(detectCompression(Bytes{}).has_value());
}

// liblz4 reports a corrupt block and one too large for the room alike; the message must not.
TEST(KernelDecompressDetect, Lz4TellsACorruptBlockFromOneThatDoesNotFit) {
  Bytes data = sampleData(1u << 20);
  Bytes in = lz4LegacyOf(data);
  Bytes small(data.size() / 2);
  auto too_large = decompress(Compression::Lz4Legacy, in, small);
  ASSERT_FALSE(too_large.ok());
  EXPECT_NE(too_large.error().message().find("decompresses to more than"), std::string::npos) << too_large.error().message();
  // A match offset pointing before the start of the output: corrupt whatever the room.
  Bytes corrupt = {0x02, 0x21, 0x4c, 0x18, 4, 0, 0, 0, 0x0f, 0xff, 0xff, 0x00};
  auto bad = decompress(Compression::Lz4Legacy, corrupt, small);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("corrupt block"), std::string::npos) << bad.error().message();
}

TEST(KernelDecompressDetect, Lz4WithoutBlocksIsAnError) {
  Bytes in = {0x02, 0x21, 0x4c, 0x18, 0, 0, 0, 0};
  Bytes out(4096);
  EXPECT_FALSE(decompress(Compression::Lz4Legacy, in, out).ok());
}

// lz4 -l with its 8 MiB blocks decoded by several threads at once: the same bytes as one thread,
// for every thread count, a last block of any length, and nothing written past the room.
TEST(KernelDecompressLz4Threads, SameOutputOnAnyNumberOfThreads) {
  Bytes data = sampleData((3u << 23) + 777);  // three whole blocks and a short fourth
  Bytes in = lz4LegacyOf(data);
  appendLength(in, static_cast<uint32_t>(data.size()));
  for (unsigned threads : {1u, 2u, 3u, 4u, 16u}) {
    // The room is exactly the data (liblz4 may write scratch bytes anywhere in the room it is
    // given); the bytes past it are a guard.
    Bytes out(data.size() + 4096, 0xAA);
    auto size = decompress(Compression::Lz4Legacy, in, std::span<uint8_t>(out).first(data.size()), threads);
    ASSERT_TRUE(size.ok()) << threads << " threads: " << size.error().message();
    ASSERT_EQ(*size, data.size()) << threads << " threads";
    EXPECT_TRUE(std::equal(data.begin(), data.end(), out.begin())) << threads << " threads";
    EXPECT_EQ(out[data.size()], 0xAA) << threads << " threads";
  }
}

// A frame whose first block holds less than 8 MiB is valid, but its second block's output does
// not start at 8 MiB: the threads' result is thrown away and the frame decoded in order.
TEST(KernelDecompressLz4Threads, ShortInnerBlockFallsBackToOrder) {
  Bytes first = sampleData(1u << 20), second = sampleData(2u << 20);
  Bytes in = lz4LegacyOf(first), tail = lz4LegacyOf(second);
  in.insert(in.end(), tail.begin() + 4, tail.end());  // the second frame's blocks, without its magic
  // Room for the second block at 8 MiB, so the threads do decode it there and the result has to
  // be thrown away (with less room the parallel path is not even tried).
  Bytes out((8u << 20) + second.size() + 4096, 0xAA);
  auto size = decompress(Compression::Lz4Legacy, in, out, 4);
  ASSERT_TRUE(size.ok()) << size.error().message();
  ASSERT_EQ(*size, first.size() + second.size());
  EXPECT_TRUE(std::equal(first.begin(), first.end(), out.begin()));
  EXPECT_TRUE(std::equal(second.begin(), second.end(), out.begin() + static_cast<std::ptrdiff_t>(first.size())));
}

// A corrupt third block and a frame larger than the room give the errors one thread gives.
TEST(KernelDecompressLz4Threads, ErrorsAreTheSerialOnes) {
  Bytes data = sampleData((3u << 23) + 777);
  Bytes in = lz4LegacyOf(data);
  Bytes out(data.size());
  Bytes small(data.size() - 1000);
  auto too_large = decompress(Compression::Lz4Legacy, in, small, 4);
  ASSERT_FALSE(too_large.ok());
  EXPECT_NE(too_large.error().message().find("decompresses to more than"), std::string::npos) << too_large.error().message();
  // The third block's first sequence token: a literal run then a match offset of 0xffff, before
  // the block's start.
  size_t at = 4;
  for (int block = 0; block < 2; ++block) {
    uint32_t length;
    std::memcpy(&length, &in[at], 4);
    at += 4 + length;
  }
  Bytes corrupt = in;
  const uint8_t bad_block[] = {0x0f, 0xff, 0xff, 0x00};
  std::memcpy(&corrupt[at + 4], bad_block, sizeof bad_block);
  auto bad = decompress(Compression::Lz4Legacy, corrupt, out, 4);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("corrupt block at byte " + std::to_string(at + 4)), std::string::npos) << bad.error().message();
}

TEST(KernelDecompressDetect, XzAskingForAHugeDictionaryIsRefused) {
  // An .lzma header claiming a 4 GiB dictionary: refused by the memory cap, not allocated.
  Bytes in = {0x5d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0};
  Bytes out(4096);
  auto size = decompress(Compression::Lzma, in, out);
  EXPECT_FALSE(size.ok());
}

}  // namespace
}  // namespace vmmd::boot
