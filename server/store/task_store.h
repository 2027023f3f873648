#ifndef CRUCIBLE_SERVER_STORE_TASK_STORE_H_
#define CRUCIBLE_SERVER_STORE_TASK_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crucible/v1/task.pb.h"

namespace server {

// Filters and paging of TaskStore::ListTasks.
struct ListTasksQuery {
  // Only tasks of this tenant.
  std::string tenant;
  // Maximum tasks returned; must be > 0.
  int page_size = 50;
  // Opaque token from a previous ListTasksPage; empty for the first page.
  std::string page_token;
  // Only tasks in one of these states; empty means all.
  std::vector<crucible::v1::TaskState> states;
  // Only tasks carrying every one of these labels with the same value.
  std::map<std::string, std::string> labels;
};

// One page of ListTasks, newest first.
struct ListTasksPage {
  std::vector<crucible::v1::Task> tasks;
  // Empty on the last page.
  std::string next_page_token;
};

// A task as stored: the indexed columns and the serialized proto.
struct TaskRow {
  std::string id;
  std::string tenant;      // inserts only
  std::string request_id;  // inserts only; empty for none
  int64_t create_time_us = 0;
  int32_t priority = 0;
  int32_t state = 0;
  std::optional<int64_t> end_time_us;
  std::string blob;

  // Serializes `task` (one allocation, instead of a copy of the proto).
  static TaskRow Of(const crucible::v1::Task& task);
};

// One write, as queued to the store's writer.
struct TaskWrite {
  enum class Kind {
    // Insert a new task row; ignored if the id or (tenant, request_id) is
    // already stored (the scheduler decides idempotency; this is the net).
    kInsert,
    // Replace the stored task with the same id (ignored if there is none).
    kUpdate,
    // Store a chunk of output; ignored if (task, attempt, offset) is stored.
    kOutput,
  };
  Kind kind = Kind::kUpdate;
  TaskRow row;                         // kInsert, kUpdate
  std::string task_id;                 // kOutput
  crucible::v1::OutputChunk chunk;     // kOutput

  static TaskWrite Insert(const crucible::v1::Task& task);
  static TaskWrite Update(const crucible::v1::Task& task);
  static TaskWrite Output(std::string task_id, crucible::v1::OutputChunk chunk);
};

// Orders writes: the n-th write submitted has ticket n (from 1).
using WriteTicket = uint64_t;

// Durable storage of tasks and their output. Implementations are
// thread-safe.
//
// Writes are asynchronous and ordered: Submit() queues a write and returns
// at once; one writer applies queued writes in submission order, many per
// transaction (group commit), and a write is durable once its batch is
// committed. AfterDurable() runs a callback once every write submitted
// before it is durable, callbacks in the order they were registered, on the
// store's own thread. Reads see committed writes only and never block the
// writer.
class TaskStore {
 public:
  virtual ~TaskStore() = default;

  // Queues a write. Never blocks on disk. While the disk is full (health()
  // is RESOURCE_EXHAUSTED) writes wait in memory, in order, and are
  // committed once space is back. After a commit fails for any other reason
  // the store is broken for good (see health()) and writes are dropped.
  virtual WriteTicket Submit(TaskWrite write) = 0;
  // The ticket of the last write submitted (0 if none).
  virtual WriteTicket LastTicket() = 0;
  // Runs `fn` on the store's callback thread once `ticket` (and so every
  // earlier write) is durable, with OK, or with the error that broke the
  // store. Callbacks run one at a time in registration order; register them
  // in non-decreasing ticket order. `fn` must not block on the store.
  virtual void AfterDurable(WriteTicket ticket,
                            std::function<void(absl::Status)> fn) = 0;
  // Runs `fn` on the callback thread after a burst: whenever it has run
  // callbacks and the next one (if any) is not durable yet, before it
  // waits. Lets callbacks queue messages and the caller send them once per
  // burst. nullptr clears it. Call it while no callback runs.
  virtual void SetBurstEnd(std::function<void()> fn) = 0;
  // Blocks until `ticket` is durable (OK), the store broke (its error), or
  // the disk is full (RESOURCE_EXHAUSTED: the write still waits and is
  // committed once space is back).
  virtual absl::Status AwaitDurable(WriteTicket ticket) = 0;
  // Blocks until every callback registered so far has run. While the disk
  // is full it gives up after one more try (a shutdown cannot wait for
  // space): the writes still waiting are dropped, their callbacks get the
  // error and the store is broken for good.
  virtual void DrainCallbacks() = 0;
  // OK while writes succeed; RESOURCE_EXHAUSTED ("the task store is full:
  // ...") while the disk is full and writes wait; the error of a commit
  // that failed for any other reason, for good.
  virtual absl::Status health() = 0;

  // NOT_FOUND if there is no such task.
  virtual absl::StatusOr<crucible::v1::Task> GetTask(
      const std::string& task_id) = 0;
  // The task of `tenant` created with `request_id`; NOT_FOUND if none.
  virtual absl::StatusOr<crucible::v1::Task> FindByRequestId(
      const std::string& tenant, const std::string& request_id) = 0;

  // Newest first. INVALID_ARGUMENT for a malformed page token.
  virtual absl::StatusOr<ListTasksPage> ListTasks(
      const ListTasksQuery& query) = 0;

  // Every task in a non-terminal state (QUEUED, LEASED, RUNNING), oldest
  // first (creation order).
  virtual absl::StatusOr<std::vector<crucible::v1::Task>> LoadActiveTasks() = 0;

  // Output of one attempt from `offset` on (the first chunk is cut so that
  // it starts at `offset`), in offset order, at most `max_bytes` bytes in
  // total (at least one chunk if any). `stream` UNSPECIFIED means both.
  virtual absl::StatusOr<std::vector<crucible::v1::OutputChunk>> ReadOutput(
      const std::string& task_id, int32_t attempt, int64_t offset,
      crucible::v1::OutputStream stream, int64_t max_bytes) = 0;

  // Deletes up to `limit` terminal tasks that ended before `cutoff`, with
  // their output, durably. Returns how many were deleted. While the disk is
  // full, RESOURCE_EXHAUSTED at once.
  virtual absl::StatusOr<int> PurgeEndedBefore(absl::Time cutoff,
                                               int limit) = 0;

  // Submit + AwaitDurable.
  absl::Status Write(TaskWrite write) { return AwaitDurable(Submit(std::move(write))); }
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_STORE_TASK_STORE_H_
