// Store: the snapshots table and the arriving mark of definitions (schema v4).
#include <sqlite3.h>

#include "daemon/store/store.h"

namespace vmmd::daemon {
namespace {

std::string joinIds(const std::vector<std::string>& ids) {
  std::string out;
  for (const std::string& id : ids) out += (out.empty() ? "" : ",") + id;
  return out;
}

std::vector<std::string> splitIds(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    out.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

constexpr std::string_view kSnapshotColumns = "vm, tag, created_us, state_file, state_bytes, disks";

}  // namespace

Status Store::addSnapshot(const SnapshotRecord& s) {
  auto tx = sqlite::Transaction::begin(db_);
  if (!tx) return tx.error();
  auto known = db_.hasRow("SELECT 1 FROM definitions WHERE name = ?1", s.vm);
  if (!known) return known.error();
  if (!*known) return Error("vm '" + s.vm + "' is not defined", kStoreNotDefined);
  auto taken = db_.hasRow("SELECT 1 FROM snapshots WHERE vm = ?1 AND tag = ?2", s.vm, s.tag);
  if (!taken) return taken.error();
  if (*taken) return Error("vm '" + s.vm + "' has a snapshot '" + s.tag + "' already", kStoreNameTaken);
  if (auto st = db_.run("INSERT INTO snapshots (" + std::string(kSnapshotColumns) + ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)", s.vm,
                        s.tag, s.created_us, s.state_file, s.state_bytes, joinIds(s.disks));
      !st) {
    return st;
  }
  if (auto id = insertEvent(s.vm, {"snapshot", "saved " + s.tag}); !id) return id.error();
  return tx->commit();
}

Result<std::vector<SnapshotRecord>> Store::snapshots(std::string_view vm) {
  auto stmt = db_.prepare("SELECT " + std::string(kSnapshotColumns) + " FROM snapshots WHERE vm = ?1 ORDER BY created_us, tag", vm);
  if (!stmt) return stmt.error();
  std::vector<SnapshotRecord> out;
  Status st = stmt->forEachRow([&]() -> Status {
    out.push_back({stmt->columnText(0), stmt->columnText(1), stmt->columnInt(2), stmt->columnText(3), stmt->columnInt(4),
                   splitIds(stmt->columnText(5))});
    return {};
  });
  if (!st) return st.error();
  return out;
}

Result<std::optional<SnapshotRecord>> Store::snapshot(std::string_view vm, std::string_view tag) {
  auto all = snapshots(vm);
  if (!all) return all.error();
  for (SnapshotRecord& s : *all) {
    if (s.tag == tag) return std::optional(std::move(s));
  }
  return std::optional<SnapshotRecord>();
}

Status Store::removeSnapshot(std::string_view vm, std::string_view tag) {
  auto tx = sqlite::Transaction::begin(db_);
  if (!tx) return tx.error();
  if (auto st = db_.run("DELETE FROM snapshots WHERE vm = ?1 AND tag = ?2", vm, tag); !st) return st;
  if (sqlite3_changes(db_.handle()) == 0) {
    return Error("vm '" + std::string(vm) + "' has no snapshot '" + std::string(tag) + "'", kStoreNotDefined);
  }
  if (auto id = insertEvent(vm, {"snapshot", "deleted " + std::string(tag)}); !id) return id.error();
  return tx->commit();
}

Status Store::setArriving(std::string_view vm, bool arriving) {
  if (auto st = db_.run("UPDATE definitions SET arriving = ?2 WHERE name = ?1", vm, int64_t{arriving}); !st) return st;
  if (sqlite3_changes(db_.handle()) == 0) return Error("vm '" + std::string(vm) + "' is not defined", kStoreNotDefined);
  return {};
}

Result<std::vector<std::string>> Store::arrivingVms() {
  auto stmt = db_.prepare("SELECT name FROM definitions WHERE arriving != 0 ORDER BY name");
  if (!stmt) return stmt.error();
  std::vector<std::string> out;
  Status st = stmt->forEachRow([&]() -> Status {
    out.push_back(stmt->columnText(0));
    return {};
  });
  if (!st) return st.error();
  return out;
}

}  // namespace vmmd::daemon
