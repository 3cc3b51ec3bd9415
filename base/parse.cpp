#include "base/parse.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <optional>
#include <string>
#include <utility>

namespace vmmd {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

bool allDigits(std::string_view text) { return text.find_first_not_of("0123456789") == std::string_view::npos; }

// Digits only (in `base`), no sign or prefix; nullopt when empty, not digits or above 2^64 - 1.
std::optional<uint64_t> digitsValue(std::string_view digits, int base) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return value;
}

// "0x..."/"0X...": the hexadecimal digits after the prefix; nullopt for anything else.
std::optional<std::string_view> hexDigits(std::string_view text) {
  if (text.size() < 2 || text[0] != '0' || (text[1] != 'x' && text[1] != 'X')) return std::nullopt;
  return text.substr(2);
}

// B, K, M, G, T, P, E in either case; 0 for anything else.
uint64_t suffixUnit(char suffix) {
  switch (suffix) {
    case 'b': case 'B': return 1;
    case 'k': case 'K': return uint64_t{1} << 10;
    case 'm': case 'M': return uint64_t{1} << 20;
    case 'g': case 'G': return uint64_t{1} << 30;
    case 't': case 'T': return uint64_t{1} << 40;
    case 'p': case 'P': return uint64_t{1} << 50;
    case 'e': case 'E': return uint64_t{1} << 60;
    default: return 0;
  }
}

// round(0.FRACTION * unit), half up, from the decimal digits after the point. Digits past the
// 19th change the result by less than 0.12 bytes (unit <= 2^60) and are only checked as digits.
uint64_t fractionBytes(std::string_view fraction, uint64_t unit) {
  fraction = fraction.substr(0, std::min<size_t>(fraction.size(), 19));
  if (fraction.empty()) return 0;
  uint64_t numerator = *digitsValue(fraction, 10);
  unsigned __int128 scale = 1;
  for (size_t i = 0; i < fraction.size(); ++i) scale *= 10;
  return static_cast<uint64_t>((static_cast<unsigned __int128>(numerator) * unit + scale / 2) / scale);
}

constexpr std::array<std::pair<DiskCache, std::string_view>, 5> kCacheNames = {{{DiskCache::kWriteback, "writeback"},
                                                                                {DiskCache::kNone, "none"},
                                                                                {DiskCache::kWritethrough, "writethrough"},
                                                                                {DiskCache::kDirectsync, "directsync"},
                                                                                {DiskCache::kUnsafe, "unsafe"}}};

}  // namespace

Result<uint64_t> parseUnsigned(std::string_view text) {
  auto notNumber = [&](std::string_view why = {}) { return Error("'" + std::string(text) + "' is not a number" + std::string(why)); };
  if (auto hex = hexDigits(text)) {
    auto value = digitsValue(*hex, 16);
    if (!value) return notNumber();
    return *value;
  }
  if (text.size() > 1 && text[0] == '0' && allDigits(text)) {
    return notNumber(" (QEMU would read a leading 0 as octal: write it without)");
  }
  auto value = digitsValue(text, 10);
  if (!value) return notNumber();
  return *value;
}

Result<uint64_t> parseSize(std::string_view text, uint64_t default_unit) {
  if (text.empty()) return Error("empty size");
  auto invalid = [&] {
    return Error("'" + std::string(text) + "' is not a size (a number with an optional B, K, M, G, T, P or E suffix)");
  };
  auto tooLarge = [&] { return Error("size '" + std::string(text) + "' is too large"); };
  auto scaled = [&](uint64_t whole, uint64_t unit, uint64_t extra) -> Result<uint64_t> {
    if (whole > kMax / unit || whole * unit > kMax - extra) return tooLarge();
    return whole * unit + extra;
  };
  if (auto hex = hexDigits(text)) {
    // Whole numbers only: QEMU takes neither a fraction nor a suffix after hex digits.
    if (hex->empty() || hex->find_first_not_of("0123456789abcdefABCDEF") != std::string_view::npos) return invalid();
    auto value = digitsValue(*hex, 16);
    if (!value) return tooLarge();
    return scaled(*value, default_unit, 0);
  }
  std::string_view number = text;
  uint64_t unit = suffixUnit(text.back());
  if (unit) {
    number.remove_suffix(1);
  } else {
    unit = default_unit;
  }
  std::string_view whole = number, fraction;
  bool has_point = false;
  if (auto dot = number.find('.'); dot != std::string_view::npos) {
    has_point = true;
    whole = number.substr(0, dot);
    fraction = number.substr(dot + 1);
  }
  if (!allDigits(whole) || !allDigits(fraction) || (whole.empty() && fraction.empty())) return invalid();
  uint64_t extra = 0;
  if (has_point && fraction.find_first_not_of('0') != std::string_view::npos) {
    if (unit == 1) {
      return Error("'" + std::string(text) + "' is not a whole number of bytes (a fraction needs a K, M, G, T, P or E suffix)");
    }
    extra = fractionBytes(fraction, unit);
  }
  auto value = whole.empty() ? std::optional<uint64_t>(0) : digitsValue(whole, 10);
  if (!value) return tooLarge();  // all digits, so only too many of them
  return scaled(*value, unit, extra);
}

Result<bool> parseOnOff(std::string_view text) {
  for (std::string_view yes : {"on", "yes", "true", "y"}) {
    if (text == yes) return true;
  }
  for (std::string_view no : {"off", "no", "false", "n"}) {
    if (text == no) return false;
  }
  return Error("'" + std::string(text) + "' is not on or off");
}

Result<DiskCache> parseDiskCache(std::string_view text) {
  if (text == "off") return DiskCache::kNone;  // QEMU's older name for none
  for (const auto& [cache, name] : kCacheNames) {
    if (text == name) return cache;
  }
  return Error("cache mode '" + std::string(text) + "' is unknown (writeback, none, writethrough, directsync, unsafe)");
}

std::string_view diskCacheName(DiskCache cache) {
  for (const auto& [value, name] : kCacheNames) {
    if (value == cache) return name;
  }
  return "?";
}

DiskCacheFlags diskCacheFlags(DiskCache cache) {
  switch (cache) {
    case DiskCache::kNone:
    case DiskCache::kDirectsync: return {.direct = true, .no_flush = false};
    case DiskCache::kUnsafe: return {.direct = false, .no_flush = true};
    case DiskCache::kWriteback:
    case DiskCache::kWritethrough: break;
  }
  return {};
}

}  // namespace vmmd
