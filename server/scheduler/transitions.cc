#include "server/scheduler/transitions.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace server {
namespace {

using crucible::v1::TaskState;
using crucible::v1::TaskState_Name;
using S = crucible::v1::TaskState;

// Every allowed transition, and nothing else.
constexpr std::pair<S, S> kAllowed[] = {
    {S::TASK_STATE_QUEUED, S::TASK_STATE_LEASED},
    {S::TASK_STATE_LEASED, S::TASK_STATE_RUNNING},
    // Retryable failure of an attempt.
    {S::TASK_STATE_LEASED, S::TASK_STATE_QUEUED},
    {S::TASK_STATE_RUNNING, S::TASK_STATE_QUEUED},
    // Cancel.
    {S::TASK_STATE_QUEUED, S::TASK_STATE_CANCELLED},
    {S::TASK_STATE_LEASED, S::TASK_STATE_CANCELLED},
    {S::TASK_STATE_RUNNING, S::TASK_STATE_CANCELLED},
    // An attempt ended (or failed for good before the container started).
    {S::TASK_STATE_LEASED, S::TASK_STATE_SUCCEEDED},
    {S::TASK_STATE_LEASED, S::TASK_STATE_FAILED},
    {S::TASK_STATE_LEASED, S::TASK_STATE_TIMED_OUT},
    {S::TASK_STATE_RUNNING, S::TASK_STATE_SUCCEEDED},
    {S::TASK_STATE_RUNNING, S::TASK_STATE_FAILED},
    {S::TASK_STATE_RUNNING, S::TASK_STATE_TIMED_OUT},
    // Attempts used up while queued (e.g. found lapsed at restart).
    {S::TASK_STATE_QUEUED, S::TASK_STATE_FAILED},
};

}  // namespace

absl::Status CheckTransition(TaskState from, TaskState to) {
  for (const auto& [f, t] : kAllowed) {
    if (f == from && t == to) return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      absl::StrCat("task cannot go from ", TaskState_Name(from), " to ",
                   TaskState_Name(to)));
}

}  // namespace server
