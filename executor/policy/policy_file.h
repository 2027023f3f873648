#ifndef CRUCIBLE_EXECUTOR_POLICY_POLICY_FILE_H_
#define CRUCIBLE_EXECUTOR_POLICY_POLICY_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "executor/policy/container_policy.h"

namespace policy {

// Applies a JSON policy document to `options`; keys it does not name keep
// their value. Every key is optional:
//
//   {
//     "images": ["localhost/crucible/", "registry.example/tools/python:3.12",
//                "ghcr.io/acme/*"],         // see ParseImageRules
//     "pull_images": false,
//     "user": "65534:65534",                // numeric, never uid or gid 0
//     "runtime": "runsc",                   // OCI runtime; "" = engine default
//     "network": "none",
//     "userns": "auto",                     // a user namespace per container;
//                                           // "" = none (Docker's engine)
//     "memory_bytes":     {"default": 268435456, "max": 4294967296},
//     "cpu_millis":       {"default": 1000, "max": 4000},
//     "pids_limit":       {"default": 256, "max": 4096},
//     "tmpfs_bytes":      {"default": 67108864, "max": 1073741824},
//     "max_output_bytes": {"default": 16777216, "max": 268435456},
//     "scratch_bytes":    {"default": 67108864, "max": 1073741824},
//     "max_artifact_bytes": {"default": 16777216, "max": 268435456},
//     "max_input_files": 256,               // spec.files, count
//     "max_input_bytes": 1048576,           // spec.files, bytes together
//     "timeout":          {"default": "10m", "max": "24h"},
//     "nofile": 1024,
//     "nproc": 1024
//   }
//
// INVALID_ARGUMENT naming the key for malformed JSON, an unknown key (a
// typo must not silently loosen nothing), or a value of the wrong type.
// The values themselves are checked by ContainerPolicy::Create.
absl::Status ApplyPolicyJson(absl::string_view json_text,
                             ContainerPolicyOptions& options);

// ApplyPolicyJson on the contents of the file at `path`; NOT_FOUND if it
// cannot be read. Messages name the path.
absl::Status ApplyPolicyFile(const std::string& path,
                             ContainerPolicyOptions& options);

// The policy of a process started with the policy file `path` (empty: the
// built-in policy) for the executor `executor_id` (empty: the options'
// default, as the engine guard has it): what the executor and its engine guard
// both load, so they cannot disagree. NOT_FOUND or INVALID_ARGUMENT
// (ApplyPolicyFile, ContainerPolicy::Create) otherwise.
absl::StatusOr<ContainerPolicy> LoadPolicy(const std::string& path,
                                           const std::string& executor_id = "");

}  // namespace policy

#endif  // CRUCIBLE_EXECUTOR_POLICY_POLICY_FILE_H_
