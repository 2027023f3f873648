#ifndef CRUCIBLE_SERVER_SCHEDULER_SCHEDULER_METRICS_H_
#define CRUCIBLE_SERVER_SCHEDULER_SCHEDULER_METRICS_H_

#include <array>

#include "absl/time/time.h"
#include "common/metrics.h"
#include "crucible/v1/task.pb.h"

namespace server {

// The scheduler's Prometheus series (docs/operator-guide.md, "Metrics"),
// looked up once at construction so that an update under the scheduler's
// lock is one relaxed atomic. Label values are states and blames only,
// never a task, tenant or worker id. Thread-safe.
class SchedulerMetrics {
 public:
  explicit SchedulerMetrics(common::MetricsRegistry& registry);

  // A task went from `from` to `to`; UNSPECIFIED `from`: it appeared (new
  // or rebuilt). Keeps crucible_server_tasks{state} and counts the ends.
  void Transition(crucible::v1::TaskState from, crucible::v1::TaskState to);
  // A task of this process has gone from memory without a transition (the
  // scheduler is destroyed): it leaves crucible_server_tasks.
  void Forget(crucible::v1::TaskState state);
  // A new task was accepted (not a repeated request_id).
  void Created() { created_.Increment(); }
  // A task was leased after waiting `wait` since it was ready to run.
  void Leased(absl::Duration wait) { queue_wait_.ObserveDuration(wait); }
  // A container started this long after its lease was granted (both on
  // the server's clock).
  void Started(absl::Duration since_lease) {
    lease_to_start_.ObserveDuration(since_lease);
  }
  // An attempt ended and the task was queued again.
  void Retried(bool system) {
    (system ? retries_system_ : retries_task_).Increment();
  }
  // A lease lapsed (no heartbeat in time, or not named after a restart).
  void LeaseExpired(int n = 1) { lease_expiries_.Increment(n); }
  // A worker's report carried a lease that is not live (fenced).
  void ReportRefused() { reports_refused_.Increment(); }
  // Worker sessions opened (+1) or closed (-1).
  void WorkersConnected(int delta) { workers_connected_.Add(delta); }

 private:
  static constexpr int kStates = 8;  // TaskState values 0..7
  common::Counter& created_;
  common::Histogram& queue_wait_;
  common::Histogram& lease_to_start_;
  common::Counter& retries_task_;
  common::Counter& retries_system_;
  common::Counter& lease_expiries_;
  common::Counter& reports_refused_;
  common::Gauge& workers_connected_;
  // By TaskState value; null for the states without a series.
  std::array<common::Gauge*, kStates> tasks_{};
  std::array<common::Counter*, kStates> ended_{};
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_SCHEDULER_SCHEDULER_METRICS_H_
