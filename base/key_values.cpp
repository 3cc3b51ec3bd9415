#include "base/key_values.h"

#include "base/parse.h"

namespace vmmd {

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

KeyValues KeyValues::fromPairs(std::string_view option, const std::map<std::string, std::string>& pairs) {
  KeyValues out;
  out.option_ = std::string(option);
  for (const auto& [key, value] : pairs) out.items_.push_back({key, value});
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
  auto parsed = parseOnOff(*value);
  if (parsed) return *parsed;
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

}  // namespace vmmd
