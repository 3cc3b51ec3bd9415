// Little-endian integers and page tests shared by the stream's writer, reader and mapped-ram.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "vmm/migration/stream_format.h"

namespace vmmd::migration::wire {

inline void appendU32(std::vector<uint8_t>& out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

inline void appendU64(std::vector<uint8_t>& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

inline uint32_t loadU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}

inline uint64_t loadU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

inline bool isZeroPage(const uint8_t* page) {
  // The first word decides most pages with data; a zero candidate is scanned whole, as an OR of
  // 64-bit words in blocks that the compiler vectorizes (a byte loop took ~1 us a page: 65 ms
  // for the zero pages of a 256 MiB restore).
  uint64_t first;
  std::memcpy(&first, page, sizeof first);
  if (first != 0) return false;
  constexpr size_t kBlock = 256;
  for (size_t at = 0; at < kPageSize; at += kBlock) {
    uint64_t words[kBlock / 8];
    std::memcpy(words, page + at, kBlock);
    uint64_t any = 0;
    for (uint64_t word : words) any |= word;
    if (any != 0) return false;
  }
  return true;
}

}  // namespace vmmd::migration::wire
