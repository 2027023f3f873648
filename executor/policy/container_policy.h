#ifndef CRUCIBLE_EXECUTOR_POLICY_CONTAINER_POLICY_H_
#define CRUCIBLE_EXECUTOR_POLICY_CONTAINER_POLICY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "crucible/v1/executor_service.pb.h"
#include "nlohmann/json.hpp"

namespace policy {

inline constexpr int64_t kMiB = int64_t{1} << 20;
inline constexpr int64_t kGiB = int64_t{1} << 30;
// The largest container-create body; the docker-proxy refuses larger ones
// (deploy/docker-proxy/haproxy.cfg, body_big).
inline constexpr size_t kMaxCreateBodyBytes = 200000;

// Labels of every container: the executor that owns it, and the run, task
// and attempt it belongs to; and the task's trace id, if the run has one.
inline constexpr char kExecutorLabel[] = "crucible.executor";
inline constexpr char kRunLabel[] = "crucible.run";
inline constexpr char kTaskLabel[] = "crucible.task";
inline constexpr char kAttemptLabel[] = "crucible.attempt";
inline constexpr char kTraceLabel[] = "crucible.trace-id";

// Every task container is named kContainerNamePrefix + its run id, and every
// per-container call uses that name: the docker-proxy allows those calls
// only on names with this prefix (deploy/docker-proxy/haproxy.cfg), never on
// the engine's hex ids, so that a subverted executor cannot reach other
// workloads' containers on the same engine.
inline constexpr char kContainerNamePrefix[] = "crucible-";

// ContainerPolicyOptions::userns for a user namespace per container.
inline constexpr char kUsernsAuto[] = "auto";

// The HostConfig.UsernsMode planned for kUsernsAuto: a namespace of its own
// of 65536 ids (uids and gids 0-65535, so 65534 too). The size is explicit
// because Podman 4.3 (c/storage 1.44) otherwise estimates it from the
// image's /etc/passwd under its storage locks, and deadlocks when other
// creates and removes run at once: every later engine call then hangs
// (reproduced on a fresh engine with 6 concurrent create-start-remove loops;
// tests/executor/userns_engine_test.cc, FreshEngineTest).
inline constexpr char kUsernsAutoMode[] = "auto:size=65536";

// The name of the container of run `run_id`: kContainerNamePrefix + run_id.
// Plan refuses run ids that would not make a valid name.
std::string ContainerName(absl::string_view run_id);

// True if `run_id` may name a container: 1-64 characters of [A-Za-z0-9_.-],
// the first a letter or digit.
bool ValidRunId(absl::string_view run_id);

struct ContainerPolicyOptions {
  // An image is allowed iff its reference equals one of allowed_images or
  // starts with one of allowed_image_prefixes (see ParseImageRules).
  std::vector<std::string> allowed_images;
  std::vector<std::string> allowed_image_prefixes = {"localhost/crucible/"};
  // Pull a missing image (only images the rules above allow). Off: a
  // missing image is FAILED_PRECONDITION, and the proxy denies pulls.
  bool pull_images = false;
  // OCI runtime of every container (HostConfig.Runtime), e.g. "runsc" for
  // gVisor; empty: the engine's default.
  std::string runtime;
  // The user namespace of every container (HostConfig.UsernsMode):
  // "auto" (Podman: a namespace of its own per container, its uids mapped
  // to a range of the engine's subordinate ids that no other container and
  // no real user has; planned as kUsernsAutoMode), or "" (none: the
  // engine's default, the host's uids;
  // for engines without per-container namespaces, e.g. Docker's).
  std::string userns = "auto";
  // The network every container joins: "none" (no interface but lo), or
  // the name of a user-defined network. "host", "bridge", "default" and
  // "container:..." / "ns:..." are refused.
  std::string network = "none";
  // "uid:gid" the process runs as; numeric, uid and gid 0 are refused.
  std::string user = "65534:65534";
  // Written into the crucible.executor label of every container; 1-128
  // characters of [A-Za-z0-9_.-], starting with a letter or digit (the
  // docker-proxy allows the orphan list only with such a label filter).
  std::string executor_id = "executor";
  // Defaults (used when the spec says 0 / unset) and maxima.
  int64_t default_memory_bytes = 256 * kMiB;
  int64_t max_memory_bytes = 4 * kGiB;
  int64_t default_cpu_millis = 1000;
  int64_t max_cpu_millis = 4000;
  int64_t default_pids_limit = 256;
  int64_t max_pids_limit = 4096;
  int64_t default_tmpfs_bytes = 64 * kMiB;
  int64_t max_tmpfs_bytes = 1 * kGiB;
  absl::Duration default_timeout = absl::Minutes(10);
  absl::Duration max_timeout = absl::Hours(24);
  int64_t default_max_output_bytes = 16 * kMiB;
  int64_t max_max_output_bytes = 256 * kMiB;
  // Input files (spec.files) of one spec: at most this many, of at most
  // this many bytes together (the spec travels in one gRPC message, whose
  // limit is 4 MiB).
  int64_t max_input_files = 256;
  int64_t max_input_bytes = 1 * kMiB;
  // The scratch working directory (resources.scratch_bytes) of a spec with
  // files or artifacts.
  int64_t default_scratch_bytes = 64 * kMiB;
  int64_t max_scratch_bytes = 1 * kGiB;
  // Artifact bytes kept of one attempt (spec.max_artifact_bytes).
  int64_t default_max_artifact_bytes = 16 * kMiB;
  int64_t max_max_artifact_bytes = 256 * kMiB;
  // RLIMIT_NOFILE and RLIMIT_NPROC of the process. Both are always set:
  // Podman otherwise adds nproc=1048576, which a sandbox may not grant.
  int64_t nofile_limit = 1024;
  int64_t nproc_limit = 1024;
};

// Sorts image rules into allowed_images (exact references) and
// allowed_image_prefixes: a rule ending in '/' or ':' is a prefix; a rule
// ending in '*' is a prefix without the '*'; anything else is exact.
void ParseImageRules(const std::vector<std::string>& rules,
                     ContainerPolicyOptions& options);

// What the runner needs to run one request.
struct ContainerPlan {
  // The container's name, ContainerName(run_id): sent with the create and
  // used by every later call on the container.
  std::string name;
  nlohmann::json create_body;  // body of POST /containers/create
  // The run's limits: the spec's, each one it leaves unset (zero) replaced
  // by the policy's default. This is the one place that decides what an
  // unset limit means; the executor reports them when the run starts.
  absl::Duration timeout;
  int64_t max_output_bytes;
  crucible::v1::Resources resources;
  // Pull the image if the engine does not have it.
  bool pull_image = false;
  // Artifact bytes kept at most (the spec's, or the policy's default).
  int64_t max_artifact_bytes = 0;
  // A spec with files or artifacts (NeedsScratch) runs with a scratch
  // volume (executor/policy/scratch.h): its name (the container's), the
  // body of its create, and the directory it is bound at (the container's
  // WorkingDir). Empty name: no scratch volume.
  std::string scratch_volume;
  nlohmann::json scratch_volume_body;
  std::string scratch_dir;
};

// Turns RunRequests into hardened container-create bodies, or refuses them.
// Pure (no I/O); immutable after Create, so thread-safe.
//
// Every container: non-root numeric user, all capabilities dropped,
// no-new-privileges, read-only rootfs, no network, memory == memory+swap,
// pids, CPU, nofile and nproc limits, a noexec tmpfs at /tmp, a user
// namespace of its own (options.userns "auto"), never
// privileged, no binds, mounts, devices or host namespaces.
class ContainerPolicy {
 public:
  // INVALID_ARGUMENT for a root or non-numeric user, a userns other than
  // "auto" or "", a default above its
  // maximum, a non-positive limit, no allowed image, an empty prefix, a
  // network or runtime name that is refused or malformed, or a malformed
  // executor_id.
  static absl::StatusOr<ContainerPolicy> Create(ContainerPolicyOptions options);

