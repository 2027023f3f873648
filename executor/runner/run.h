#ifndef CRUCIBLE_EXECUTOR_RUNNER_RUN_H_
#define CRUCIBLE_EXECUTOR_RUNNER_RUN_H_

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "crucible/v1/executor_service.pb.h"
#include "executor/docker/engine.h"
#include "executor/policy/container_policy.h"
#include "executor/runner/runner.h"
#include "executor/runner/runner_metrics.h"

namespace runner {

// Executes one planned run against the engine (everything after the policy
// and the slot). Internal to Runner; blocks the calling thread and joins
// every thread it starts before returning.
absl::StatusOr<crucible::v1::TaskResult> ExecuteRun(
    docker::Engine& engine, const common::Clock& clock,
    const RunnerOptions& options, const crucible::v1::RunRequest& request,
    const policy::ContainerPlan& plan, RunSink& sink, RunControl& control,
    RunnerMetrics& metrics);

}  // namespace runner

#endif  // CRUCIBLE_EXECUTOR_RUNNER_RUN_H_
