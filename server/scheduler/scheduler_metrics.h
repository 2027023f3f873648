#ifndef CRUCIBLE_SERVER_SCHEDULER_SCHEDULER_METRICS_H_
#define CRUCIBLE_SERVER_SCHEDULER_SCHEDULER_METRICS_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "crucible/v1/task.pb.h"

namespace server {

// The scheduler's Prometheus series (docs/operator-guide.md, "Metrics"),
// looked up once (at construction, or at a tenant's first task) so that an
// update under the scheduler's lock is one relaxed atomic. Label values are
// states, reasons, blames, priority bands and tenants (a set the operator
// configures), never a task or worker id. Transition and Forget are called
// under the scheduler's lock (they keep a per-tenant cache); the other
// calls are thread-safe.
class SchedulerMetrics {
 public:
  explicit SchedulerMetrics(common::MetricsRegistry& registry);

  // A task of `tenant` and `priority` went from `from` to `to`; UNSPECIFIED
  // `from`: it appeared (new or rebuilt). Keeps
  // crucible_server_tasks{state,tenant,priority} and counts the ends by
  // state and `reason` (the result's; only read when `to` is terminal).
  void Transition(const std::string& tenant, int32_t priority,
                  crucible::v1::TaskState from, crucible::v1::TaskState to,
                  crucible::v1::TerminationReason reason);
  // A task of this process has gone from memory without a transition (the
  // scheduler is destroyed): it leaves crucible_server_tasks.
  void Forget(const std::string& tenant, int32_t priority,
              crucible::v1::TaskState state);
  // The band of a priority, as the `priority` label says it: "high" (> 0),
  // "normal" (0) or "low" (< 0).
  static const char* PriorityBand(int32_t priority);
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
  // Free credits of the open sessions went up (+) or down (-).
  void Credits(int64_t delta) { credits_.Add(static_cast<double>(delta)); }
  // WatchTask / StreamTaskOutput subscriptions opened (+) or closed (-).
  void Subscribers(int64_t delta) {
    subscribers_.Add(static_cast<double>(delta));
  }

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
  common::Gauge& credits_;
  common::Gauge& subscribers_;
  common::MetricFamily<common::Gauge>& tasks_;
  common::MetricFamily<common::Counter>& ended_;
  static constexpr int kBands = 3;
  static constexpr int kReasons = 8;  // TerminationReason values 0..7
  // A tenant's crucible_server_tasks series by band and TaskState value;
  // null for the terminal states (and until first used).
  using TenantSeries = std::array<std::array<common::Gauge*, kStates>, kBands>;
  absl::flat_hash_map<std::string, TenantSeries> tenants_;
  // Ends by TaskState value and TerminationReason value.
  std::array<std::array<common::Counter*, kReasons>, kStates> ended_by_{};

  common::Counter& EndedSeries(crucible::v1::TaskState state,
                               crucible::v1::TerminationReason reason);
  common::Gauge* TasksSeries(const std::string& tenant, int32_t priority,
                             crucible::v1::TaskState state);
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_SCHEDULER_SCHEDULER_METRICS_H_
