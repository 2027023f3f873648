#ifndef CRUCIBLE_EXECUTOR_ENGINE_PROBE_H_
#define CRUCIBLE_EXECUTOR_ENGINE_PROBE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "executor/docker/engine.h"
#include "executor/policy/container_policy.h"

namespace executor {

// The shell script the probe container runs (`sh -c`): prints the memory
// and pids limits its cgroup has (cgroups v2, else v1; "unknown" if neither
// is readable) and the first line of its uid map, one "key value" per line.
inline constexpr char kLimitsProbeScript[] =
    "m=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || "
    "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null); "
    "p=$(cat /sys/fs/cgroup/pids.max 2>/dev/null || "
    "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null); "
    "echo \"memory ${m:-unknown}\"; echo \"pids ${p:-unknown}\"; "
    "echo \"uid_map $(head -n 1 /proc/self/uid_map)\"";

struct LimitsProbeOptions {
  // The image of the probe container: one the policy allows, present on
  // the engine, with `sh`, `cat` and `head` (--engine_probe_image).
  std::string image = "localhost/crucible/busybox:latest";
  // The probe container's run id (its name is crucible-<run_id>); unique
  // per executor sharing the engine.
  std::string run_id = "engine-probe";
  // The limits it asks for: tiny, so an engine that drops them is seen.
  int64_t memory_bytes = 6 * policy::kMiB;
  int64_t pids_limit = 16;
  // How long the probe container may take to run.
  absl::Duration timeout = absl::Seconds(60);
};

// What the probe saw, for the executor's log.
struct LimitsProbeReport {
  int64_t memory_bytes = 0;  // the cgroup's memory limit, inside
  int64_t pids_limit = 0;    // the cgroup's pids limit, inside
  std::string uid_map;       // first line of /proc/self/uid_map, inside
};

// Checks, before the executor takes tasks, that the engine enforces the
// limits the policy relies on rather than silently dropping them (as a
// rootless engine without cgroups v2 delegation does): it creates a probe
// container planned by `policy` like any task's (so the engine guard admits
// it as it admits tasks, and nothing else), with a tiny memory and pids
// limit, reads the limits back from the engine (inspect) and from inside
// the container (its cgroup), and, when the policy asks for a user
// namespace per container, checks the container's uid 0 is not the host's.
// The probe container is removed on every path.
//
// UNAVAILABLE if the engine could not be reached (try again later);
// FAILED_PRECONDITION naming what is wrong if the engine dropped or changed
// a limit, gave no user namespace, or the probe could not run (image
// missing or refused, the script's output unreadable); other codes as the
// engine returned them (e.g. PERMISSION_DENIED from the guard).
// Thread-compatible: call from one thread at a time.
absl::StatusOr<LimitsProbeReport> ProbeEngineLimits(
    docker::Engine& engine, const policy::ContainerPolicy& policy,
    const common::Clock& clock, const LimitsProbeOptions& options);

// Parses the probe script's output and compares it with what was asked:
// FAILED_PRECONDITION naming the limit that is missing or differs, or the
// identity uid map when `want_userns`. Pure.
absl::StatusOr<LimitsProbeReport> CheckProbeOutput(absl::string_view output,
                                                   int64_t memory_bytes,
                                                   int64_t pids_limit,
                                                   bool want_userns);

}  // namespace executor

#endif  // CRUCIBLE_EXECUTOR_ENGINE_PROBE_H_
