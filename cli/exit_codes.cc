#include "cli/exit_codes.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/task_state.h"

namespace cli {

using crucible::v1::Task;

std::string ReasonName(crucible::v1::TerminationReason reason) {
  std::string name = crucible::v1::TerminationReason_Name(reason);
  if (absl::StartsWith(name, "TERMINATION_REASON_")) name = name.substr(19);
  return name.empty() ? absl::StrCat("REASON_", static_cast<int>(reason))
                      : name;
}

int ExitCodeForTask(const Task& task) {
  switch (task.state()) {
    case crucible::v1::TASK_STATE_SUCCEEDED:
      return kExitOk;
    case crucible::v1::TASK_STATE_TIMED_OUT:
      return kExitTimedOut;
    case crucible::v1::TASK_STATE_CANCELLED:
      return kExitCancelled;
    case crucible::v1::TASK_STATE_FAILED: {
      const int code = task.result().exit_code();
      if (task.result().reason() ==
          crucible::v1::TERMINATION_REASON_INFRASTRUCTURE) {
        return kExitUnavailable;
      }
      if (task.result().reason() == crucible::v1::TERMINATION_REASON_EXITED &&
          code >= 1 && code <= 255) {
        return code;
      }
      return kExitNoExitCode;
    }
    default:
      return kExitError;
  }
}

int ExitCodeForStatus(const absl::Status& status) {
  if (status.ok()) return kExitOk;
  if (absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status)) {
    return kExitUnavailable;
  }
  return kExitError;
}

std::string ErrorLine(const absl::Status& status) {
  return absl::StrCat("crucible: ", absl::StatusCodeToString(status.code()),
                      ": ", status.message());
}

std::string EndingLine(const Task& task) {
  if (task.state() == crucible::v1::TASK_STATE_SUCCEEDED) return "";
  if (task.state() == crucible::v1::TASK_STATE_FAILED &&
      task.result().reason() == crucible::v1::TERMINATION_REASON_EXITED &&
      ExitCodeForTask(task) != kExitNoExitCode) {
    return "";
  }
  std::string line =
      absl::StrCat("crucible: task ", task.id(), " ", StateName(task.state()));
  // The reason says more than the state only for FAILED (OOM, refusal, ...).
  if (task.state() == crucible::v1::TASK_STATE_FAILED && task.has_result() &&
      task.result().reason() != crucible::v1::TERMINATION_REASON_UNSPECIFIED) {
    absl::StrAppend(&line, " (", ReasonName(task.result().reason()), ")");
  }
  std::string detail = task.result().error_message();
  if (detail.empty()) detail = task.last_error();
  if (!detail.empty()) absl::StrAppend(&line, ": ", detail);
  return line;
}

}  // namespace cli
