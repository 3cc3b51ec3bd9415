// Enum <-> name tables: one table per enum gives both directions, so a new value cannot be added
// to one and forgotten in the other.
#pragma once

#include <array>
#include <optional>
#include <string_view>
#include <utility>

namespace vmmd::daemon {

template <typename E, size_t N>
using EnumNames = std::array<std::pair<E, std::string_view>, N>;

template <typename E, size_t N>
constexpr std::string_view nameOf(const EnumNames<E, N>& names, E value) {
  for (const auto& [v, name] : names) {
    if (v == value) return name;
  }
  return "?";
}

template <typename E, size_t N>
constexpr std::optional<E> valueOf(const EnumNames<E, N>& names, std::string_view text) {
  for (const auto& [v, name] : names) {
    if (name == text) return v;
  }
  return std::nullopt;
}

}  // namespace vmmd::daemon
