// The store's schema history. Migration N takes a database from user_version N-1 to N; they run
// in order, each in its own transaction together with the user_version bump, so a crash during an
// upgrade leaves the database at a well-defined version. Never edit a released step: add one.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace vmmd::daemon {

// 'vmmd' in ASCII: PRAGMA application_id marks the file as ours (see `file(1)` magic).
inline constexpr int32_t kStoreApplicationId = 0x766d6d64;

struct Migration {
  int version;
  std::string_view description;
  std::string_view sql;
};

std::span<const Migration> storeMigrations();
int latestStoreVersion();

}  // namespace vmmd::daemon
