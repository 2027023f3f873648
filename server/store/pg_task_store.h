#ifndef CRUCIBLE_SERVER_STORE_PG_TASK_STORE_H_
#define CRUCIBLE_SERVER_STORE_PG_TASK_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "server/auth/token_store.h"
#include "server/store/pg_util.h"
#include "server/store/task_store.h"

namespace server {

struct PgTaskStoreOptions {
  // libpq connection URI (postgresql://user@host:port/db?...).
  std::string uri;
  // Connections for reads; a read waits for a free one.
  int read_connections = 4;
  // How long a transaction of this store may sit idle before PostgreSQL
  // ends its session (and so releases its locks): a server cut off in the
  // middle of a commit cannot hold the leader row's lock for longer.
  absl::Duration idle_in_transaction_timeout = absl::Seconds(10);
};

// The leader's fencing token (server/store/pg_leader.h): the lease row's
// holder and epoch as of the leader's election.
struct PgFence {
  std::string holder;
  int64_t epoch = 0;
};

// TaskStore on PostgreSQL, shared by several crucible-server processes of
// which one leads (pg_leader.h). The same tables and semantics as
// SqliteTaskStore: tasks as serialized protos next to indexed columns,
// labels and output chunks in tables of their own; a batch is one
// transaction, committed durably (PostgreSQL's synchronous_commit, on by
// default, must stay on).
//
// Fencing: once SetFence was called, every write transaction first locks
// the lease row (FOR SHARE) and checks that it still names this holder and
// epoch; if another server has taken the lease, nothing is written and the
// write answers FAILED_PRECONDITION ("fenced: ..."). A takeover waits for a
// running commit to end, so a deposed leader's writes all come before the
// new leader's reads of the queue.
//
// A full disk (SQLSTATE 53100) is RESOURCE_EXHAUSTED, as for SQLite; a lost
// connection is UNAVAILABLE (a commit may then have happened or not: the
// caller stops, and the next leader reads what is there).
//
// Thread-safe; owns no thread. It keeps the API tokens too.
class PgTaskStore final : public TaskStore, public auth::TokenStore {
 public:
  // Connects and applies pending migrations.
  static absl::StatusOr<std::unique_ptr<PgTaskStore>> Open(
      const PgTaskStoreOptions& options);
  ~PgTaskStore() override;

  // Every later write is fenced by `fence` (see above).
  void SetFence(PgFence fence);

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

  // auth::TokenStore.
  absl::Status Insert(const auth::TokenRecord& token) override;
  absl::StatusOr<std::vector<auth::TokenRecord>> LoadAll() override;
  absl::Status Revoke(const std::string& id, absl::Time when) override;

  static int CurrentSchemaVersion();

 private:
  class Reader;

  PgTaskStore(const PgTaskStoreOptions& options,
              std::unique_ptr<PgConnection> writer,
              std::vector<std::unique_ptr<PgConnection>> readers);
  // In a transaction of the writer: the fence check.
  absl::Status CheckFence() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::Status ApplyBatch(absl::Span<const TaskWrite> writes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Runs `read` on a free read connection, and once more on a reconnected
  // one if the connection was lost.
  template <typename T, typename F>
  absl::StatusOr<T> Read(F read);
  PgConnection* AcquireRead();
  void ReleaseRead(PgConnection* c);
  bool ReadFree() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(read_mu_) {
    return !idle_reads_.empty();
  }

  const PgTaskStoreOptions options_;

  absl::Mutex write_mu_;
  const std::unique_ptr<PgConnection> writer_ ABSL_PT_GUARDED_BY(write_mu_);
  std::optional<PgFence> fence_ ABSL_GUARDED_BY(write_mu_);

  absl::Mutex read_mu_;
  std::vector<PgConnection*> idle_reads_ ABSL_GUARDED_BY(read_mu_);
  const std::vector<std::unique_ptr<PgConnection>> readers_;
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_STORE_PG_TASK_STORE_H_
