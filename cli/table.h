// Plain-text output of read commands: one JSON member as text, and aligned columns.
#pragma once

#include <string>
#include <vector>

#include "qmp/json.h"

namespace vmmd::cli {

// A member of `row` for people: strings as they are, booleans yes/no, "-" when missing.
std::string field(const qmp::JsonValue& row, const char* key);
// Rows printed with their columns aligned, two spaces apart.
void printTable(const std::vector<std::vector<std::string>>& rows);

}  // namespace vmmd::cli
