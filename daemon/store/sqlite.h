// Thin RAII layer over the sqlite3 C API: a connection, prepared statements, transactions.
// Every failure becomes a vmmd::Error carrying SQLite's own message and what we were doing.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace vmmd::daemon::sqlite {

class Statement;

// "<what>: <sqlite message> (<extended code>)" for the last failure on `db`.
Error sqliteError(sqlite3* db, std::string_view what);

class Database {
 public:
  // Opens (creating when `create`) the file. SQLite opens lazily: a file that is not a database
  // is only detected by the first statement, which the caller must make a read.
  static Result<Database> open(const std::string& path, bool create);

  Status exec(std::string_view sql);
  Result<Statement> prepare(std::string_view sql);
  // prepare() with the arguments bound to parameters 1, 2, 3...
  template <typename... Args>
  Result<Statement> prepare(std::string_view sql, const Args&... args);
  // Runs a statement that returns no rows.
  template <typename... Args>
  Status run(std::string_view sql, const Args&... args);
  // Whether the query returns at least one row.
  template <typename... Args>
  Result<bool> hasRow(std::string_view sql, const Args&... args);
  // The single integer a "PRAGMA x" or "SELECT count(*)" returns.
  Result<int64_t> queryInt(std::string_view sql);

  sqlite3* handle() const { return db_.get(); }
  const std::string& path() const { return path_; }
  // "<what>: <sqlite message> (<extended code>)".
  Error error(std::string_view what) const;

 private:
  struct Close {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };
  Database(std::unique_ptr<sqlite3, Close> db, std::string path) : db_(std::move(db)), path_(std::move(path)) {}

  std::unique_ptr<sqlite3, Close> db_;
  std::string path_;
};

class Statement {
 public:
  // Binders take 1-based parameter indexes, as SQLite does.
  Status bind(int index, int64_t value);
  Status bind(int index, std::string_view text);
  // Without this a std::string would convert equally well to string_view and optional<string>.
  Status bind(int index, const std::string& text) { return bind(index, std::string_view(text)); }
  Status bindNull(int index);
  Status bind(int index, const std::optional<int64_t>& value) { return value ? bind(index, *value) : bindNull(index); }
  Status bind(int index, const std::optional<std::string>& text) { return text ? bind(index, *text) : bindNull(index); }

  // Binds the arguments to parameters 1, 2, 3...; stops at the first failure.
  template <typename... Args>
  Status bindAll(const Args&... args) {
    Status status;
    [[maybe_unused]] int index = 0;
    (void)((status = bind(++index, args)) && ...);
    return status;
  }

  // true: a row is ready to read; false: done.
  Result<bool> step();
  // Steps a statement that returns no rows.
  Status run();
  // Steps through the rows, calling `on_row()` (returning Status) for each; stops at the first error.
  template <typename F>
  Status forEachRow(F&& on_row) {
    for (;;) {
      auto row = step();
      if (!row) return row.error();
      if (!*row) return {};
      if (Status st = on_row(); !st) return st;
    }
  }

  int64_t columnInt(int column) const { return sqlite3_column_int64(stmt_.get(), column); }
  std::string columnText(int column) const;
  bool columnIsNull(int column) const { return sqlite3_column_type(stmt_.get(), column) == SQLITE_NULL; }
  std::optional<int64_t> columnOptionalInt(int column) const;
  std::optional<std::string> columnOptionalText(int column) const;

 private:
  friend class Database;
  struct Finalize {
    void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
  };
  // The raw connection, not the Database: a Database may be moved while statements are alive.
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Status checkBind(int rc, int index);

  sqlite3* db_;
  std::unique_ptr<sqlite3_stmt, Finalize> stmt_;
};

template <typename... Args>
Result<Statement> Database::prepare(std::string_view sql, const Args&... args) {
  auto stmt = prepare(sql);
  if (!stmt) return stmt;
  if (auto st = stmt->bindAll(args...); !st) return st.error();
  return stmt;
}

template <typename... Args>
Status Database::run(std::string_view sql, const Args&... args) {
  auto stmt = prepare(sql, args...);
  if (!stmt) return stmt.error();
  return stmt->run();
}

template <typename... Args>
Result<bool> Database::hasRow(std::string_view sql, const Args&... args) {
  auto stmt = prepare(sql, args...);
  if (!stmt) return stmt.error();
  return stmt->step();
}

// BEGIN IMMEDIATE on creation (the write lock is taken up front, so a busy database fails here
// rather than half-way through); rolled back on destruction unless committed.
class Transaction {
 public:
  static Result<Transaction> begin(Database& db);
  Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction();

  Status commit();

 private:
  explicit Transaction(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

}  // namespace vmmd::daemon::sqlite
