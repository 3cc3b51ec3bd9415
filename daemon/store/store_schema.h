// Opening checks and schema migration of the store, apart so tests can run them on their own
// migration lists.
#pragma once

#include <span>

#include "base/result.h"
#include "daemon/store/migrations.h"
#include "daemon/store/sqlite.h"

namespace vmmd::daemon {

// Reads only. Fails when the file is not a database, is corrupt, belongs to another program, or
// was written by a newer vmmd (user_version above the last of `migrations`).
Status checkStoreFile(sqlite::Database& db, std::span<const Migration> migrations);

// Applies the steps above the current user_version, each in one transaction with its version bump
// (and, for the first, the application_id).
Status migrateStore(sqlite::Database& db, std::span<const Migration> migrations);

}  // namespace vmmd::daemon
