#include "worker/core/worker_metrics.h"

namespace worker {

WorkerMetrics::WorkerMetrics(common::MetricsRegistry& r)
    : in_flight_(r.AddGauge("crucible_worker_assignments_in_flight",
                            "Assignments this worker holds: running on an "
                            "executor or waiting for a free slot.")
                     .WithLabels({})),
      in_rotation_(r.AddGauge("crucible_worker_executors_in_rotation",
                              "Executors that pass their health checks and "
                              "get work.")
                       .WithLabels({})),
      placement_waits_(
          r.AddCounter("crucible_worker_placement_waits_total",
                       "Assignments that found no free executor slot at "
                       "once and waited for one.")
              .WithLabels({})) {}

WorkerMetrics::~WorkerMetrics() {
  SetRunsHeld(0);
  SetExecutorsInRotation(0);
}

}  // namespace worker
