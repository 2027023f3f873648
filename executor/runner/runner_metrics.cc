#include "executor/runner/runner_metrics.h"

#include <string>

#include "absl/status/status.h"

namespace runner {

const char* RunOutcome(const crucible::v1::TaskResult& result) {
  switch (result.reason()) {
    case crucible::v1::TERMINATION_REASON_EXITED:
      return result.exit_code() == 0 ? "succeeded" : "failed";
    case crucible::v1::TERMINATION_REASON_TIMEOUT:
      return "timeout";
    case crucible::v1::TERMINATION_REASON_OOM_KILLED:
      return "oom_killed";
    case crucible::v1::TERMINATION_REASON_OUTPUT_LIMIT:
      return "output_limit";
    case crucible::v1::TERMINATION_REASON_CANCELLED:
      return "cancelled";
    case crucible::v1::TERMINATION_REASON_INFRASTRUCTURE:
      return "infrastructure";
    case crucible::v1::TERMINATION_REASON_REJECTED:
      return "rejected";
    default:
      return "unspecified";
  }
}

RunnerMetrics::RunnerMetrics(common::MetricsRegistry& r, int slots)
    : slots_(slots),
      slots_total_(r.AddGauge("crucible_executor_slots",
                              "Concurrent runs this executor admits (--slots).")
                       .WithLabels({})),
      slots_busy_(
          r.AddGauge("crucible_executor_slots_busy", "Runs holding a slot now.")
              .WithLabels({})),
      reaped_(r.AddCounter("crucible_executor_orphans_reaped_total",
                           "Containers of this executor that no run owned "
                           "(left by a crash or a lost engine), removed.")
                  .WithLabels({})),
      create_to_start_(
          r.AddHistogram("crucible_executor_container_create_to_start_seconds",
                         "Time from a run's container create call to its "
                         "start call's answer (create, the exit wait posted, "
                         "start): the engine's part of a run's start.")
              .WithLabels({})),
      runs_(r.AddCounter("crucible_executor_runs_total",
                         "Runs that ended, by outcome: succeeded, failed "
                         "(non-zero exit), timeout, oom_killed, "
                         "output_limit, cancelled, infrastructure, rejected; "
                         "error: no result (see "
                         "crucible_executor_run_errors_total).",
                         {"outcome"})),
      errors_(r.AddCounter("crucible_executor_run_errors_total",
                           "Runs that ended without a result, by status "
                           "code (RESOURCE_EXHAUSTED: every slot busy; "
                           "UNAVAILABLE: engine unreachable or draining; "
                           "INVALID_ARGUMENT, PERMISSION_DENIED: refused "
                           "by the policy).",
                           {"code"})),
      stdout_bytes_(r.AddCounter("crucible_executor_output_bytes_total",
                                 "Output bytes the runs' containers wrote "
                                 "and the executor relayed, by stream "
                                 "(up to each run's output limit).",
                                 {"stream"})
                        .WithLabels({"stdout"})),
      stderr_bytes_(
          r.AddCounter("crucible_executor_output_bytes_total", "", {"stream"})
              .WithLabels({"stderr"})) {
  slots_total_.Add(slots_);
}

void RunnerMetrics::Output(crucible::v1::OutputStream stream, size_t bytes) {
  (stream == crucible::v1::OUTPUT_STREAM_STDERR ? stderr_bytes_ : stdout_bytes_)
      .Increment(static_cast<double>(bytes));
}

RunnerMetrics::~RunnerMetrics() { slots_total_.Add(-slots_); }

void RunnerMetrics::Ended(
    const absl::StatusOr<crucible::v1::TaskResult>& result) {
  if (result.ok()) {
    runs_.WithLabels({RunOutcome(*result)}).Increment();
    return;
  }
  runs_.WithLabels({"error"}).Increment();
  errors_.WithLabels({absl::StatusCodeToString(result.status().code())})
      .Increment();
}

}  // namespace runner
