#ifndef CRUCIBLE_EXECUTOR_RUNNER_RUNNER_METRICS_H_
#define CRUCIBLE_EXECUTOR_RUNNER_RUNNER_METRICS_H_

#include <array>

#include "absl/status/statusor.h"
#include "common/metrics.h"
#include "crucible/v1/task.pb.h"

namespace runner {

// The runner's Prometheus series (docs/operator-guide.md, "Metrics"),
// looked up once. Labels are outcomes and status codes only, never a run or
// task id. Thread-safe.
class RunnerMetrics {
 public:
  RunnerMetrics(common::MetricsRegistry& registry, int slots);
  // Takes this runner's slots out of crucible_executor_slots.
  ~RunnerMetrics();

  // A run took a slot (+1) or gave it back (-1).
  void SlotBusy(int delta) { slots_busy_.Add(delta); }
  // A run ended: with a result (its outcome) or without (its code).
  void Ended(const absl::StatusOr<crucible::v1::TaskResult>& result);
  // A run's container wrote `bytes` of output on `stream`.
  void Output(crucible::v1::OutputStream stream, size_t bytes);
  // A run's container started this long after its create call began.
  void CreatedToStarted(absl::Duration d) {
    create_to_start_.ObserveDuration(d);
  }
  // Orphan containers removed by a reap.
  void Reaped(int n) { reaped_.Increment(n); }

 private:
  const int slots_;
  common::Gauge& slots_total_;
  common::Gauge& slots_busy_;
  common::Counter& reaped_;
  common::Histogram& create_to_start_;
  common::MetricFamily<common::Counter>& runs_;
  common::MetricFamily<common::Counter>& errors_;
  common::Counter& stdout_bytes_;
  common::Counter& stderr_bytes_;
};

// The outcome label of a run's result: "succeeded" (exit 0), "failed"
// (non-zero exit), else the termination reason in lower case ("timeout",
// "oom_killed", "output_limit", "cancelled", "infrastructure",
// "rejected").
const char* RunOutcome(const crucible::v1::TaskResult& result);

}  // namespace runner

#endif  // CRUCIBLE_EXECUTOR_RUNNER_RUNNER_METRICS_H_
