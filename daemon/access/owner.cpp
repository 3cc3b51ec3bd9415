#include "daemon/access/owner.h"

#include <charconv>

namespace vmmd::daemon {

std::string formatGroups(const std::vector<gid_t>& groups) {
  std::string text;
  for (gid_t gid : groups) text += (text.empty() ? "" : ",") + std::to_string(gid);
  return text;
}

std::optional<std::vector<gid_t>> parseGroups(std::string_view text) {
  std::vector<gid_t> groups;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    gid_t gid = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), gid);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size()) return std::nullopt;
    groups.push_back(gid);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
    if (text.empty()) return std::nullopt;  // a trailing comma
  }
  return groups;
}

}  // namespace vmmd::daemon
