#include "daemon/store/sqlite.h"

#include <utility>

namespace vmmd::daemon::sqlite {

Result<Database> Database::open(const std::string& path, bool create) {
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE | (create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  // Even on failure SQLite usually hands back a handle that must be closed.
  std::unique_ptr<sqlite3, Close> db(raw);
  if (rc != SQLITE_OK) {
    std::string message = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    return Error("open " + path + ": " + message);
  }
  return Database(std::move(db), path);
}

Error sqliteError(sqlite3* db, std::string_view what) {
  return Error(std::string(what) + ": " + sqlite3_errmsg(db) + " (" + std::to_string(sqlite3_extended_errcode(db)) +
               ")");
}

Error Database::error(std::string_view what) const { return sqliteError(db_.get(), what); }

Status Database::exec(std::string_view sql) {
  // sqlite3_exec needs a NUL-terminated string.
  std::string text(sql);
  if (sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) return error(text);
  return {};
}

Result<Statement> Database::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_.get(), sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return error("prepare \"" + std::string(sql) + "\"");
  }
  return Statement(db_.get(), stmt);
}

Result<int64_t> Database::queryInt(std::string_view sql) {
  auto stmt = prepare(sql);
  if (!stmt) return stmt.error();
  auto row = stmt->step();
  if (!row) return row.error();
  if (!*row) return Error(std::string(sql) + ": no row");
  return stmt->columnInt(0);
}

Status Statement::checkBind(int rc, int index) {
  if (rc != SQLITE_OK) return sqliteError(db_, "bind parameter " + std::to_string(index));
  return {};
}

Status Statement::bind(int index, int64_t value) {
  return checkBind(sqlite3_bind_int64(stmt_.get(), index, value), index);
}

Status Statement::bind(int index, std::string_view text) {
  return checkBind(sqlite3_bind_text64(stmt_.get(), index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
                   index);
}

Status Statement::bindNull(int index) { return checkBind(sqlite3_bind_null(stmt_.get(), index), index); }

Result<bool> Statement::step() {
  int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return sqliteError(db_, std::string("step \"") + sqlite3_sql(stmt_.get()) + "\"");
}

Status Statement::run() {
  auto row = step();
  if (!row) return row.error();
  return {};
}

std::string Statement::columnText(int column) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_.get(), column));
  if (!text) return {};
  return std::string(text, static_cast<size_t>(sqlite3_column_bytes(stmt_.get(), column)));
}

std::optional<int64_t> Statement::columnOptionalInt(int column) const {
  if (columnIsNull(column)) return std::nullopt;
  return columnInt(column);
}

std::optional<std::string> Statement::columnOptionalText(int column) const {
  if (columnIsNull(column)) return std::nullopt;
  return columnText(column);
}

Result<Transaction> Transaction::begin(Database& db) {
  if (auto st = db.exec("BEGIN IMMEDIATE"); !st) return st.error();
  return Transaction(db.handle());
}

Transaction::~Transaction() {
  // A failed statement may already have rolled the transaction back; autocommit tells.
  if (db_ && !sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

Status Transaction::commit() {
  if (!db_) return Error("commit: no transaction");
  sqlite3* db = std::exchange(db_, nullptr);
  if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    Error error = sqliteError(db, "COMMIT");
    if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return error;
  }
  return {};
}

}  // namespace vmmd::daemon::sqlite
