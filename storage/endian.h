// Big-endian loads and stores for on-disk structures.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace vmmd::storage {

inline uint64_t loadBe64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return __builtin_bswap64(v);
}
inline uint32_t loadBe32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return __builtin_bswap32(v);
}
inline uint16_t loadBe16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline void storeBe64(uint8_t* p, uint64_t v) {
  v = __builtin_bswap64(v);
  std::memcpy(p, &v, 8);
}
inline void storeBe32(uint8_t* p, uint32_t v) {
  v = __builtin_bswap32(v);
  std::memcpy(p, &v, 4);
}
inline void storeBe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// A table of 64-bit entries as stored (big endian), zero-padded to `bytes` when that is larger.
inline std::vector<uint8_t> bigEndianTable(std::span<const uint64_t> entries, size_t bytes = 0) {
  std::vector<uint8_t> raw(std::max(bytes, entries.size() * 8), 0);
  for (size_t i = 0; i < entries.size(); ++i) storeBe64(&raw[i * 8], entries[i]);
  return raw;
}

}  // namespace vmmd::storage
