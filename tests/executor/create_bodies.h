#ifndef CRUCIBLE_TESTS_EXECUTOR_CREATE_BODIES_H_
#define CRUCIBLE_TESTS_EXECUTOR_CREATE_BODIES_H_

#include <string>
#include <vector>

#include "executor/policy/container_policy.h"

namespace testing_util {

// One container-create request: the query (name=...) and the raw body.
struct CreateRequest {
  std::string what;   // what it is, for failure messages
  std::string query;  // e.g. name=crucible-<run id>
  std::string body;   // raw JSON bytes
};

// The policy the guard tests run under: the defaults, with a runtime and a
// named network set when `named_network` (so those keys are present).
policy::ContainerPolicyOptions GuardTestPolicy(bool named_network);

// The executor's real create requests under `options`: ContainerPolicy::Plan
// for every combination of the task options that shape the body (command,
// env, working dir, stdin, explicit limits up to the maxima), each run with
// a fresh run id starting with `run_prefix`.
std::vector<CreateRequest> RealCreateRequests(
    const policy::ContainerPolicyOptions& options,
    const std::string& run_prefix);

// Requests no policy plan equals, all derived from `base` (a real request
// with every optional key present): the shapes that reached the engine
// through the old proxy; every key at every level renamed in case,
// spelled with a JSON escape or a non-ASCII letter, duplicated, removed
// (but for the optional Cmd and WorkingDir), or given a value of another
// JSON type; limits above the maxima; every Docker Engine API HostConfig
// and top-level field that a plan never has, set to a hostile value; and
// wrong queries. Each must be refused.
std::vector<CreateRequest> HostileCreateRequests(const CreateRequest& base);

}  // namespace testing_util

#endif  // CRUCIBLE_TESTS_EXECUTOR_CREATE_BODIES_H_
