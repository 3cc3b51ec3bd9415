#include "vmm/boot/kernel_decompress.h"

#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace vmmd::boot {
namespace {

constexpr std::array<uint8_t, 2> kGzipMagic{0x1f, 0x8b};
constexpr std::array<uint8_t, 6> kXzMagic{0xfd, '7', 'z', 'X', 'Z', 0x00};
// .lzma ("LZMA alone") has no magic; the kernel's build writes lc=3 lp=0 pb=2, properties 0x5d,
// followed by a little-endian dictionary size whose top byte is 0 for any sane size.
constexpr std::array<uint8_t, 3> kLzmaMagic{0x5d, 0x00, 0x00};
constexpr uint32_t kLz4LegacyMagic = 0x184C2102;
constexpr uint32_t kZstdMagic = 0xFD2FB528;
// The LZ4 legacy frame (lz4 -l, which the kernel build uses) cuts its input into 8 MiB blocks.
constexpr uint32_t kLz4LegacyBlock = 8u << 20;
constexpr uint64_t kLzmaMemoryLimit = 256u << 20;

template <size_t N>
bool startsWith(std::span<const uint8_t> head, const std::array<uint8_t, N>& magic) {
  return head.size() >= N && std::equal(magic.begin(), magic.end(), head.begin());
}

uint32_t le32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;  // x86 hosts only: the worker runs on the architecture it virtualises
}

Error tooLarge(Compression kind, std::span<uint8_t> out) {
  return Error(std::string(compressionName(kind)) + " kernel decompresses to more than " + std::to_string(out.size()) +
               " bytes, the room the setup header's init_size gives it");
}

Result<uint64_t> inflateGzip(std::span<const uint8_t> in, std::span<uint8_t> out) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return Error("zlib: cannot initialise inflate");
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&zs, inflateEnd);
  zs.next_in = const_cast<Bytef*>(in.data());  // zlib's API is not const-correct; it only reads
  zs.next_out = out.data();
  // zlib counts in uInt: feed and drain in pieces of at most 1 GiB.
  constexpr size_t kStep = 1u << 30;
  size_t in_left = in.size(), out_left = out.size();
  for (;;) {
    size_t feed = std::min(in_left, kStep), room = std::min(out_left, kStep);
    zs.avail_in = static_cast<uInt>(feed);
    zs.avail_out = static_cast<uInt>(room);
    int rc = inflate(&zs, Z_NO_FLUSH);
    in_left -= feed - zs.avail_in;
    out_left -= room - zs.avail_out;
    if (rc == Z_STREAM_END) return out.size() - out_left;
    if (rc == Z_BUF_ERROR && out_left == 0) return tooLarge(Compression::Gzip, out);
    if (rc == Z_BUF_ERROR && in_left == 0) return Error("gzip kernel: the stream ends early");
    if (rc != Z_OK && rc != Z_BUF_ERROR) return Error(std::string("gzip kernel: ") + (zs.msg ? zs.msg : "corrupt data"));
  }
}

Result<uint64_t> decodeLzma(Compression kind, std::span<const uint8_t> in, std::span<uint8_t> out) {
  lzma_stream stream = LZMA_STREAM_INIT;
  // The decoder's own memory (mostly the dictionary the header asks for) is capped: a kernel
  // needs 32 MiB at most; a hostile header must not make the worker allocate gigabytes.
  lzma_ret init = kind == Compression::Xz ? lzma_stream_decoder(&stream, kLzmaMemoryLimit, 0) : lzma_alone_decoder(&stream, kLzmaMemoryLimit);
  if (init != LZMA_OK) return Error(std::string("liblzma: cannot initialise the ") + compressionName(kind) + " decoder");
  std::unique_ptr<lzma_stream, void (*)(lzma_stream*)> guard(&stream, lzma_end);
  stream.next_in = in.data();
  stream.avail_in = in.size();
  stream.next_out = out.data();
  stream.avail_out = out.size();
  lzma_ret rc = LZMA_OK;
  // LZMA_OK: progress, with room and input left; it stops at the stream's end, a full output or
  // the input's end (LZMA_OK once, then LZMA_BUF_ERROR).
  while (rc == LZMA_OK && stream.avail_out > 0) rc = lzma_code(&stream, LZMA_FINISH);
  if (rc == LZMA_STREAM_END) return out.size() - stream.avail_out;
  if (stream.avail_out == 0) return tooLarge(kind, out);
  if (rc == LZMA_MEMLIMIT_ERROR) {
    return Error(std::string(compressionName(kind)) + " kernel: its dictionary needs more than " + std::to_string(kLzmaMemoryLimit >> 20) + " MiB");
  }
  if (rc == LZMA_BUF_ERROR) return Error(std::string(compressionName(kind)) + " kernel: the stream ends early");
  return Error(std::string(compressionName(kind)) + " kernel: corrupt data (liblzma error " + std::to_string(rc) + ")");
}

