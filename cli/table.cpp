#include "cli/table.h"

#include <algorithm>
#include <cstdio>

namespace vmmd::cli {

std::string field(const qmp::JsonValue& row, const char* key) {
  auto it = row.FindMember(key);
  if (it == row.MemberEnd()) return "-";
  if (it->value.IsString()) return it->value.GetString();
  if (it->value.IsBool()) return it->value.GetBool() ? "yes" : "no";
  if (it->value.IsInt64()) return std::to_string(it->value.GetInt64());
  return qmp::toJson(it->value);
}

void printTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(width[i] - row[i].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

}  // namespace vmmd::cli
