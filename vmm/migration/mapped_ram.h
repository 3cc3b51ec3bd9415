// mapped-ram (docs/migration-stream.md, "mapped-ram files"), as QEMU 9's capability of that name:
// a state file whose RAM lies at fixed, 2 MiB aligned offsets, one slot per guest page, so a
// destination maps it (MAP_PRIVATE: the guest's writes stay in its memory, pages load when
// touched) instead of reading and copying every page. Passes of a live save rewrite dirty pages
// in place. Which pages hold data is a bitmap written at the end; pages without data are holes
// (zero) in the file.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"
#include "vmm/migration/byte_channel.h"
#include "vmm/migration/stream_reader.h"
#include "vmm/migration/stream_writer.h"

namespace vmmd::migration {

struct MappedRegion {
  uint64_t guest_address;
  uint64_t size;
  uint64_t data_offset;  // from the first byte of the stream's header
};

struct RamLayout {
  std::vector<MappedRegion> regions;
  uint64_t state_offset = 0;  // where the bitmap, State and End sections start

  std::vector<uint8_t> encode() const;
  static Result<RamLayout> decode(std::span<const uint8_t> payload);
  // Bytes of the RamLayout section (framing included) for `regions` regions.
  static uint64_t sectionBytes(size_t regions);
};

// Places `ram`'s regions after the first `used` bytes of the stream.
RamLayout planLayout(std::span<const RamRegion> ram, uint64_t used);

// That a file's layout is this machine's RAM, aligned and in order, with `header_end` the byte
// after the RamLayout section: else an error saying what differs.
Status checkLayout(const RamLayout& layout, std::span<const RamRegion> ram, uint64_t header_end);

// One RamBitmap section: the presence bits of `region` from page `first_page` on (a multiple of
// 64), little-endian 64-bit words.
struct BitmapChunk {
  uint32_t region;
  uint64_t first_page;
  std::vector<uint64_t> words;

  std::vector<uint8_t> encode() const;
  static Result<BitmapChunk> decode(std::span<const uint8_t> payload);
};

// The source's side on a regular file `fd` whose stream started at byte `base`: page data goes
// with pwrite to its slot; zero pages are left as (or punched back into) holes.
class MappedRamWriter {
 public:
  MappedRamWriter(int fd, uint64_t base, RamLayout layout, RateLimiter& limiter, const std::atomic<bool>& cancel,
                  std::atomic<uint64_t>& written);
  // Drops whatever the file held after the `written` bytes of the stream so far, and sizes it for
  // the layout (holes: RAM without data reads as zero).
  Status prepare(uint64_t written);
  // The pages of `region` from `first_page` on (`pages`: whole pages). Returns how many were zero.
  Result<uint64_t> write(size_t region, uint64_t first_page, std::span<const uint8_t> pages);
  // Moves the file position to the state offset and writes the bitmaps there.
  Status finish(StreamWriter& writer);
  uint64_t pageBytes() const { return page_bytes_; }
  const RamLayout& layout() const { return layout_; }

 private:
  Status writeRun(uint64_t offset, std::span<const uint8_t> bytes);
  Status clearRun(uint64_t offset, uint64_t length);

  int fd_;
  uint64_t base_;
  RamLayout layout_;
  RateLimiter& limiter_;
  const std::atomic<bool>& cancel_;
  std::atomic<uint64_t>& written_;
  std::vector<std::vector<uint64_t>> present_;
  uint64_t page_bytes_ = 0;
};

// The destination's side: maps `region` from the file (MAP_PRIVATE | MAP_FIXED over its memory).
Status mapRegionFromFile(const RamRegion& region, int fd, uint64_t file_offset);

}  // namespace vmmd::migration
