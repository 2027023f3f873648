#ifndef CRUCIBLE_COMMON_TASK_STATE_H_
#define CRUCIBLE_COMMON_TASK_STATE_H_

#include "crucible/v1/task.pb.h"

namespace common {

// True for the states a task never leaves: SUCCEEDED, FAILED, TIMED_OUT and
// CANCELLED. The one definition for the server, the CLI and the tests.
inline bool IsTerminal(crucible::v1::TaskState state) {
  return state == crucible::v1::TASK_STATE_SUCCEEDED ||
         state == crucible::v1::TASK_STATE_FAILED ||
         state == crucible::v1::TASK_STATE_TIMED_OUT ||
         state == crucible::v1::TASK_STATE_CANCELLED;
}

}  // namespace common

#endif  // CRUCIBLE_COMMON_TASK_STATE_H_
