#ifndef CRUCIBLE_SERVER_TASK_OUTPUT_STREAM_H_
#define CRUCIBLE_SERVER_TASK_OUTPUT_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/stream_write_queue.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "server/blocking_pool.h"
#include "server/scheduler/scheduler.h"

namespace server {

// What a WatchTask or StreamTaskOutput stream ends with when the server
// stops (TaskListener::OnGoingAway): UNAVAILABLE, which clients retry.
grpc::Status GoingAwayStatus(const std::string& reason);

// The reactor of TaskService.StreamTaskOutput: stored output of one attempt
// from an offset, then (with follow) live output until the task ends.
// Attempt 0 means the latest, and with follow moves on to a new attempt when
// the task is retried. Owns itself (see ReactorJobs). Store reads run on the
// pool; live chunks are queued by the scheduler's delivery without blocking.
class TaskOutputStream final
    : public grpc::ServerWriteReactor<grpc::ByteBuffer>,
      public TaskListener {
 public:
  TaskOutputStream(Scheduler& scheduler, BlockingPool& pool, TenantScope scope,
                   const crucible::v1::StreamTaskOutputRequest& request,
                   int64_t max_live_bytes);

  void OnEvent(const crucible::v1::TaskEvent& event) override;
  void OnOutput(const crucible::v1::OutputChunk& chunk) override;
  void OnGoingAway(const std::string& reason) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // Bytes read from the store per page.
  static constexpr int64_t kPageBytes = 1 << 20;

  // Subscribes, reads the first page and starts writing. On the pool.
  void Start();
  // Writes what is pending; reads the next stored page when allowed; moves
  // live chunks in once the stored ones are exhausted; finishes at the end.
  void Pump(bool may_read);
  // Queues the part of `chunk` past next_offset_ (if it is of our attempt).
  void AcceptLocked(const crucible::v1::OutputChunk& chunk)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Scheduler& scheduler_;
  const TenantScope scope_;
  const crucible::v1::StreamTaskOutputRequest request_;
  // Live output held for a slow reader before falling back to the store.
  const int64_t max_live_bytes_;
  absl::Mutex mu_;
  int64_t subscription_ ABSL_GUARDED_BY(mu_) = 0;
  int32_t attempt_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_offset_ ABSL_GUARDED_BY(mu_) = 0;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool backlog_done_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool task_ended_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<crucible::v1::OutputChunk> live_ ABSL_GUARDED_BY(mu_);
  int64_t live_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  common::StreamWriteQueue<TaskOutputStream, grpc::ByteBuffer> out_
      ABSL_GUARDED_BY(mu_){this};
  ReactorJobs jobs_;  // last: its cleanup reads the fields above
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_TASK_OUTPUT_STREAM_H_
