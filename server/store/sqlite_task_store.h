#ifndef CRUCIBLE_SERVER_STORE_SQLITE_TASK_STORE_H_
#define CRUCIBLE_SERVER_STORE_SQLITE_TASK_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/store/task_store.h"

struct sqlite3;

namespace server {

struct SqliteTaskStoreOptions {
  // Path of the database file; created if missing (its directory must exist).
  std::string path;
  // How long a statement waits for a lock held by another connection.
  int busy_timeout_ms = 5000;
};

// TaskStore on one SQLite file in WAL mode with synchronous=FULL, so a write
// that returned OK survives a crash. Tasks are kept as serialized protos next
// to the indexed columns the queries need. Thread-safe: one mutex serializes
// the single connection (a group-commit writer can replace it later).
class SqliteTaskStore final : public TaskStore {
 public:
  // Opens (or creates) the database and applies pending migrations.
  static absl::StatusOr<std::unique_ptr<SqliteTaskStore>> Open(
      const SqliteTaskStoreOptions& options);
  ~SqliteTaskStore() override;

  absl::StatusOr<CreateTaskResult> CreateTask(
      const crucible::v1::Task& task) override;
  absl::StatusOr<crucible::v1::Task> GetTask(
      const std::string& task_id) override;
  absl::StatusOr<ListTasksPage> ListTasks(const ListTasksQuery& query) override;
  absl::Status UpdateTask(const crucible::v1::Task& task) override;
  absl::StatusOr<std::vector<crucible::v1::Task>> LoadActiveTasks() override;
  absl::StatusOr<AppendOutputResult> AppendOutput(
      const std::string& task_id, const crucible::v1::OutputChunk& chunk,
      int64_t max_bytes) override;
  absl::StatusOr<std::vector<crucible::v1::OutputChunk>> ReadOutput(
      const std::string& task_id, int32_t attempt, int64_t offset,
      crucible::v1::OutputStream stream, int64_t max_bytes) override;

  // The schema version after migrations.
  static int CurrentSchemaVersion();

 private:
  explicit SqliteTaskStore(sqlite3* db) : db_(db) {}
  absl::Status Migrate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Exec(const std::string& sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<crucible::v1::Task> GetTaskLocked(const std::string& task_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  sqlite3* const db_ ABSL_PT_GUARDED_BY(mu_);
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_STORE_SQLITE_TASK_STORE_H_
