#ifndef CRUCIBLE_SERVER_STORE_PG_UTIL_H_
#define CRUCIBLE_SERVER_STORE_PG_UTIL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

namespace server {

// Small helpers over libpq for the PostgreSQL store and the leader lease.

// The parameters of one statement, sent in binary: text, bytea, int4, int8
// or NULL.
class PgParams {
 public:
  PgParams& Text(absl::string_view v);
  PgParams& Bytes(absl::string_view v);
  PgParams& Int32(int32_t v);
  PgParams& Int64(int64_t v);
  PgParams& Int64OrNull(std::optional<int64_t> v);
  // Text, or NULL if empty.
  PgParams& TextOrNull(absl::string_view v);
  // A text[] (sent as an array literal).
  PgParams& TextArray(const std::vector<std::string>& v);

 private:
  friend class PgConnection;
  void Add(unsigned oid, std::string bytes, bool null = false, int format = 1);
  // libpq's arrays of value pointers (null for NULL) and lengths.
  std::vector<const char*> Values() const;
  std::vector<int> Lengths() const;
  std::vector<unsigned> types_;
  std::vector<std::string> values_;
  std::vector<bool> nulls_;
  std::vector<int> formats_;  // 1 binary, 0 text
};

// One statement of a pipeline (PgConnection::ExecPipeline).
struct PgStatement {
  std::string sql;
  PgParams params;
  // If set (a string that lives for the program), the statement is prepared
  // once per connection under this name and reused: `sql` and the
  // parameters' types must be the same at every use of the name.
  const char* name = nullptr;
};

// A result, cleared on destruction. Rows are read in binary; columns must be
// of the types the getters name (cast in SQL: `x::bigint`).
class PgResult {
 public:
  explicit PgResult(PGresult* r) : r_(r) {}
  ~PgResult();
  PgResult(PgResult&& other) noexcept : r_(other.r_) { other.r_ = nullptr; }
  PgResult& operator=(PgResult&&) = delete;
  PgResult(const PgResult&) = delete;

  int rows() const;
  // Rows changed by an INSERT, UPDATE or DELETE.
  int64_t affected() const;
  bool IsNull(int row, int col) const;
  // text or bytea.
  std::string Bytes(int row, int col) const;
  int64_t Int64(int row, int col) const;  // bigint
  int32_t Int32(int row, int col) const;  // integer
  bool Bool(int row, int col) const;      // boolean

 private:
  PGresult* r_;
};

// One connection. Not thread-safe: callers hold it alone.
class PgConnection {
 public:
  // Connects to `uri` (a libpq connection URI or key=value string), with a
  // connect timeout and TCP keepalives so a dead peer is noticed.
  // `settings` are the session's ("-c name=value ..."), kept across
  // reconnections; the URI's own `options` replace them.
  static absl::StatusOr<std::unique_ptr<PgConnection>> Connect(
      const std::string& uri, const std::string& settings = "");
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs `sql` with `params` ($1, $2, ...). Errors: UNAVAILABLE when the
  // connection is lost (it is reset for the next call), RESOURCE_EXHAUSTED
  // for a full disk (SQLSTATE 53100), ALREADY_EXISTS for a unique violation
  // (23505), ABORTED for serialization failures and lock timeouts, INTERNAL
  // otherwise; each names `sql`'s first words and PostgreSQL's message.
  absl::StatusOr<PgResult> Exec(absl::string_view sql,
                                const PgParams& params = PgParams());
  // Several statements without parameters or rows (migrations, SET).
  absl::Status ExecScript(absl::string_view sql);
  // Sends `statements` (no rows wanted) in pipelines of up to 500, without
  // waiting for each answer: one round trip per pipeline. The first error,
  // as Exec's; after an error the rest of its pipeline is not run (so call
  // it inside a transaction, and roll back on error).
  absl::Status ExecPipeline(const std::vector<PgStatement>& statements);
  // Whether the connection is usable; if not, tries once to reconnect.
  bool EnsureConnected();

 private:
  explicit PgConnection(PGconn* c) : c_(c) {}
  PGconn* c_;
  // Statements prepared on this connection (PgStatement::name).
  std::set<std::string> prepared_;
  // A pipeline failed: which of its statements were prepared is unknown,
  // so the next one starts by forgetting them all.
  bool deallocate_ = false;
};

// BEGIN on construction, ROLLBACK on destruction unless Commit() was called.
class PgTransaction {
 public:
  explicit PgTransaction(PgConnection& c, const char* begin = "BEGIN");
  ~PgTransaction();
  const absl::Status& status() const { return status_; }
  absl::Status Commit();

 private:
  PgConnection& c_;
  absl::Status status_;
  bool done_ = false;
};

// Whether `store` names the PostgreSQL store: a postgresql:// or
// postgres:// URI.
bool IsPostgresUri(absl::string_view store);

// `uri` with its password (if any) replaced by "***", for logs.
std::string RedactPostgresUri(absl::string_view uri);

}  // namespace server

#endif  // CRUCIBLE_SERVER_STORE_PG_UTIL_H_
