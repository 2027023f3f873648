#ifndef CRUCIBLE_SERVER_STORE_SQLITE_TASK_STORE_H_
#define CRUCIBLE_SERVER_STORE_SQLITE_TASK_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "server/auth/token_store.h"
#include "server/store/task_store.h"

struct sqlite3;

namespace server {

class Stmt;  // sqlite_util.h

struct SqliteTaskStoreOptions {
  // Path of the database file; created if missing (its directory must exist).
  std::string path;
  // How long a statement waits for a lock held by another connection.
  int busy_timeout_ms = 5000;
  // Connections for reads (WAL: they never block the writer nor each
  // other); a read waits for a free one.
  int read_connections = 4;
};

// TaskStore on one SQLite file in WAL mode with synchronous=FULL, so a
// committed batch survives a crash. Tasks are kept as serialized protos next
// to the indexed columns the queries need; labels in a table of their own,
// so ListTasks filters them in SQL.
//
// Thread-safe, and owns no thread. One write connection commits batches
// (one transaction and one fsync per batch; several writes of one task in a
// batch become one row write) and purges, one at a time; reads take one of
// a small pool of read connections.
//
// A full disk (SQLITE_FULL, or an I/O error with no space left) rolls the
// batch back and answers RESOURCE_EXHAUSTED, so the caller can keep it and
// try again.
//
// It keeps the API tokens too (auth::TokenStore), in the same file.
class SqliteTaskStore final : public TaskStore, public auth::TokenStore {
 public:
  // Opens (or creates) the database and applies pending migrations.
  static absl::StatusOr<std::unique_ptr<SqliteTaskStore>> Open(
      const SqliteTaskStoreOptions& options);
  ~SqliteTaskStore() override;

  absl::Status Commit(absl::Span<const TaskWrite> writes) override;
  absl::StatusOr<crucible::v1::Task> GetTask(
      const std::string& task_id) override;
  absl::StatusOr<crucible::v1::Task> FindByRequestId(
      const std::string& tenant, const std::string& request_id) override;
  absl::StatusOr<ListTasksPage> ListTasks(const ListTasksQuery& query) override;
  absl::StatusOr<std::vector<std::string>> LoadActiveTaskBytes() override;
  absl::StatusOr<std::vector<std::string>> LoadPendingCallbackBytes(
      int limit) override;
  absl::StatusOr<std::vector<crucible::v1::OutputChunk>> ReadOutput(
      const std::string& task_id, int32_t attempt, int64_t offset,
      crucible::v1::OutputStream stream, int64_t max_bytes) override;
  absl::StatusOr<StoredArtifact> FindArtifact(const std::string& task_id,
                                              const std::string& path,
                                              int32_t attempt) override;
  absl::StatusOr<std::vector<crucible::v1::ArtifactChunk>> ReadArtifact(
      const std::string& task_id, int32_t attempt, const std::string& path,
      int64_t offset, int64_t max_bytes) override;
  absl::StatusOr<int> PurgeEndedBefore(absl::Time cutoff, int limit) override;

  // auth::TokenStore (sqlite_token_store.cc).
  absl::Status Insert(const auth::TokenRecord& token) override;
  absl::StatusOr<std::vector<auth::TokenRecord>> LoadAll() override;
  absl::Status Revoke(const std::string& id, absl::Time when) override;

  // The schema version after migrations.
  static int CurrentSchemaVersion();

 private:
  class ReadConnection;

  SqliteTaskStore(const SqliteTaskStoreOptions& options, sqlite3* write_db,
                  std::vector<sqlite3*> read_dbs);
  absl::Status ApplyBatch(absl::Span<const TaskWrite> writes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::Status InsertLabels(const TaskRow& row, int64_t seq)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::Status PurgeLocked(absl::Time cutoff, int limit, int& purged)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  void ResetStatements() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // The store-full status if `s` (a failed commit) means the disk is full;
  // `s` itself otherwise.
  absl::Status FullError(const absl::Status& s) const;
  // A free read connection, waiting for one if all are taken.
  sqlite3* AcquireRead();
  void ReleaseRead(sqlite3* db);
  bool ReadFree() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(read_mu_) {
    return !idle_reads_.empty();
  }

  const SqliteTaskStoreOptions options_;

  absl::Mutex write_mu_;
  sqlite3* const write_db_ ABSL_PT_GUARDED_BY(write_mu_);
  // Statements of the write connection, prepared on first use.
  std::unique_ptr<Stmt> insert_task_ ABSL_GUARDED_BY(write_mu_);
  std::unique_ptr<Stmt> update_task_ ABSL_GUARDED_BY(write_mu_);
  std::unique_ptr<Stmt> insert_output_ ABSL_GUARDED_BY(write_mu_);
  std::unique_ptr<Stmt> insert_label_ ABSL_GUARDED_BY(write_mu_);
  std::unique_ptr<Stmt> insert_artifact_chunk_ ABSL_GUARDED_BY(write_mu_);
  std::unique_ptr<Stmt> insert_artifact_ ABSL_GUARDED_BY(write_mu_);

  absl::Mutex read_mu_;
  std::vector<sqlite3*> idle_reads_ ABSL_GUARDED_BY(read_mu_);
  const std::vector<sqlite3*> read_dbs_;  // all of them, for the destructor
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_STORE_SQLITE_TASK_STORE_H_