  // The container name, create body and limits for `request`.
  // PERMISSION_DENIED if the image is not allowed (naming the image and the
  // rules); INVALID_ARGUMENT for a run_id that is not 1-64 characters of
  // [A-Za-z0-9_.-] starting with a letter or digit, a trace_id that is
  // neither empty nor 32 lowercase hex digits (not all zeros), a missing
  // image, a malformed image or env, or a limit above its maximum (naming
  // the field and the maximum).
  // Non-empty stdin opens the container's stdin (OpenStdin, StdinOnce).
  // A spec with files or artifacts gets a scratch volume (scratch_volume):
  // INVALID_ARGUMENT for too many or too large files, a malformed input
  // path or artifact pattern (scratch.h), a mode above 0777, a path named
  // twice or both a file and a directory, or a working_dir that cannot
  // hold the volume.
  absl::StatusOr<ContainerPlan> Plan(
      const crucible::v1::RunRequest& request) const;

  const ContainerPolicyOptions& options() const { return options_; }
  // What Plan accepts, as the executor publishes it (ExecutorService.Describe):
  // the image rules and every maximum (and the memory minimum) it checks.
  crucible::v1::ExecutorAccepts Accepts() const;
  // True if the image allowlist admits `image` (exact name or prefix).
  bool ImageAllowed(absl::string_view image) const;

 private:
  explicit ContainerPolicy(ContainerPolicyOptions options)
      : options_(std::move(options)) {}
  // The scratch size of a spec with files or artifacts, after checking its
  // working directory, files and artifact patterns.
  absl::StatusOr<int64_t> PlanScratch(const crucible::v1::TaskSpec& spec) const;
  ContainerPolicyOptions options_;
};

}  // namespace policy

#endif  // CRUCIBLE_EXECUTOR_POLICY_CONTAINER_POLICY_H_
