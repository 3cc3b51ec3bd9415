#include "vmm/config/keyval.h"

#include <charconv>
#include <limits>

namespace vmmd::config {

Result<KeyValues> KeyValues::parse(std::string_view option, std::string_view text, std::string_view implied_key) {
  KeyValues out;
  out.option_ = std::string(option);
  // Split on single commas; ",," stands for a comma inside a value.
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == ',') {
      if (i + 1 < text.size() && text[i + 1] == ',') {
        parts.back() += ',';
        ++i;
        continue;
      }
      parts.emplace_back();
      continue;
    }
    parts.back() += text[i];
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    if (part.empty()) {
      if (parts.size() == 1) break;  // an empty argument: no items
      return Error(std::string(option) + ": empty item in '" + std::string(text) + "'");
    }
    auto eq = part.find('=');
    if (eq == std::string::npos) {
      if (i == 0 && !implied_key.empty()) {
        out.items_.push_back({std::string(implied_key), part});
      } else {
        out.items_.push_back({"", part});
      }
      continue;
    }
    if (eq == 0) return Error(std::string(option) + ": item '" + part + "' has no key");
    out.items_.push_back({part.substr(0, eq), part.substr(eq + 1)});
  }
  return out;
}

bool KeyValues::has(std::string_view key) const {
  for (const auto& item : items_) {
    if (item.key == key) return true;
  }
  return false;
}

std::optional<std::string> KeyValues::take(std::string_view key) {
  std::optional<std::string> value;
  for (auto& item : items_) {
    if (item.key == key) {
      item.taken = true;
      value = item.value;  // the last occurrence wins, as in QEMU
    }
  }
  return value;
}

Result<bool> KeyValues::takeBool(std::string_view key, bool fallback) {
  auto value = take(key);
  if (!value) return fallback;
  if (*value == "on" || *value == "yes" || *value == "true") return true;
  if (*value == "off" || *value == "no" || *value == "false") return false;
  return Error(option_ + ": parameter '" + std::string(key) + "' expects 'on' or 'off', not '" + *value + "'");
}

std::vector<std::string> KeyValues::takeFlags() {
  std::vector<std::string> flags;
  for (auto& item : items_) {
    if (item.key.empty()) {
      item.taken = true;
      flags.push_back(item.value);
    }
  }
  return flags;
}

std::vector<std::pair<std::string, std::string>> KeyValues::takeRemaining() {
  std::vector<std::pair<std::string, std::string>> rest;
  for (auto& item : items_) {
    if (item.taken || item.key.empty()) continue;
    item.taken = true;
    rest.emplace_back(item.key, item.value);
  }
  return rest;
}

Status KeyValues::finish() const {
  for (const auto& item : items_) {
    if (item.taken) continue;
    if (item.key.empty()) return Error(option_ + ": unexpected item '" + item.value + "'");
    return Error(option_ + ": invalid parameter '" + item.key + "'");
  }
  return {};
}

Result<uint64_t> parseUnsigned(std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return Error("'" + std::string(text) + "' is not a number");
  }
  return value;
}

Result<uint64_t> parseSize(std::string_view text, uint64_t default_unit) {
  if (text.empty()) return Error("empty size");
  uint64_t unit = default_unit;
  std::string_view digits = text;
  switch (text.back()) {
    case 'b': case 'B': unit = 1; break;
    case 'k': case 'K': unit = 1ull << 10; break;
    case 'm': case 'M': unit = 1ull << 20; break;
    case 'g': case 'G': unit = 1ull << 30; break;
    case 't': case 'T': unit = 1ull << 40; break;
    default: unit = 0; break;
  }
  if (unit) {
    digits.remove_suffix(1);
  } else {
    unit = default_unit;
  }
  // QEMU accepts a decimal fraction ("1.5G"); the result must still be whole bytes.
  std::string_view whole = digits, fraction;
  if (auto dot = digits.find('.'); dot != std::string_view::npos) {
    whole = digits.substr(0, dot);
    fraction = digits.substr(dot + 1);
  }
  auto invalid = [&] { return Error("'" + std::string(text) + "' is not a size (a number with an optional k/M/G/T suffix)"); };
  auto number = parseUnsigned(whole);
  if (!number || (digits.find('.') != std::string_view::npos && fraction.empty()) || fraction.size() > 9) return invalid();
  if (*number > std::numeric_limits<uint64_t>::max() / unit) return Error("size '" + std::string(text) + "' is too large");
  uint64_t bytes = *number * unit;
  if (!fraction.empty()) {
    auto parts = parseUnsigned(fraction);
    if (!parts) return invalid();
    uint64_t scale = 1;
    for (size_t i = 0; i < fraction.size(); ++i) scale *= 10;
    unsigned __int128 extra = static_cast<unsigned __int128>(*parts) * unit;
    if (extra % scale) return Error("size '" + std::string(text) + "' is not a whole number of bytes");
    bytes += static_cast<uint64_t>(extra / scale);
  }
  return bytes;
}

}  // namespace vmmd::config
