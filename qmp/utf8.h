// UTF-8 decoding with QEMU's rules (util/unicode.c), shared by the reader (which rejects what
// does not decode) and the writer (which prints it as U+FFFD).
#pragma once

#include <string_view>

namespace vmmd::qmp {

// Unicode scalar values QEMU accepts: no surrogates, no noncharacters, nothing past U+10FFFF.
inline bool isValidCodePoint(long cp) {
  if (cp < 0 || cp > 0x10FFFF) return false;
  if ((cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE) return false;
  return !(cp >= 0xD800 && cp <= 0xDFFF);
}

// Decodes the sequence at s[i] and advances i past it; -1 (i unchanged) when it is not valid.
// Overlong forms are invalid except "\xC0\x80", QEMU's (modified UTF-8) spelling of NUL.
inline long decodeUtf8(std::string_view s, size_t& i) {
  auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  int extra;
  long cp;
  long min;
  if ((b0 & 0xE0) == 0xC0) {
    extra = 1, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    extra = 2, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    extra = 3, cp = b0 & 0x07, min = 0x10000;
  } else {
    return -1;
  }
  if (i + extra >= s.size()) return -1;
  for (int k = 1; k <= extra; ++k) {
    auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (b & 0x3F);
  }
  bool modifiedNul = cp == 0 && extra == 1;
  if (!modifiedNul && (cp < min || !isValidCodePoint(cp))) return -1;
  i += extra + 1;
  return cp;
}

}  // namespace vmmd::qmp
