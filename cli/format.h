#ifndef CRUCIBLE_CLI_FORMAT_H_
#define CRUCIBLE_CLI_FORMAT_H_

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "crucible/v1/task.pb.h"

namespace cli {

// Human-readable, multi-line summary of a task (`crucible get`). Pure.
std::string FormatTask(const crucible::v1::Task& task, absl::Time now);

// The `crucible list` table: ID, STATE, EXIT, IMAGE, COMMAND, AGE. Pure.
std::string FormatTable(const std::vector<crucible::v1::Task>& tasks, absl::Time now);

// "5s", "3m", "2h", "4d".
std::string FormatAge(absl::Duration age);

// The task as one line of proto3 JSON.
std::string TaskToJson(const crucible::v1::Task& task);

}  // namespace cli

#endif  // CRUCIBLE_CLI_FORMAT_H_
