#ifndef CRUCIBLE_SERVER_SCHEDULER_REQUEST_VALIDATION_H_
#define CRUCIBLE_SERVER_SCHEDULER_REQUEST_VALIDATION_H_

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "crucible/v1/task.pb.h"
#include "server/scheduler/spec_validation.h"

namespace server {

// Limits of the request fields outside the spec.
inline constexpr size_t kMaxTaskIdBytes = 128;
inline constexpr size_t kMaxCancelReasonBytes = 1024;
inline constexpr size_t kMaxPageTokenBytes = 1024;
// How far ahead spec.not_before may be.
inline constexpr absl::Duration kMaxNotBeforeAhead = absl::Hours(24 * 366);
// Requests one BatchCreateTasks may carry.
inline constexpr size_t kMaxBatchCreateRequests = 1000;
// Bytes of user input an error message may echo.
inline constexpr size_t kMaxEchoBytes = 64;

// Upper bound of the encoded size of a valid request (CreateTaskRequest is
// the largest): every field at its limit, plus the tags and lengths of each
// string (8 bytes) and map entry (16 bytes), plus 4 KiB for the scalars,
// durations, timestamps and envelopes.
inline constexpr size_t kMaxValidRequestBytes =
    kMaxImageBytes + kMaxCommandBytes + kMaxCommandEntries * 8 + kMaxEnvBytes +
    kMaxEnvEntries * 16 + kMaxStdinBytes + 8 + kMaxWorkingDirBytes + 8 +
    kMaxLabels * (kMaxLabelKeyBytes + kMaxLabelValueBytes + 16) +
    kMaxRequestIdBytes + 8 + kMaxInputBytes + kMaxInputFiles * 24 +
    kMaxArtifactPatterns * (kMaxFilePathBytes + 8) + kMaxCallbackUrlBytes + 8 +
    (4 << 10);
// The server's maximum receive message size: just above any valid request
// (also far above any QueueService message a worker sends). Larger
// messages are refused by gRPC with RESOURCE_EXHAUSTED.
inline constexpr size_t kMaxReceiveMessageBytes =
    kMaxValidRequestBytes + (64 << 10);

// User input as an error message may show it: at most kMaxEchoBytes of it
// (cut at a character boundary), control characters and invalid UTF-8 as
// \xNN, and "…" appended when cut. Every message that names user input goes
// through this.
std::string Abbreviate(absl::string_view input);

// One label `key`=`value` of `field` ("spec.labels", or "labels" for a
// ListTasks filter): INVALID_ARGUMENT for an empty key ("<field>: empty
// key"), or a key or value longer than kMaxLabelKeyBytes /
// kMaxLabelValueBytes ("<field>[<key, abbreviated>]: ...").
absl::Status ValidateLabel(absl::string_view field, absl::string_view key,
                           absl::string_view value);

// INVALID_ARGUMENT "task_id is required" if empty, or if longer than
// kMaxTaskIdBytes. (An unknown id of a valid length is NOT_FOUND, later.)
absl::Status ValidateTaskId(absl::string_view task_id);

// INVALID_ARGUMENT for a state outside the TaskState enum, a page token
// longer than kMaxPageTokenBytes, or a label filter no task could match
// (more than kMaxLabels, or a key or value above the spec's limits).
absl::Status ValidateListFilter(
    const std::vector<crucible::v1::TaskState>& states,
    absl::string_view page_token,
    const std::map<std::string, std::string>& labels);

// INVALID_ARGUMENT if `reason` is longer than kMaxCancelReasonBytes or not
// UTF-8.
absl::Status ValidateCancelReason(absl::string_view reason);

// INVALID_ARGUMENT for a stream outside the OutputStream enum, or a
// negative offset or attempt.
absl::Status ValidateOutputRequest(crucible::v1::OutputStream stream,
                                   int64_t offset, int32_t attempt);

}  // namespace server

#endif  // CRUCIBLE_SERVER_SCHEDULER_REQUEST_VALIDATION_H_
