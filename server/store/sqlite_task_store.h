#ifndef CRUCIBLE_SERVER_STORE_SQLITE_TASK_STORE_H_
#define CRUCIBLE_SERVER_STORE_SQLITE_TASK_STORE_H_

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/store/task_store.h"

struct sqlite3;

namespace server {

class Stmt;  // sqlite_util.h

struct SqliteTaskStoreOptions {
  // Path of the database file; created if missing (its directory must exist).
  std::string path;
  // How long a statement waits for a lock held by another connection.
  int busy_timeout_ms = 5000;
  // Most writes committed in one transaction.
  int max_batch = 4096;
  // While the disk is full, how often the writer tries the waiting batch
  // again (the probe that notices space is back).
  absl::Duration full_retry_interval = absl::Seconds(1);
};

// TaskStore on one SQLite file in WAL mode with synchronous=FULL, so a
// committed write survives a crash. Tasks are kept as serialized protos next
// to the indexed columns the queries need.
//
// Thread-safe. One writer thread owns the write connection and commits the
// queued writes in batches: one transaction and one fsync per batch, and
// several writes of one task in a batch become one row write. Reads go
// through a second connection (WAL: they never block the writer). A
// callback thread runs AfterDurable callbacks, so the writer moves on to the
// next batch while the last one is announced.
//
// A full disk (SQLITE_FULL, or an I/O error with no space left) does not
// break the store: the batch is rolled back and kept, later writes queue
// behind it, health() says RESOURCE_EXHAUSTED, and the writer tries the
// batch again every full_retry_interval until it commits.
class SqliteTaskStore final : public TaskStore {
 public:
  // Opens (or creates) the database and applies pending migrations.
  static absl::StatusOr<std::unique_ptr<SqliteTaskStore>> Open(
      const SqliteTaskStoreOptions& options);
  // Commits what is queued, runs the remaining callbacks, joins the threads.
  ~SqliteTaskStore() override;

  WriteTicket Submit(TaskWrite write) override;
  WriteTicket LastTicket() override;
  void AfterDurable(WriteTicket ticket,
                    std::function<void(absl::Status)> fn) override;
  absl::Status AwaitDurable(WriteTicket ticket) override;
  void DrainCallbacks() override;
  void SetBurstEnd(std::function<void()> fn) override;
  absl::Status health() override;

  absl::StatusOr<crucible::v1::Task> GetTask(
      const std::string& task_id) override;
  absl::StatusOr<crucible::v1::Task> FindByRequestId(
      const std::string& tenant, const std::string& request_id) override;
  absl::StatusOr<ListTasksPage> ListTasks(const ListTasksQuery& query) override;
  absl::StatusOr<std::vector<crucible::v1::Task>> LoadActiveTasks() override;
  absl::StatusOr<std::vector<crucible::v1::OutputChunk>> ReadOutput(
      const std::string& task_id, int32_t attempt, int64_t offset,
      crucible::v1::OutputStream stream, int64_t max_bytes) override;
  absl::StatusOr<int> PurgeEndedBefore(absl::Time cutoff, int limit) override;

  // The schema version after migrations.
  static int CurrentSchemaVersion();
  // Batches committed so far (for tests and the benchmark).
  int64_t batches_committed();

 private:
  // A queued write, or a job run alone in its own transaction.
  struct Pending {
    WriteTicket ticket = 0;
    TaskWrite write;
    std::function<absl::Status(sqlite3*)> job;
  };
  struct Callback {
    WriteTicket ticket;
    std::function<void(absl::Status)> fn;
  };

  SqliteTaskStore(const SqliteTaskStoreOptions& options, sqlite3* write_db,
                  sqlite3* read_db);
  WriteTicket Enqueue(Pending pending);
  void WriterLoop();
  void CallbackLoop();
  // On the writer thread: the next batch (empty once stopped and drained);
  // commits it, retrying while the disk is full.
  std::vector<Pending> NextBatch();
  absl::Status CommitBatch(std::vector<Pending>& batch);
  absl::Status ApplyBatch(std::vector<Pending>& batch);
  void ResetStatements();
  // The store-full status if `s` (a failed commit) means the disk is full;
  // OK if it failed for another reason.
  absl::Status FullError(const absl::Status& s) const;
  bool WriterReady() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || !queue_.empty();
  }
  // Ends the wait between two tries on a full disk early.
  bool RetryNow() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || drain_waiters_ > 0;
  }
  bool CallbackReady() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Durable(WriteTicket t) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return durable_ >= t || !failed_.ok();
  }
  struct DurableArg {
    SqliteTaskStore* store;
    WriteTicket ticket;
  };
  static bool IsDurable(DurableArg* arg);
  // Durable, or the disk is full (AwaitDurable does not wait for space).
  static bool IsDurableOrFull(DurableArg* arg);
  bool Drained() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return callbacks_.empty() && !callback_running_;
  }
  absl::StatusOr<crucible::v1::Task> GetTaskLocked(const std::string& task_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(read_mu_);

  const SqliteTaskStoreOptions options_;
  sqlite3* const write_db_;  // the writer thread's alone after Open
  // The writer thread's statements, prepared on first use.
  std::unique_ptr<Stmt> insert_task_, update_task_, insert_output_;

  absl::Mutex read_mu_;
  sqlite3* const read_db_ ABSL_PT_GUARDED_BY(read_mu_);

  absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  WriteTicket last_ticket_ ABSL_GUARDED_BY(mu_) = 0;
  WriteTicket durable_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status failed_ ABSL_GUARDED_BY(mu_);
  // RESOURCE_EXHAUSTED while the disk is full and writes wait; OK otherwise.
  absl::Status full_ ABSL_GUARDED_BY(mu_);
  // !failed_.ok() || !full_.ok(), for health() without the lock.
  std::atomic<bool> unhealthy_{false};
  // Callers blocked in DrainCallbacks.
  int drain_waiters_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool writer_done_ ABSL_GUARDED_BY(mu_) = false;
  int64_t batches_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Callback> callbacks_ ABSL_GUARDED_BY(mu_);
  bool callback_running_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void()> burst_end_ ABSL_GUARDED_BY(mu_);

  std::thread writer_;
  std::thread callback_thread_;
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_STORE_SQLITE_TASK_STORE_H_
