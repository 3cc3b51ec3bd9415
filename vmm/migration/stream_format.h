// The migration stream's wire format (docs/migration-stream.md is its specification): a header,
// then checksummed sections - the machine summary, RAM pages in passes, each device's and vCPU's
// saved state, and an end marker. Every integer is little-endian.
#pragma once

#include <cstdint>

namespace vmmd::migration {

inline constexpr char kStreamMagic[8] = {'V', 'M', 'M', 'D', 'M', 'I', 'G', 'R'};
inline constexpr uint32_t kStreamVersion = 1;
// Header flag: RAM is not in RAM sections but at fixed offsets of the file (mapped-ram), so a
// destination maps it instead of copying it. No other flag is defined.
inline constexpr uint32_t kFlagMappedRam = 1;
// mapped-ram: each region's pages start at a multiple of this in the file, as guest RAM is
// 2 MiB aligned in memory (huge pages), so file offsets and addresses agree modulo 2 MiB.
inline constexpr uint64_t kMappedRamAlignment = 2u << 20;
// mapped-ram: a RamBitmap section carries at most this many bytes of bitmap (8 Mi pages, 32 GiB).
inline constexpr uint32_t kBitmapChunkBytes = 1u << 20;
inline constexpr uint64_t kPageSize = 4096;
// No section is larger: a hostile or corrupted length never makes the reader allocate more.
inline constexpr uint32_t kMaxSectionPayload = 16u << 20;
// RAM sections carry at most this many bytes of page data, so a reader's buffer stays small.
inline constexpr uint64_t kRamChunkBytes = 1u << 20;

enum class SectionType : uint32_t {
  Summary = 1,  // what the destination must match: machine type, RAM size, vCPUs, devices
  Ram = 2,      // page runs of one pass
  State = 3,    // one device's or vCPU's saved state
  End = 4,      // nothing follows
  RamLayout = 5,  // mapped-ram: where each RAM region's pages lie in the file
  RamBitmap = 6,  // mapped-ram: which pages of a region the file holds
};

// A run of pages inside a RAM section.
enum class PageEncoding : uint8_t {
  Data = 0,  // page_count * kPageSize bytes follow
  Zero = 1,  // every byte zero; nothing follows
};

}  // namespace vmmd::migration
