// The PostgreSQL store's schema and its migrations. The same tables as the
// SQLite store's (sqlite_schema.cc), plus the leader lease.
#include "server/store/pg_schema.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace server {
namespace {

// Each entry moves the schema from version i to i+1, in one transaction.
// Never edit a shipped entry; append a new one.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE tasks (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  tenant TEXT NOT NULL,
  request_id TEXT,
  state INTEGER NOT NULL,
  priority INTEGER NOT NULL,
  create_time_us BIGINT NOT NULL,
  end_time_us BIGINT,
  task BYTEA NOT NULL
);
CREATE UNIQUE INDEX tasks_by_request ON tasks(tenant, request_id)
  WHERE request_id IS NOT NULL;
CREATE INDEX tasks_by_tenant ON tasks(tenant, seq);
CREATE INDEX tasks_by_state ON tasks(state, seq);
CREATE INDEX tasks_by_end ON tasks(end_time_us) WHERE end_time_us IS NOT NULL;
CREATE TABLE task_labels (
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  seq BIGINT NOT NULL,
  PRIMARY KEY (key, value, seq)
);
CREATE INDEX task_labels_by_seq ON task_labels(seq);
CREATE TABLE output_chunks (
  task_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  byte_offset BIGINT NOT NULL,
  stream INTEGER NOT NULL,
  data BYTEA NOT NULL,
  PRIMARY KEY (task_id, attempt, byte_offset)
);
CREATE TABLE api_tokens (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  tenant TEXT NOT NULL,
  role INTEGER NOT NULL,
  secret_sha256 BYTEA NOT NULL,
  created_by TEXT NOT NULL,
  create_time_us BIGINT NOT NULL,
  expire_time_us BIGINT,
  revoke_time_us BIGINT
);
-- The leader's lease (server/store/pg_leader.h): one row; every commit of
-- the leader checks its holder and epoch.
CREATE TABLE crucible_leader (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  holder TEXT NOT NULL,
  epoch BIGINT NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL
);
)sql",
    // 2: completion callbacks owed (1; NULL when none), so a restarted
    // leader finds them without reading every ended task.
    R"sql(
ALTER TABLE tasks ADD COLUMN callback_pending BIGINT;
CREATE INDEX tasks_by_callback ON tasks(seq) WHERE callback_pending = 1;
)sql",
    // 3: artifacts: their chunks as they arrive, and a row per artifact
    // collected whole (only those are read).
    R"sql(
CREATE TABLE artifact_chunks (
  task_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  path TEXT NOT NULL,
  byte_offset BIGINT NOT NULL,
  data BYTEA NOT NULL,
  PRIMARY KEY (task_id, attempt, path, byte_offset)
);
CREATE TABLE artifacts (
  task_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  path TEXT NOT NULL,
  size_bytes BIGINT NOT NULL,
  sha256 TEXT NOT NULL,
  PRIMARY KEY (task_id, path, attempt)
);
)sql",
};
constexpr int kNumMigrations = sizeof(kMigrations) / sizeof(kMigrations[0]);

// pg_advisory_xact_lock key of the migrations: "crucible" in ASCII.
constexpr char kMigrationLock[] =
    "SELECT pg_advisory_xact_lock(7166472405876257637)";

}  // namespace

int PgSchemaVersion() { return kNumMigrations; }

absl::Status MigratePgSchema(PgConnection& c) {
  PgTransaction tx(c);
  RETURN_IF_ERROR(tx.status());
  RETURN_IF_ERROR(c.ExecScript(kMigrationLock));
  RETURN_IF_ERROR(
      c.ExecScript("CREATE TABLE IF NOT EXISTS crucible_schema_version "
                   "(version INTEGER NOT NULL)"));
  ASSIGN_OR_RETURN(PgResult got,
                   c.Exec("SELECT COALESCE(MAX(version), 0)::integer FROM "
                          "crucible_schema_version"));
  const int version = got.Int32(0, 0);
  if (version > kNumMigrations) {
    return absl::FailedPreconditionError(
        absl::StrCat("the PostgreSQL store's schema version ", version,
                     " is newer than this binary's (", kNumMigrations,
                     "): run a crucible-server at least as new as the one that "
                     "migrated it"));
  }
  for (int v = version; v < kNumMigrations; ++v) {
    RETURN_IF_ERROR(c.ExecScript(kMigrations[v]));
    RETURN_IF_ERROR(
        c.Exec("INSERT INTO crucible_schema_version (version) VALUES ($1)",
               PgParams().Int32(v + 1))
            .status());
  }
  return tx.Commit();
}

}  // namespace server
