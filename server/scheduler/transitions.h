#ifndef CRUCIBLE_SERVER_SCHEDULER_TRANSITIONS_H_
#define CRUCIBLE_SERVER_SCHEDULER_TRANSITIONS_H_

#include "absl/status/status.h"
#include "crucible/v1/task.pb.h"

namespace server {

// The one place that says which state changes a task may make. OK if
// `from -> to` is allowed, FAILED_PRECONDITION otherwise (terminal states
// never change; UNSPECIFIED is never a valid source or target).
absl::Status CheckTransition(crucible::v1::TaskState from,
                             crucible::v1::TaskState to);

}  // namespace server

#endif  // CRUCIBLE_SERVER_SCHEDULER_TRANSITIONS_H_
