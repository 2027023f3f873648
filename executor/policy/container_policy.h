#ifndef CRUCIBLE_EXECUTOR_POLICY_CONTAINER_POLICY_H_
#define CRUCIBLE_EXECUTOR_POLICY_CONTAINER_POLICY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crucible/v1/executor_service.pb.h"
#include "nlohmann/json.hpp"

namespace policy {

inline constexpr int64_t kMiB = int64_t{1} << 20;
inline constexpr int64_t kGiB = int64_t{1} << 30;

struct ContainerPolicyOptions {
  // An image is allowed iff its reference starts with one of these.
  std::vector<std::string> allowed_image_prefixes = {"localhost/crucible/"};
  // "uid:gid" the process runs as; numeric, uid and gid 0 are refused.
  std::string user = "65534:65534";
  // Written into the crucible.executor label of every container.
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
  // RLIMIT_NOFILE and RLIMIT_NPROC of the process. Both are always set:
  // Podman otherwise adds nproc=1048576, which a sandbox may not grant.
  int64_t nofile_limit = 1024;
  int64_t nproc_limit = 1024;
};

// What the runner needs to run one request.
struct ContainerPlan {
  nlohmann::json create_body;  // body of POST /containers/create
  absl::Duration timeout;
  int64_t max_output_bytes;
};

// Turns RunRequests into hardened container-create bodies, or refuses them.
// Pure (no I/O); immutable after Create, so thread-safe.
//
// Every container: non-root numeric user, all capabilities dropped,
// no-new-privileges, read-only rootfs, no network, memory == memory+swap,
// pids, CPU, nofile and nproc limits, a noexec tmpfs at /tmp, never
// privileged, no binds, mounts, devices or host namespaces.
class ContainerPolicy {
 public:
  // INVALID_ARGUMENT for a root or non-numeric user, a default above its
  // maximum, a non-positive limit or no allowed image prefix.
  static absl::StatusOr<ContainerPolicy> Create(ContainerPolicyOptions options);

  // The create body and limits for `request`. PERMISSION_DENIED if the image
  // is not allowed (naming the image and the allowed prefixes);
  // INVALID_ARGUMENT for a missing run_id or image, a malformed image or
  // env, or a limit above its maximum (naming the field and the maximum).
  // Non-empty stdin opens the container's stdin (OpenStdin, StdinOnce).
  absl::StatusOr<ContainerPlan> Plan(const crucible::v1::RunRequest& request) const;

  const ContainerPolicyOptions& options() const { return options_; }

 private:
  explicit ContainerPolicy(ContainerPolicyOptions options)
      : options_(std::move(options)) {}
  ContainerPolicyOptions options_;
};

}  // namespace policy

#endif  // CRUCIBLE_EXECUTOR_POLICY_CONTAINER_POLICY_H_
