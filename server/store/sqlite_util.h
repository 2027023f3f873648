#ifndef CRUCIBLE_SERVER_STORE_SQLITE_UTIL_H_
#define CRUCIBLE_SERVER_STORE_SQLITE_UTIL_H_

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace server {

// Small helpers over SQLite's C API for the store.

// The connection's last error as a status: UNAVAILABLE for busy/locked
// (retryable), RESOURCE_EXHAUSTED for a full disk (SQLITE_FULL), INTERNAL
// otherwise.
absl::Status SqliteError(sqlite3* db, absl::string_view what);

// Runs SQL with no parameters and no rows (migrations, pragmas).
absl::Status ExecSql(sqlite3* db, const char* sql);

// A prepared statement, finalized on destruction. Confined to one thread.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) {
      status_ = SqliteError(db, "prepare");
    }
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  const absl::Status& status() const { return status_; }
  Stmt& Bind(int i, int64_t v) {
    if (stmt_) sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Stmt& Bind(int i, absl::string_view v) {
    if (stmt_)
      sqlite3_bind_text(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindBlob(int i, absl::string_view v) {
    if (stmt_)
      sqlite3_bind_blob(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindNull(int i) {
    if (stmt_) sqlite3_bind_null(stmt_, i);
    return *this;
  }
  // Makes the statement ready to bind and run again.
  void Reset() {
    if (!stmt_) return;
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    status_ = absl::OkStatus();
  }
  // True if a row is available; false when done. Errors go to status().
  bool Step() {
    if (!status_.ok()) return false;
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) status_ = SqliteError(db_, "step");
    return false;
  }
  // Runs a statement that returns no rows.
  absl::Status Run() {
    while (Step()) {
    }
    return status_;
  }
  int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }
  bool IsNull(int col) {
    return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
  }
  std::string Blob(int col) {
    const void* p = sqlite3_column_blob(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    return p == nullptr ? std::string()
                        : std::string(static_cast<const char*>(p), n);
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  absl::Status status_;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back unless Commit() succeeded.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) {
    status_ = Stmt(db_, "BEGIN IMMEDIATE").Run();
  }
  ~Transaction() {
    if (status_.ok() && !done_) RollbackIfOpen();
  }
  const absl::Status& status() const { return status_; }
  absl::Status Commit() {
    done_ = true;
    absl::Status s = Stmt(db_, "COMMIT").Run();
    // A COMMIT that failed (a full disk) may leave the transaction open;
    // end it, or the connection could never begin the next one.
    if (!s.ok()) RollbackIfOpen();
    return s;
  }

 private:
  // SQLite may already have rolled back on its own (SQLITE_FULL can).
  void RollbackIfOpen() {
    if (!sqlite3_get_autocommit(db_)) Stmt(db_, "ROLLBACK").Run().IgnoreError();
  }
  sqlite3* db_;
  absl::Status status_;
  bool done_ = false;
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_STORE_SQLITE_UTIL_H_
