#ifndef CRUCIBLE_CLI_EXIT_CODES_H_
#define CRUCIBLE_CLI_EXIT_CODES_H_

#include <string>

#include "absl/status/status.h"
#include "common/task_state.h"
#include "crucible/v1/task.pb.h"

namespace cli {

// The CLI's own exit codes (see HelpText()).
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;         // an RPC failed
inline constexpr int kExitUsage = 2;         // bad command line
inline constexpr int kExitUnavailable = 69;  // infrastructure (EX_UNAVAILABLE)
inline constexpr int kExitInterrupted = 75;  // stopped following (EX_TEMPFAIL)
inline constexpr int kExitTimedOut = 124;    // like timeout(1)
inline constexpr int kExitNoExitCode = 125;  // failed without an exit code
inline constexpr int kExitCancelled = 130;   // like a shell after SIGINT

// The exit code of `submit` for a terminal task: SUCCEEDED -> 0; FAILED
// with reason EXITED and a code in 1..255 -> that code; TIMED_OUT -> 124;
// CANCELLED -> 130; FAILED with reason INFRASTRUCTURE (Crucible failed, not
// the task) -> 69; any other FAILED -> 125. A task that is not terminal ->
// kExitError.
int ExitCodeForTask(const crucible::v1::Task& task);

// The exit code for a failed RPC: UNAVAILABLE and DEADLINE_EXCEEDED -> 69,
// any other code -> 1 (the server's message says why).
int ExitCodeForStatus(const absl::Status& status);

// "crucible: <STATUS_NAME>: <message>".
std::string ErrorLine(const absl::Status& status);

// For a terminal task that did not simply exit ("crucible: task ID TIMED_OUT:
// <detail>"); empty for SUCCEEDED and for FAILED with reason EXITED.
std::string EndingLine(const crucible::v1::Task& task);

// "RUNNING" for TASK_STATE_RUNNING.
using common::StateName;
// "EXITED" for TERMINATION_REASON_EXITED.
std::string ReasonName(crucible::v1::TerminationReason reason);

}  // namespace cli

#endif  // CRUCIBLE_CLI_EXIT_CODES_H_