// lz4 -l: the magic, then blocks of [32-bit compressed size][LZ4 block], each decompressing to at
// most 8 MiB. The stream ends with the input, at a zero size, or where what follows cannot be a
// block (the bzImage's appended 4-byte length). A repeated magic starts another frame.
struct Lz4Block {
  size_t at;  // its first byte in the input, past the size
  uint32_t size;
};

std::vector<Lz4Block> lz4LegacyBlocks(std::span<const uint8_t> in) {
  std::vector<Lz4Block> blocks;
  size_t at = 4;
  while (at + 4 <= in.size()) {
    uint32_t block = le32(&in[at]);
    if (block == kLz4LegacyMagic) {
      at += 4;
      continue;
    }
    if (block == 0 || block > static_cast<uint32_t>(LZ4_compressBound(kLz4LegacyBlock)) || block > in.size() - at - 4) break;
    blocks.push_back({at + 4, block});
    at += 4 + block;
  }
  return blocks;
}

int decodeLz4Block(std::span<const uint8_t> in, const Lz4Block& block, uint8_t* out, size_t room) {
  return LZ4_decompress_safe(reinterpret_cast<const char*>(&in[block.at]), reinterpret_cast<char*>(out),
                             static_cast<int>(block.size), static_cast<int>(std::min<size_t>(room, INT_MAX)));
}

Result<uint64_t> decodeLz4LegacySerial(std::span<const uint8_t> in, const std::vector<Lz4Block>& blocks, std::span<uint8_t> out) {
  size_t written = 0;
  for (const Lz4Block& block : blocks) {
    size_t room = out.size() - written;
    if (room == 0) return tooLarge(Compression::Lz4Legacy, out);
    int n = decodeLz4Block(in, block, &out[written], room);
    if (n < 0) {
      // liblz4 says the same for a corrupt block and one that does not fit: with less room left
      // than a block may fill, decoding it once more into a whole block's room tells them apart.
      if (room < kLz4LegacyBlock) {
        std::vector<uint8_t> scratch(kLz4LegacyBlock);
        if (decodeLz4Block(in, block, scratch.data(), scratch.size()) >= 0) return tooLarge(Compression::Lz4Legacy, out);
      }
      return Error("lz4 kernel: corrupt block at byte " + std::to_string(block.at));
    }
    written += static_cast<size_t>(n);
  }
  if (written == 0) return Error("lz4 kernel: no data blocks");
  return written;
}

