// The SQLite store's schema and its migrations.
#include "server/store/sqlite_schema.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/store/sqlite_util.h"
#include "server/store/task_store.h"

namespace server {
namespace {

using crucible::v1::Task;

absl::Status BackfillLabels(sqlite3* db);

// Each entry moves the schema from version i to i+1: its SQL, then its
// backfill (if any), in one transaction. Never edit a shipped entry; append
// a new one.
struct Migration {
  const char* sql;
  absl::Status (*backfill)(sqlite3* db) = nullptr;
};
const Migration kMigrations[] = {
    {R"sql(
CREATE TABLE tasks (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  tenant TEXT NOT NULL,
  request_id TEXT,
  state INTEGER NOT NULL,
  priority INTEGER NOT NULL,
  create_time_us INTEGER NOT NULL,
  task BLOB NOT NULL
);
CREATE UNIQUE INDEX tasks_by_request ON tasks(tenant, request_id)
  WHERE request_id IS NOT NULL;
CREATE INDEX tasks_by_tenant ON tasks(tenant, seq);
CREATE INDEX tasks_by_state ON tasks(state, seq);
CREATE TABLE output_chunks (
  task_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  byte_offset INTEGER NOT NULL,
  stream INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (task_id, attempt, byte_offset)
);
)sql"},
    // 2: when a task ended, for retention.
    {R"sql(
ALTER TABLE tasks ADD COLUMN end_time_us INTEGER;
CREATE INDEX tasks_by_end ON tasks(end_time_us) WHERE end_time_us IS NOT NULL;
)sql"},
    // 3: labels, so ListTasks filters them in SQL; ordered by seq within
    // each (key, value), so a filtered page reads only matching rows.
    {R"sql(
CREATE TABLE task_labels (
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (key, value, seq)
) WITHOUT ROWID;
CREATE INDEX task_labels_by_seq ON task_labels(seq);
)sql",
     &BackfillLabels},
    // 4: API tokens (server/auth): only the SHA-256 of each secret.
    {R"sql(
CREATE TABLE api_tokens (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  tenant TEXT NOT NULL,
  role INTEGER NOT NULL,
  secret_sha256 BLOB NOT NULL,
  created_by TEXT NOT NULL,
  create_time_us INTEGER NOT NULL,
  expire_time_us INTEGER,
  revoke_time_us INTEGER
);
)sql"},
    // 5: completion callbacks owed (1; NULL when none), so a restarted
    // server finds them without reading every ended task.
    {R"sql(
ALTER TABLE tasks ADD COLUMN callback_pending INTEGER;
CREATE INDEX tasks_by_callback ON tasks(seq) WHERE callback_pending = 1;
)sql"},
    // 6: artifacts: their chunks as they arrive, and a row per artifact
    // collected whole (only those are read).
    {R"sql(
CREATE TABLE artifact_chunks (
  task_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  path TEXT NOT NULL,
  byte_offset INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (task_id, attempt, path, byte_offset)
);
CREATE TABLE artifacts (
  task_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  path TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  PRIMARY KEY (task_id, path, attempt)
);
)sql"},
};
constexpr int kNumMigrations = sizeof(kMigrations) / sizeof(kMigrations[0]);

absl::Status BackfillLabels(sqlite3* db) {
  Stmt tasks(db, "SELECT seq, task FROM tasks");
  Stmt insert(
      db,
      "INSERT OR IGNORE INTO task_labels (key, value, seq) VALUES (?, ?, ?)");
  while (tasks.Step()) {
    ASSIGN_OR_RETURN(Task task, ParseStoredTask(tasks.Blob(1)));
    for (const auto& [key, value] : task.spec().labels()) {
      insert.Reset();
      RETURN_IF_ERROR(
          insert.Bind(1, key).Bind(2, value).Bind(3, tasks.Int(0)).Run());
    }
  }
  return tasks.status();
}

}  // namespace

int SqliteSchemaVersion() { return kNumMigrations; }

absl::Status MigrateSqliteSchema(sqlite3* db) {
  RETURN_IF_ERROR(ExecSql(
      db,
      "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));
  int64_t version = 0;
  {
    Stmt get(db, "SELECT MAX(version) FROM schema_version");
    if (get.Step()) version = get.Int(0);
    RETURN_IF_ERROR(get.status());
  }
  if (version > kNumMigrations) {
    return absl::FailedPreconditionError(
        absl::StrCat("database schema version ", version,
                     " is newer than this binary (", kNumMigrations, ")"));
  }
  for (int64_t v = version; v < kNumMigrations; ++v) {
    Transaction tx(db);
    RETURN_IF_ERROR(tx.status());
    RETURN_IF_ERROR(ExecSql(db, kMigrations[v].sql));
    if (kMigrations[v].backfill != nullptr) {
      RETURN_IF_ERROR(kMigrations[v].backfill(db));
    }
    RETURN_IF_ERROR(Stmt(db, "INSERT INTO schema_version (version) VALUES (?)")
                        .Bind(1, v + 1)
                        .Run());
    RETURN_IF_ERROR(tx.Commit());
  }
  return absl::OkStatus();
}

}  // namespace server
