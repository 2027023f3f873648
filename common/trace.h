// Trace ids: one per task, in W3C Trace Context's trace-id format, carried
// from CreateTask to the worker and the executor and written in every log
// line about the task.
#ifndef CRUCIBLE_COMMON_TRACE_H_
#define CRUCIBLE_COMMON_TRACE_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace common {

// The gRPC metadata key of a W3C trace context's parent (lowercase, as
// gRPC keys are).
inline constexpr char kTraceparentKey[] = "traceparent";

// True if `id` is a valid W3C trace-id: 32 lowercase hex digits, not all
// zeros.
bool IsTraceId(absl::string_view id);

// The trace-id of a W3C `traceparent` value
// ("<version>-<trace-id>-<parent-id>-<flags>", e.g.
// "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), or nullopt if
// it is malformed: W3C says to ignore such a header, not to fail the call.
// Version 00 must be exactly that long; a later version may add fields
// after a '-'; version ff is invalid.
std::optional<std::string> TraceIdFromTraceparent(absl::string_view value);

// How a log line names a task: "task <id> trace=<trace id>", or
// "task <id>" for a task without one (created before trace ids existed).
std::string TaskTag(absl::string_view task_id, absl::string_view trace_id);

}  // namespace common

#endif  // CRUCIBLE_COMMON_TRACE_H_
