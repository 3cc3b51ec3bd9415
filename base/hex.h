// "0x1f000" for addresses and register values in messages.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace vmmd {

inline std::string hex(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

}  // namespace vmmd
