#ifndef CRUCIBLE_COMMON_TASK_STATE_H_
#define CRUCIBLE_COMMON_TASK_STATE_H_

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "crucible/v1/task.pb.h"

namespace common {

// "RUNNING" for TASK_STATE_RUNNING ("STATE_<n>" for a number no name has):
// the CLI's word for a state and the metrics' label value.
inline std::string StateName(crucible::v1::TaskState state) {
  std::string name = crucible::v1::TaskState_Name(state);
  if (absl::StartsWith(name, "TASK_STATE_")) name = name.substr(11);
  return name.empty() ? absl::StrCat("STATE_", static_cast<int>(state)) : name;
}

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
