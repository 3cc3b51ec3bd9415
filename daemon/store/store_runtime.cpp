// Store: the runtime table and the event history.
#include "daemon/store/store.h"

namespace vmmd::daemon {
namespace {

constexpr std::string_view kRuntimeColumns =
    "name, state, pid, start_time, started_us, qmp_socket, console_socket, qga_socket, exit_status, exit_signal, restart_count, "
    "updated_us, stop_intent, stop_deadline_us, stop_timeout_s, stop_force, boot_id, worker_exe";

Result<RuntimeRecord> readRuntime(const sqlite::Statement& stmt) {
  RuntimeRecord r;
  r.name = stmt.columnText(0);
  auto state = parseVmState(stmt.columnText(1));
  if (!state) return Error("vm '" + r.name + "': unknown state '" + stmt.columnText(1) + "' in the database");
  r.state = *state;
  r.pid = stmt.columnOptionalInt(2);
  r.start_time = stmt.columnOptionalInt(3);
  r.started_us = stmt.columnOptionalInt(4);
  r.qmp_socket = stmt.columnOptionalText(5);
  r.console_socket = stmt.columnOptionalText(6);
  r.qga_socket = stmt.columnOptionalText(7);
  r.exit_status = stmt.columnOptionalInt(8);
  r.exit_signal = stmt.columnOptionalInt(9);
  r.restart_count = stmt.columnInt(10);
  r.updated_us = stmt.columnInt(11);
  std::string intent = stmt.columnOptionalText(12).value_or("");
  auto parsed = parseStopIntent(intent);
  if (!parsed) return Error("vm '" + r.name + "': unknown stop intent '" + intent + "' in the database");
  r.stop_intent = *parsed;
  r.stop_deadline_us = stmt.columnOptionalInt(13);
  r.stop_timeout_s = stmt.columnOptionalInt(14).value_or(0);
  r.stop_force = stmt.columnInt(15) != 0;
  r.boot_id = stmt.columnOptionalText(16);
  r.worker_exe = stmt.columnOptionalText(17);
  return r;
}

}  // namespace

Status Store::saveRuntime(const RuntimeRecord& r, const std::optional<EventDraft>& event) {
  auto tx = sqlite::Transaction::begin(db_);
  if (!tx) return tx.error();
  auto known = db_.hasRow("SELECT 1 FROM definitions WHERE name = ?1", r.name);
  if (!known) return known.error();
  if (!*known) return Error("vm '" + r.name + "' is not defined", kStoreNotDefined);
  if (auto st = db_.run("INSERT OR REPLACE INTO runtime (" + std::string(kRuntimeColumns) +
                            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                        r.name, toString(r.state), r.pid, r.start_time, r.started_us, r.qmp_socket, r.console_socket,
                        r.qga_socket, r.exit_status, r.exit_signal, r.restart_count, unixTimeUs(),
                        r.stop_intent == StopIntent::kNone ? std::nullopt : std::optional(std::string(toString(r.stop_intent))),
                        r.stop_deadline_us, r.stop_timeout_s, int64_t{r.stop_force}, r.boot_id, r.worker_exe);
      !st) {
    return st;
  }
  if (event) {
    if (auto id = insertEvent(r.name, *event); !id) return id.error();
  }
  return tx->commit();
}

Result<std::optional<RuntimeRecord>> Store::runtime(std::string_view name) {
  auto records = readRuntimes("WHERE name = ?1", name);
  if (!records) return records.error();
  if (records->empty()) return std::optional<RuntimeRecord>();
  return std::optional<RuntimeRecord>(std::move(records->front()));
}

Result<std::vector<RuntimeRecord>> Store::runtimes() { return readRuntimes("ORDER BY name", std::nullopt); }

Result<std::vector<RuntimeRecord>> Store::readRuntimes(std::string_view where, std::optional<std::string_view> name) {
  auto stmt = db_.prepare("SELECT " + std::string(kRuntimeColumns) + " FROM runtime " + std::string(where));
  if (!stmt) return stmt.error();
  if (name) {
    if (auto st = stmt->bind(1, *name); !st) return st.error();
  }
  std::vector<RuntimeRecord> out;
  Status st = stmt->forEachRow([&]() -> Status {
    auto record = readRuntime(*stmt);
    if (!record) return record.error();
    out.push_back(std::move(*record));
    return {};
  });
  if (!st) return st.error();
  return out;
}

Result<int64_t> Store::insertEvent(std::string_view vm, const EventDraft& event) {
  if (auto st = db_.run("INSERT INTO events (time_us, vm, kind, detail) VALUES (?1, ?2, ?3, ?4)", unixTimeUs(), vm,
                        event.kind, event.detail);
      !st) {
    return st.error();
  }
  int64_t id = sqlite3_last_insert_rowid(db_.handle());
  // Bounded history: ids only grow (AUTOINCREMENT), so everything max_events behind goes.
  if (auto st = db_.run("DELETE FROM events WHERE id <= ?1", id - options_.max_events); !st) return st.error();
  return id;
}

Result<int64_t> Store::appendEvent(std::string_view vm, const EventDraft& event) {
  auto tx = sqlite::Transaction::begin(db_);
  if (!tx) return tx.error();
  auto id = insertEvent(vm, event);
  if (!id) return id.error();
  if (auto st = tx->commit(); !st) return st.error();
  return id;
}

Result<std::vector<EventRecord>> Store::events(const EventQuery& query) {
  auto stmt = db_.prepare(
      "SELECT id, time_us, vm, kind, detail FROM events WHERE id > ?1 AND (?2 IS NULL OR vm = ?2) ORDER BY id LIMIT ?3",
      query.after_id, query.vm, query.limit);
  if (!stmt) return stmt.error();
  std::vector<EventRecord> out;
  Status st = stmt->forEachRow([&]() -> Status {
    out.push_back({stmt->columnInt(0), stmt->columnInt(1), stmt->columnText(2), stmt->columnText(3),
                   stmt->columnText(4)});
    return {};
  });
  if (!st) return st.error();
  return out;
}

}  // namespace vmmd::daemon
