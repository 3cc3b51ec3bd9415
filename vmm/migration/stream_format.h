// The migration stream's wire format (docs/migration-stream.md is its specification): a header,
// then checksummed sections - the machine summary, RAM pages in passes, each device's and vCPU's
// saved state, and an end marker. Every integer is little-endian.
#pragma once

#include <cstdint>

namespace vmmd::migration {

inline constexpr char kStreamMagic[8] = {'V', 'M', 'M', 'D', 'M', 'I', 'G', 'R'};
inline constexpr uint32_t kStreamVersion = 1;
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
};

// A run of pages inside a RAM section.
enum class PageEncoding : uint8_t {
  Data = 0,  // page_count * kPageSize bytes follow
  Zero = 1,  // every byte zero; nothing follows
};

}  // namespace vmmd::migration
