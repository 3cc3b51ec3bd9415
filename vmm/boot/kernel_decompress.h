// The compression formats a Linux bzImage carries its kernel in (CONFIG_KERNEL_GZIP, _XZ, _LZMA,
// _LZ4, _ZSTD), decompressed on the host with Debian's libraries (zlib, liblzma, liblz4, libzstd)
// so the guest need not run its own decompressor. BZIP2 and LZO kernels are not recognised: the
// guest decompresses those itself, as it would under any VMM.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "base/result.h"

namespace vmmd::boot {

enum class Compression { Gzip, Xz, Lzma, Lz4Legacy, Zstd };

// The format whose magic `head` (the first bytes of a compressed payload) starts with.
std::optional<Compression> detectCompression(std::span<const uint8_t> head);
const char* compressionName(Compression kind);

// Decompresses the one stream in `in` into `out` and returns the bytes written. Bytes after the
// end of the stream are ignored (a bzImage appends the decompressed length). Corrupt or truncated
// input, or output that would not fit in `out`, is an error; nothing is written outside `out`.
// An lz4 kernel (independent 8 MiB blocks) decodes on up to `threads` threads; the other formats
// are one stream each and decode on the caller's.
Result<uint64_t> decompress(Compression kind, std::span<const uint8_t> in, std::span<uint8_t> out, unsigned threads = 1);

}  // namespace vmmd::boot
