// Little-endian integers and page tests shared by the stream's writer, reader and mapped-ram.
#pragma once

#include <algorithm>
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
  // The first word decides most pages; only all-zero candidates are scanned fully.
  uint64_t first;
  std::memcpy(&first, page, sizeof first);
  if (first != 0) return false;
  return std::all_of(page, page + kPageSize, [](uint8_t b) { return b == 0; });
}

}  // namespace vmmd::migration::wire
