#include "daemon/store/store_schema.h"

#include <cstdio>
#include <string>

namespace vmmd::daemon {
namespace {

std::string hex32(int64_t value) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", static_cast<uint32_t>(value));
  return text;
}

// The names of the tables in the file, for the "not ours" message.
Result<std::string> tableNames(sqlite::Database& db) {
  auto stmt = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name LIMIT 6");
  if (!stmt) return stmt.error();
  std::string names;
  for (int n = 0;; ++n) {
    auto row = stmt->step();
    if (!row) return row.error();
    if (!*row) break;
    if (n == 5) {
      names += ", ...";
      break;
    }
    names += (names.empty() ? "" : ", ") + stmt->columnText(0);
  }
  return names;
}

}  // namespace

Status checkStoreFile(sqlite::Database& db, std::span<const Migration> migrations) {
  // The first read: a file that is not a database fails here ("file is not a database").
  auto app_id = db.queryInt("PRAGMA application_id");
  if (!app_id) return app_id.error().withContext("not a usable SQLite database; refusing to touch it");
  auto check = db.prepare("PRAGMA quick_check");
  if (!check) return check.error();
  auto row = check->step();
  if (!row) return row.error().withContext("database is corrupt; refusing to touch it");
  if (*row && check->columnText(0) != "ok") {
    return Error("database is corrupt (quick_check: " + check->columnText(0) + "); refusing to touch it");
  }
  auto version = db.queryInt("PRAGMA user_version");
  if (!version) return version.error();
  auto tables = tableNames(db);
  if (!tables) return tables.error();
  bool fresh = *app_id == 0 && *version == 0 && tables->empty();
  if (!fresh && *app_id != kStoreApplicationId) {
    return Error("not a vmmd database (application_id " + hex32(*app_id) + ", tables: " +
                 (tables->empty() ? std::string("none") : *tables) + "); refusing to touch it");
  }
  int latest = migrations.empty() ? 0 : migrations.back().version;
  if (*version > latest) {
    return Error("database schema version " + std::to_string(*version) + " is newer than this vmmd supports (" +
                 std::to_string(latest) + "); was it written by a newer vmmd?");
  }
  return {};
}

Status migrateStore(sqlite::Database& db, std::span<const Migration> migrations) {
  for (const Migration& step : migrations) {
    auto tx = sqlite::Transaction::begin(db);
    if (!tx) return tx.error().withContext("migration " + std::to_string(step.version));
    // Read under the write lock: another process may have migrated since we looked.
    auto version = db.queryInt("PRAGMA user_version");
    if (!version) return version.error();
    if (*version >= step.version) continue;
    std::string context = "migration " + std::to_string(step.version) + " (" + std::string(step.description) + ")";
    if (*version != step.version - 1) {
      return Error(context + ": database is at version " + std::to_string(*version));
    }
    if (auto st = db.exec(step.sql); !st) return st.error().withContext(context);
    if (auto st = db.exec("PRAGMA user_version = " + std::to_string(step.version)); !st) return st.error();
    if (auto st = db.exec("PRAGMA application_id = " + std::to_string(kStoreApplicationId)); !st) return st.error();
    if (auto st = tx->commit(); !st) return st.error().withContext(context);
  }
  return {};
}

}  // namespace vmmd::daemon
