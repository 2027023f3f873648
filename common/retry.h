#ifndef CRUCIBLE_COMMON_RETRY_H_
#define CRUCIBLE_COMMON_RETRY_H_

#include "absl/status/status.h"

namespace common {

// The one reading of a failure's canonical code, for every process (style
// guide: retry UNAVAILABLE; FAILED_PRECONDITION and PERMISSION_DENIED are
// never retried). A proxy's 403 is PERMISSION_DENIED: a configuration error
// that no retry fixes, not an outage.

// Whether a failed call is made again (with capped backoff): UNAVAILABLE
// always; DEADLINE_EXCEEDED only for an idempotent call (its first try may
// have taken effect, say a CreateTask with a request_id).
inline bool RetryCall(absl::StatusCode code, bool idempotent) {
  return code == absl::StatusCode::kUnavailable ||
         (idempotent && code == absl::StatusCode::kDeadlineExceeded);
}

// What the failure of a task's attempt (an error instead of a result) says.
enum class AttemptFailure {
  // The system failed (an engine, executor or worker unreachable or full, a
  // conflict): run it again, without counting it against the task.
  kSystem,
  // Maybe the task's own doing (a deadline, an internal or unknown error: a
  // stream it broke): run it again, counting the attempt.
  kMaybeTask,
  // Running it again cannot help (bad input, a precondition, permission,
  // something missing): the task fails.
  kFinal,
};

inline AttemptFailure ClassifyAttemptFailure(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kResourceExhausted:
      return AttemptFailure::kSystem;
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
      return AttemptFailure::kMaybeTask;
    default:
      return AttemptFailure::kFinal;
  }
}

}  // namespace common

#endif  // CRUCIBLE_COMMON_RETRY_H_
