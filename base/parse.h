// The one parser of each kind of value people write as text: in the worker's QEMU-style command
// line (-m, -smp, -drive, -device properties), in vmm-img's arguments and -o options, in vmctl's
// arguments and in vmmd's VM definitions. The rules are QEMU's, so one text means the same to
// vmm, vmm-img, vmmd and QEMU. Errors say what the text is not ("'lots' is not a size ...");
// callers add which option or field it was.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/result.h"

namespace vmmd {

// An unsigned integer: decimal ("42") or hexadecimal after 0x or 0X ("0x2a"), at most 2^64 - 1;
// no sign, no spaces. QEMU reads a leading 0 as octal (strtoull, base 0); so that "010" never
// means 8 to QEMU and 10 here, a decimal number with a leading 0 is an error.
Result<uint64_t> parseUnsigned(std::string_view text);

// A size in bytes, as QEMU's qemu_strtosz reads it (qemu-img sizes, -m, size options):
//   - a decimal number, with or without a fraction ("1.5", ".5", "1."), or a hexadecimal one
//     ("0x1000", without fraction or suffix);
//   - then at most one suffix letter, in either case: B or b for bytes, K, M, G, T, P, E for
//     powers of 1024 ("64k" = 65536, "1m" = "1M" = 1048576). "KB", "MiB", "1e3" are not sizes;
//   - without a suffix the number counts `default_unit` bytes: 1 for qemu-img and size options,
//     1 MiB for -m ("-m 512" is 512 MiB);
//   - a fraction needs a unit larger than a byte ("1.5" bytes is an error) and is rounded to
//     the nearest byte ("1.1k" = 1126);
//   - the result must fit in 64 bits.
Result<uint64_t> parseSize(std::string_view text, uint64_t default_unit = 1);

// A boolean as QEMU's qapi_bool_parse reads it: on, yes, true, y / off, no, false, n.
Result<bool> parseOnOff(std::string_view text);

// QEMU's disk cache modes (-drive cache=, qemu-img -t/-T, a definition's disks[].cache), and
// what each means for the host page cache and for the guest's flushes:
//   mode            direct (O_DIRECT)   guest flushes
//   writeback       no                  honoured        (the default)
//   none ("off")    yes                 honoured
//   writethrough    no                  honoured
//   directsync      yes                 honoured
//   unsafe          no                  ignored
// In QEMU writethrough and directsync also show the guest a write-through cache; vmm's
// virtio-blk flushes when the guest asks instead, so they behave as writeback and none.
enum class DiskCache { kWriteback, kNone, kWritethrough, kDirectsync, kUnsafe };

struct DiskCacheFlags {
  bool direct = false;    // bypass the host page cache
  bool no_flush = false;  // ignore the guest's flushes
};

Result<DiskCache> parseDiskCache(std::string_view text);
// The canonical name ("none" for a mode parsed from "off").
std::string_view diskCacheName(DiskCache cache);
DiskCacheFlags diskCacheFlags(DiskCache cache);

}  // namespace vmmd
