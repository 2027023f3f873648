#ifndef CRUCIBLE_WORKER_CORE_WORKER_METRICS_H_
#define CRUCIBLE_WORKER_CORE_WORKER_METRICS_H_

#include <atomic>

#include "common/metrics.h"

namespace worker {

// The worker core's Prometheus series (docs/operator-guide.md, "Metrics"),
// looked up once. The gauges are sums over the process's cores: each core
// moves them by its own changes, and takes its share out when destroyed.
// Thread-safe.
class WorkerMetrics {
 public:
  explicit WorkerMetrics(common::MetricsRegistry& registry);
  ~WorkerMetrics();

  // This core holds `n` assignments now (placed or waiting for a slot).
  void SetRunsHeld(int n) { in_flight_.Add(n - runs_.exchange(n)); }
  // `n` of this core's executors are in rotation now.
  void SetExecutorsInRotation(int n) {
    in_rotation_.Add(n - executors_.exchange(n));
  }
  // An assignment found no free executor slot and waits for one.
  void PlacementWaited() { placement_waits_.Increment(); }

 private:
  common::Gauge& in_flight_;
  common::Gauge& in_rotation_;
  common::Counter& placement_waits_;
  std::atomic<int> runs_{0};
  std::atomic<int> executors_{0};
};

}  // namespace worker

#endif  // CRUCIBLE_WORKER_CORE_WORKER_METRICS_H_
