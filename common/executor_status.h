#ifndef CRUCIBLE_COMMON_EXECUTOR_STATUS_H_
#define CRUCIBLE_COMMON_EXECUTOR_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

// How an executor says it is going away, shared by the executor (which says
// it) and the worker (which takes that executor out of rotation at once
// instead of waiting for its next health check).
namespace common {

// The start of the message of the UNAVAILABLE status that ends a run (or
// refuses one) because its executor is shutting down.
inline constexpr absl::string_view kExecutorShuttingDown =
    "the executor is shutting down";

// True if `status` says its executor is shutting down.
inline bool IsExecutorShuttingDown(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable &&
         absl::StartsWith(status.message(), kExecutorShuttingDown);
}

}  // namespace common

#endif  // CRUCIBLE_COMMON_EXECUTOR_STATUS_H_