// The blocks are independent, and lz4 -l fills every block but the last with exactly 8 MiB, so
// block i's output starts at i * 8 MiB and several threads can each decode some (the kernel's
// 53 MB are 7 blocks). Nullopt when a block breaks that promise or does not decode: the caller
// then decodes serially, which writes every byte again and gives the exact error.
std::optional<uint64_t> decodeLz4LegacyParallel(std::span<const uint8_t> in, const std::vector<Lz4Block>& blocks,
                                                 std::span<uint8_t> out, unsigned threads) {
  size_t last_begin = (blocks.size() - 1) * size_t{kLz4LegacyBlock};
  if (threads < 2 || blocks.size() < 2 || last_begin >= out.size()) return std::nullopt;
  std::vector<int> produced(blocks.size(), -1);
  std::atomic<size_t> next{0};
  auto decodeSome = [&] {
    for (size_t i = next++; i < blocks.size(); i = next++) {
      size_t begin = i * size_t{kLz4LegacyBlock};
      size_t room = i + 1 < blocks.size() ? size_t{kLz4LegacyBlock} : out.size() - begin;
      produced[i] = decodeLz4Block(in, blocks[i], &out[begin], room);
    }
  };
  {
    std::vector<std::jthread> workers;
    for (unsigned t = 1; t < std::min<size_t>(threads, blocks.size()); ++t) {
      try {
        workers.emplace_back(decodeSome);
      } catch (const std::system_error&) {
        break;  // this thread decodes what the missing ones would have
      }
    }
    decodeSome();
  }
  for (size_t i = 0; i + 1 < blocks.size(); ++i) {
    if (produced[i] != static_cast<int>(kLz4LegacyBlock)) return std::nullopt;
  }
  if (produced.back() < 0) return std::nullopt;
  return last_begin + static_cast<uint64_t>(produced.back());
}

Result<uint64_t> decodeLz4Legacy(std::span<const uint8_t> in, std::span<uint8_t> out, unsigned threads) {
  std::vector<Lz4Block> blocks = lz4LegacyBlocks(in);
  if (blocks.empty()) return Error("lz4 kernel: no data blocks");
  if (auto written = decodeLz4LegacyParallel(in, blocks, out, threads)) return *written;
  return decodeLz4LegacySerial(in, blocks, out);
}

// One frame, decompressed in a single call: straight into `out`, with no window buffer to
// allocate whatever window size the frame header claims.
Result<uint64_t> decodeZstd(std::span<const uint8_t> in, std::span<uint8_t> out) {
  size_t frame = ZSTD_findFrameCompressedSize(in.data(), in.size());
  if (ZSTD_isError(frame)) return Error(std::string("zstd kernel: ") + ZSTD_getErrorName(frame));
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> ctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!ctx) return Error("libzstd: cannot create a decompression context");
  size_t n = ZSTD_decompressDCtx(ctx.get(), out.data(), out.size(), in.data(), frame);
  if (ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall) return tooLarge(Compression::Zstd, out);
  if (ZSTD_isError(n)) return Error(std::string("zstd kernel: ") + ZSTD_getErrorName(n));
  return n;
}

}  // namespace

std::optional<Compression> detectCompression(std::span<const uint8_t> head) {
  if (startsWith(head, kGzipMagic)) return Compression::Gzip;
  if (startsWith(head, kXzMagic)) return Compression::Xz;
  if (startsWith(head, kLzmaMagic)) return Compression::Lzma;
  if (head.size() >= 4 && le32(head.data()) == kLz4LegacyMagic) return Compression::Lz4Legacy;
  if (head.size() >= 4 && le32(head.data()) == kZstdMagic) return Compression::Zstd;
  return std::nullopt;
}

const char* compressionName(Compression kind) {
  switch (kind) {
    case Compression::Gzip: return "gzip";
    case Compression::Xz: return "xz";
    case Compression::Lzma: return "lzma";
    case Compression::Lz4Legacy: return "lz4";
    case Compression::Zstd: return "zstd";
  }
  return "?";
}

Result<uint64_t> decompress(Compression kind, std::span<const uint8_t> in, std::span<uint8_t> out, unsigned threads) {
  switch (kind) {
    case Compression::Gzip: return inflateGzip(in, out);
    case Compression::Xz:
    case Compression::Lzma: return decodeLzma(kind, in, out);
    case Compression::Lz4Legacy: return decodeLz4Legacy(in, out, threads);
    case Compression::Zstd: return decodeZstd(in, out);
  }
  return Error("unknown compression");
}

}  // namespace vmmd::boot
