#ifndef CRUCIBLE_EXECUTOR_RUNNER_SCRATCH_AREA_H_
#define CRUCIBLE_EXECUTOR_RUNNER_SCRATCH_AREA_H_

#include "absl/status/status.h"
#include "crucible/v1/task.pb.h"
#include "executor/docker/engine.h"
#include "executor/policy/container_policy.h"
#include "executor/runner/runner.h"

// The engine calls of a run's scratch area (executor/policy/scratch.h),
// between the container's create and start, and after its exit. Stateless
// functions; thread-compatible.
namespace runner {

// Mounts the scratch volume of the created container `plan.name` (init)
// and uploads the spec's files into it, owned by the plan's user.
absl::Status FillScratch(docker::Engine& engine,
                         const policy::ContainerPlan& plan,
                         const crucible::v1::TaskSpec& spec);

// After the exit: downloads the working directory, matches the spec's
// artifact patterns, reports every match (and every exact path missing) in
// result.artifacts, in the order of the first pattern each matched, and
// sends the bytes of those collected to `sink` as the download brings them
// (never holding the archive), within plan.max_artifact_bytes, first come
// first kept. A failed download is logged and noted in the result's error
// message (an artifact it cut is INCOMPLETE); the run's outcome stands.
void CollectArtifacts(docker::Engine& engine, const policy::ContainerPlan& plan,
                      const crucible::v1::TaskSpec& spec, RunSink& sink,
                      crucible::v1::TaskResult& result);

}  // namespace runner

#endif  // CRUCIBLE_EXECUTOR_RUNNER_SCRATCH_AREA_H_
