#ifndef CRUCIBLE_EXECUTOR_GUARD_DESCRIBE_H_
#define CRUCIBLE_EXECUTOR_GUARD_DESCRIBE_H_

#include <string>

#include "executor/policy/container_policy.h"

namespace guard {

// Markdown: what CreateGuard admits under `options`, key by key: the values
// a task decides (image, command, env, limits up to the maxima, ...) and
// the exact value of every other key. Generated from a plan, so it follows
// the policy code; deploy/SECURITY.md carries it for the default policy
// (`crucible-docker-guard --describe`), and a test keeps the two equal.
std::string DescribeAllowedCreate(
    const policy::ContainerPolicyOptions& options);

}  // namespace guard

#endif  // CRUCIBLE_EXECUTOR_GUARD_DESCRIBE_H_
