#ifndef CRUCIBLE_SERVER_STORE_TASK_STORE_H_
#define CRUCIBLE_SERVER_STORE_TASK_STORE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "crucible/v1/task.pb.h"

namespace server {

// Filters and paging of TaskStore::ListTasks.
struct ListTasksQuery {
  // Only tasks of this tenant; empty: every tenant's.
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

// A stored task's proto from its bytes; DATA_LOSS if they do not parse.
absl::StatusOr<crucible::v1::Task> ParseStoredTask(const std::string& bytes);

// A task as stored: the indexed columns and the serialized proto.
struct TaskRow {
  std::string id;
  std::string tenant;      // inserts only
  std::string request_id;  // inserts only; empty for none
  int64_t create_time_us = 0;
  int32_t priority = 0;
  int32_t state = 0;
  std::optional<int64_t> end_time_us;
  // Terminal with a completion callback still owed (Task.callback PENDING).
  bool callback_pending = false;
  std::string blob;
  // Inserts only: the spec's labels, for ListTasks' filter.
  std::vector<std::pair<std::string, std::string>> labels;

  // Serializes `task` (one allocation, instead of a copy of the proto).
  static TaskRow Of(const crucible::v1::Task& task);
};

// One write of a batch (TaskStore::Commit).
struct TaskWrite {
  enum class Kind {
    // Insert a new task row; ignored if the id or (tenant, request_id) is
    // already stored (the scheduler decides idempotency; this is the net).
    kInsert,
    // Replace the stored task with the same id (ignored if there is none).
    kUpdate,
    // Store a chunk of output; ignored if (task, attempt, offset) is stored.
    kOutput,
    // Store a chunk of an artifact; ignored if (task, attempt, path,
    // offset) is stored. Not readable before its kArtifact.
    kArtifactChunk,
    // Record an artifact of an attempt as collected whole (its size and
    // checksum), which makes its chunks readable; ignored if recorded.
    kArtifact,
  };
  Kind kind = Kind::kUpdate;
  TaskRow row;                      // kInsert, kUpdate
  std::string task_id;              // kOutput, kArtifactChunk, kArtifact
  crucible::v1::OutputChunk chunk;  // kOutput
  int32_t attempt = 0;              // kArtifactChunk, kArtifact
  crucible::v1::ArtifactChunk artifact_chunk;  // kArtifactChunk
  crucible::v1::ArtifactInfo artifact;         // kArtifact

  static TaskWrite Insert(const crucible::v1::Task& task);
  static TaskWrite Update(const crucible::v1::Task& task);
  static TaskWrite Output(std::string task_id, crucible::v1::OutputChunk chunk);
  static TaskWrite ArtifactChunk(std::string task_id, int32_t attempt,
                                 crucible::v1::ArtifactChunk chunk);
  static TaskWrite Artifact(std::string task_id, int32_t attempt,
                            crucible::v1::ArtifactInfo info);
};

// What the stores share of a batch (TaskStore::Commit): several writes of
// one task become one row write, holding the last state, in the row the
// first one made (so creation order, and seq, hold); output and artifacts
// apart.
struct FoldedBatch {
  struct Row {
    bool insert = false;
    const TaskRow* first = nullptr;  // the insert's columns
    const TaskRow* last = nullptr;   // the latest state
  };
  std::vector<Row> rows;
  std::vector<const TaskWrite*> outputs;
  std::vector<const TaskWrite*> artifact_chunks;
  std::vector<const TaskWrite*> artifacts;
};
// Points into `writes`, which must outlive the result.
FoldedBatch FoldBatch(absl::Span<const TaskWrite> writes);

// ListTasks page tokens of both stores: the seq of the last task returned.
std::string PageToken(int64_t seq);
// INVALID_ARGUMENT "page_token: malformed" unless made by PageToken;
// INT64_MAX for an empty token (the first page).
absl::StatusOr<int64_t> SeqOfPageToken(const std::string& token);

// `chunk` cut to start at `offset` if it starts before (ReadOutput,
// ReadArtifact).
void CutChunkTo(int64_t offset, crucible::v1::OutputChunk& chunk);
void CutChunkTo(int64_t offset, crucible::v1::ArtifactChunk& chunk);

// A collected artifact as stored (TaskStore::FindArtifact).
struct StoredArtifact {
  int32_t attempt = 0;
  crucible::v1::ArtifactInfo info;  // path, size_bytes, sha256; COLLECTED
};

// Durable storage of tasks and their output: commits batches of writes and
// answers reads. Implementations are thread-safe and own no threads: the
// commit pipeline (ordering, group commit, announcing once durable, waiting
// out a full disk) is DurableOutbox's. Reads see committed writes only and
// never wait for a commit.
class TaskStore {
 public:
  virtual ~TaskStore() = default;

  // Commits `writes` in one transaction, in order: all of them or none.
  // Several writes of one task may become one row write. RESOURCE_EXHAUSTED
  // ("the task store is full: ...") when the disk is full: nothing is
  // committed and the same batch may be committed again later. Any other
  // error: nothing is committed. Commits and purges run one at a time.
  virtual absl::Status Commit(absl::Span<const TaskWrite> writes) = 0;

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
  // first (creation order), as stored (ParseStoredTask reads them).
  virtual absl::StatusOr<std::vector<std::string>> LoadActiveTaskBytes() = 0;
  // Up to `limit` terminal tasks whose completion callback is still owed
  // (Task.callback.state PENDING), oldest first, as stored. The default (a
  // store without callbacks) returns none.
  virtual absl::StatusOr<std::vector<std::string>> LoadPendingCallbackBytes(
      int limit) {
    return std::vector<std::string>{};
  }
  // LoadActiveTaskBytes, parsed.
  absl::StatusOr<std::vector<crucible::v1::Task>> LoadActiveTasks();

  // Output of one attempt from `offset` on (the first chunk is cut so that
  // it starts at `offset`), in offset order, at most `max_bytes` bytes in
  // total (at least one chunk if any). `stream` UNSPECIFIED means both.
  virtual absl::StatusOr<std::vector<crucible::v1::OutputChunk>> ReadOutput(
      const std::string& task_id, int32_t attempt, int64_t offset,
      crucible::v1::OutputStream stream, int64_t max_bytes) = 0;

  // The collected artifact `path` of `attempt`, or with attempt 0 of the
  // latest attempt that has one; NOT_FOUND if there is none.
  virtual absl::StatusOr<StoredArtifact> FindArtifact(
      const std::string& task_id, const std::string& path, int32_t attempt) = 0;
  // Bytes of a collected artifact from `offset` on (the first chunk is cut
  // so that it starts at `offset`), in offset order, at most `max_bytes` in
  // total (at least one chunk if any).
  virtual absl::StatusOr<std::vector<crucible::v1::ArtifactChunk>> ReadArtifact(
      const std::string& task_id, int32_t attempt, const std::string& path,
      int64_t offset, int64_t max_bytes) = 0;

  // Deletes up to `limit` terminal tasks that ended before `cutoff`, with
  // their output and artifacts, durably, in a transaction of its own. Returns
  // how many were deleted.
  virtual absl::StatusOr<int> PurgeEndedBefore(absl::Time cutoff,
                                               int limit) = 0;
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_STORE_TASK_STORE_H_
