#ifndef CRUCIBLE_SERVER_STORE_TASK_STORE_H_
#define CRUCIBLE_SERVER_STORE_TASK_STORE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
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

// Result of TaskStore::CreateTask.
struct CreateTaskResult {
  // The stored task: the new one, or the one created earlier with the same
  // (tenant, request_id).
  crucible::v1::Task task;
  // False if an existing task was returned.
  bool created = false;
};

// Result of TaskStore::AppendOutput.
struct AppendOutputResult {
  // The chunk as stored (possibly cut at the cap); empty data if nothing was
  // stored (duplicate offset or cap reached).
  crucible::v1::OutputChunk stored;
  // True if bytes were dropped because of the cap.
  bool truncated = false;
};

// Durable storage of tasks and their output. Implementations are
// thread-safe. A method that returned OK has made its write durable.
//
// The interface is per-operation on purpose: a later implementation may
// batch concurrent writes (group commit) behind the same calls.
class TaskStore {
 public:
  virtual ~TaskStore() = default;

  // Stores a new task (id, tenant, state, create_time set by the caller).
  // If task.request_id() is non-empty and a task of the same tenant already
  // has it, returns that task with created == false and stores nothing.
  // ALREADY_EXISTS if the id is taken.
  virtual absl::StatusOr<CreateTaskResult> CreateTask(
      const crucible::v1::Task& task) = 0;

  // NOT_FOUND if there is no such task.
  virtual absl::StatusOr<crucible::v1::Task> GetTask(
      const std::string& task_id) = 0;

  // Newest first. INVALID_ARGUMENT for a malformed page token.
  virtual absl::StatusOr<ListTasksPage> ListTasks(
      const ListTasksQuery& query) = 0;

  // Replaces the stored task with the same id. NOT_FOUND if there is none.
  virtual absl::Status UpdateTask(const crucible::v1::Task& task) = 0;

  // Every task in a non-terminal state (QUEUED, LEASED, RUNNING), oldest
  // first (creation order).
  virtual absl::StatusOr<std::vector<crucible::v1::Task>> LoadActiveTasks() = 0;

  // Stores a chunk of one attempt's output (chunk.attempt, chunk.offset).
  // At most `max_bytes` bytes are kept per attempt; the rest is dropped and
  // reported as truncated. A chunk starting at an offset already stored is
  // ignored (a replayed report).
  virtual absl::StatusOr<AppendOutputResult> AppendOutput(
      const std::string& task_id, const crucible::v1::OutputChunk& chunk,
      int64_t max_bytes) = 0;

  // Output of one attempt from `offset` on (the first chunk is cut so that
  // it starts at `offset`), in offset order, at most `max_bytes` bytes in
  // total (at least one chunk if any). `stream` UNSPECIFIED means both.
  virtual absl::StatusOr<std::vector<crucible::v1::OutputChunk>> ReadOutput(
      const std::string& task_id, int32_t attempt, int64_t offset,
      crucible::v1::OutputStream stream, int64_t max_bytes) = 0;
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_STORE_TASK_STORE_H_
