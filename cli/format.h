#ifndef CRUCIBLE_CLI_FORMAT_H_
#define CRUCIBLE_CLI_FORMAT_H_

#include <google/protobuf/message.h>

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "crucible/v1/task.pb.h"

namespace cli {

// Human-readable, multi-line summary of a task (`crucible get`). Pure.
std::string FormatTask(const crucible::v1::Task& task, absl::Time now);

// The `crucible list` table: ID, STATE, EXIT, IMAGE, COMMAND, AGE (and
// TENANT after ID if `tenant_column`), with a header line unless `header`
// is false. Pure.
std::string FormatTable(const std::vector<crucible::v1::Task>& tasks,
                        absl::Time now, bool header = true,
                        bool tenant_column = false);

// One artifact as `get` and `artifacts` show it: "out/a.json (12 bytes)",
// "big.bin (9000000 bytes, skipped: over the limit)", "report.txt (not
// found)", "out/dir (skipped: not a regular file)"; with `sha256`, a
// collected one's checksum too: "out/a.json (12 bytes, sha256 9f86...)".
// Pure.
std::string FormatArtifact(const crucible::v1::ArtifactInfo& artifact,
                           bool sha256 = false);

// "5s", "3m", "2h", "4d".
std::string FormatAge(absl::Duration age);

// Any message as one line of the protobuf JSON mapping (lowerCamelCase
// names, enums by name, bytes in base64), zeros and empty strings included
// so that scripts find every field.
std::string ToJson(const google::protobuf::Message& message);
// The task as one line of JSON (ToJson).
std::string TaskToJson(const crucible::v1::Task& task);

// "2026-11-26T05:51:09Z" (UTC, seconds).
std::string FormatTimestamp(absl::Time t);

// One line of `crucible watch`: time, state, attempt, then the result of an
// ended attempt and the event's message. No newline. Pure.
std::string FormatEvent(const crucible::v1::TaskEvent& event);

// The progress line shown on a terminal while a task runs in the foreground:
// "task ID RUNNING, attempt 2, 5s". Pure.
std::string ProgressLine(const std::string& task_id,
                         crucible::v1::TaskState state, int attempt,
                         absl::Duration elapsed);

}  // namespace cli

#endif  // CRUCIBLE_CLI_FORMAT_H_
