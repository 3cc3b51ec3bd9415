// Store: opening, and the definitions table.
#include "daemon/store/store.h"

#include <chrono>

#include "daemon/definition/definition_json.h"
#include "daemon/store/store_schema.h"

namespace vmmd::daemon {

int64_t unixTimeUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

// Its own function so the statement is finalized before anything else runs: an unfinished
// statement would keep later transactions from committing.
Status enableWal(sqlite::Database& db) {
  auto mode = db.prepare("PRAGMA journal_mode = WAL");
  if (!mode) return mode.error();
  auto row = mode->step();
  if (!row) return row.error();
  if (!*row || mode->columnText(0) != "wal") return Error("cannot switch the journal to WAL mode");
  return {};
}

}  // namespace

Result<Store> Store::open(const std::string& path, StoreOptions options) {
  auto db = sqlite::Database::open(path, /*create=*/true);
  if (!db) return db.error();
  // Set before the first read so a database locked by another process is waited for, not refused.
  sqlite3_busy_timeout(db->handle(), options.busy_timeout_ms);
  auto in = [&path](const Error& e) { return e.withContext(path); };
  if (auto st = checkStoreFile(*db, storeMigrations()); !st) return in(st.error());
  if (auto st = enableWal(*db); !st) return in(st.error());
  for (const char* pragma : {"PRAGMA synchronous = FULL", "PRAGMA foreign_keys = ON"}) {
    if (auto st = db->exec(pragma); !st) return in(st.error());
  }
  if (auto st = migrateStore(*db, storeMigrations()); !st) return in(st.error());
  return Store(std::move(*db), options);
}

Result<std::string> Store::integrityCheck() {
  auto stmt = db_.prepare("PRAGMA integrity_check");
  if (!stmt) return stmt.error();
  std::string report;
  for (;;) {
    auto row = stmt->step();
    if (!row) return row.error();
    if (!*row) break;
    report += (report.empty() ? "" : "\n") + stmt->columnText(0);
  }
  return report;
}

Status Store::define(const VmDefinition& def, const Owner& owner) {
  auto tx = sqlite::Transaction::begin(db_);
  if (!tx) return tx.error();
  // Checked here, not left to the constraints, so the message says which of the two is taken.
  auto taken = db_.prepare("SELECT name FROM definitions WHERE name = ?1 OR uuid = ?2", def.name, def.uuid);
  if (!taken) return taken.error();
  auto row = taken->step();
  if (!row) return row.error();
  if (*row) {
    if (taken->columnText(0) == def.name) return Error("vm '" + def.name + "' is already defined", kStoreNameTaken);
    return Error("uuid " + def.uuid + " is already used by vm '" + taken->columnText(0) + "'", kStoreUuidTaken);
  }
  if (auto st = db_.run("INSERT INTO definitions (name, uuid, json, created_us, updated_us, owner_uid, owner_gid, owner_groups)"
                        " VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7)",
                        def.name, def.uuid, serializeDefinition(def), unixTimeUs(), static_cast<int64_t>(owner.uid),
                        static_cast<int64_t>(owner.gid), formatGroups(owner.groups));
      !st) {
    return st;
  }
  if (auto id = insertEvent(def.name, {"defined", def.uuid}); !id) return id.error();
  return tx->commit();
}

Status Store::undefine(std::string_view name) {
  auto tx = sqlite::Transaction::begin(db_);
  if (!tx) return tx.error();
  // The runtime row goes with it (ON DELETE CASCADE).
  if (auto st = db_.run("DELETE FROM definitions WHERE name = ?1", name); !st) return st;
  if (sqlite3_changes(db_.handle()) == 0) return Error("vm '" + std::string(name) + "' is not defined", kStoreNotDefined);
  if (auto id = insertEvent(name, {"undefined", ""}); !id) return id.error();
  return tx->commit();
}

namespace {

constexpr std::string_view kDefinitionColumns =
    "SELECT json, created_us, updated_us, name, owner_uid, owner_gid, owner_groups FROM definitions";

Result<StoredDefinition> readDefinition(const sqlite::Statement& stmt) {
  std::string context = "stored definition of vm '" + stmt.columnText(3) + "'";
  auto def = parseDefinition(stmt.columnText(0));
  if (!def) return def.error().withContext(context);
  auto groups = parseGroups(stmt.columnText(6));
  if (!groups) return Error(context + ": malformed owner groups '" + stmt.columnText(6) + "'");
  Owner owner{static_cast<uid_t>(stmt.columnInt(4)), static_cast<gid_t>(stmt.columnInt(5)), std::move(*groups)};
  return StoredDefinition{std::move(*def), std::move(owner), stmt.columnInt(1), stmt.columnInt(2)};
}

}  // namespace

Result<std::optional<StoredDefinition>> Store::definition(std::string_view name) {
  auto stmt = db_.prepare(std::string(kDefinitionColumns) + " WHERE name = ?1", name);
  if (!stmt) return stmt.error();
  auto row = stmt->step();
  if (!row) return row.error();
  if (!*row) return std::optional<StoredDefinition>();
  auto stored = readDefinition(*stmt);
  if (!stored) return stored.error();
  return std::optional<StoredDefinition>(std::move(*stored));
}

Result<std::vector<StoredDefinition>> Store::definitions() {
  auto stmt = db_.prepare(std::string(kDefinitionColumns) + " ORDER BY name");
  if (!stmt) return stmt.error();
  std::vector<StoredDefinition> out;
  Status st = stmt->forEachRow([&]() -> Status {
    auto stored = readDefinition(*stmt);
    if (!stored) return stored.error();
    out.push_back(std::move(*stored));
    return {};
  });
  if (!st) return st.error();
  return out;
}

}  // namespace vmmd::daemon
