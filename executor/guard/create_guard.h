#ifndef CRUCIBLE_EXECUTOR_GUARD_CREATE_GUARD_H_
#define CRUCIBLE_EXECUTOR_GUARD_CREATE_GUARD_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "executor/policy/container_policy.h"

namespace guard {

// Caller bytes as the guard's messages show them: quoted, C-escaped, at
// most a short prefix ("..." after it when cut).
std::string QuoteCallerBytes(absl::string_view s);

// What the guard forwards for one admitted container create.
struct AdmittedCreate {
  std::string name;  // the container's name, crucible-<run id>
  std::string body;  // the JSON body, re-encoded by the guard
};

// The engine guard's decision on POST /containers/create, positively: a
// create is admitted only if its body is exactly one that
// ContainerPolicy::Plan produces for some RunRequest under the executor's
// policy, and its query names the container crucible-<that run's id>.
//
// It reads the task's own fields (image, command, env, working dir, stdin
// on or off, the run's labels, the four resource limits) out of the body,
// plans them again with the same policy code the executor runs, and
// compares the two bodies key by key, value by value and type by type. So
// the guard's allowlist is the executor's policy itself and cannot drift
// from it: an unknown key, a missing or different hardening value, a value
// of another type or a limit above the policy's maximum is refused. Before
// that, the raw bytes are refused if a key is not plain ASCII (no escapes,
// no characters the engine would fold), a key repeats in one object, or
// the nesting is deeper than any planned body. What is forwarded is the
// planned body, re-encoded, never the caller's bytes.
//
// Immutable after construction, so thread-safe.
class CreateGuard {
 public:
  // `executor_id`, if not empty, is the only crucible.executor label
  // admitted; empty admits any plain name (a proxy shared by executors).
  CreateGuard(policy::ContainerPolicyOptions options, std::string executor_id);

  // PERMISSION_DENIED, saying why (never echoing more than a short prefix
  // of the caller's bytes), for a create that is refused.
  absl::StatusOr<AdmittedCreate> Check(absl::string_view query,
                                       absl::string_view body) const;

  // The decision on POST /volumes/create, positively: admitted only if the
  // body is exactly the scratch volume the policy plans for a spec with
  // files or artifacts (policy::ScratchVolumeBody): named crucible-<run id>
  // (the name of that run's container, whose create admits a bind of this
  // volume only), driver local, a tmpfs of exactly the policy's options,
  // its size within scratch_bytes.max; and no query. PERMISSION_DENIED
  // otherwise. AdmittedCreate.name is the volume's name.
  absl::StatusOr<AdmittedCreate> CheckVolume(absl::string_view query,
                                             absl::string_view body) const;

  const policy::ContainerPolicyOptions& options() const { return options_; }

 private:
  const policy::ContainerPolicyOptions options_;
  const std::string executor_id_;
};

}  // namespace guard

#endif  // CRUCIBLE_EXECUTOR_GUARD_CREATE_GUARD_H_
