#ifndef CRUCIBLE_CLI_TASK_FILE_H_
#define CRUCIBLE_CLI_TASK_FILE_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "crucible/v1/task_service.pb.h"

namespace cli {

// Requests one BatchCreateTasks of `submit --from-file` carries at most
// (the server's limit), and the bytes of their specs: well below the
// server's receive limit (a little above one largest valid request).
inline constexpr size_t kMaxBatchItems = 1000;
inline constexpr size_t kMaxBatchBytes = 1 << 20;

// One task of a tasks file, with the line it came from (1-based).
struct FileTask {
  int line = 0;
  crucible::v1::CreateTaskRequest request;
};

// A tasks file read: its tasks in order, and the lines that are not one.
struct TaskFile {
  std::vector<FileTask> tasks;
  // (line, why), in order; why is e.g. "not a TaskSpec in JSON: ...".
  std::vector<std::pair<int, std::string>> errors;
};

// Reads `content`: one TaskSpec per line in the protobuf JSON mapping
// (`crucible submit -o json` prints tasks in it); lines that are blank or
// start with `#` (after spaces) are skipped. Each task gets a request_id
// derived from `run` (--request-id, may be empty), the line's text and how
// many identical lines came before it, so that the same file submitted
// again (after a failure) answers the tasks made the first time instead of
// making them again, while a line edited or inserted makes only itself.
// Pure.
TaskFile ParseTaskFile(absl::string_view content, absl::string_view run);

// The request_id of a tasks-file line: "crucible-file-" and 128 bits of
// SHA-256 of `run`, `line_text` and `occurrence`, in hex.
std::string FileRequestId(absl::string_view run, absl::string_view line_text,
                          int occurrence);

// Splits `tasks` into consecutive batches of at most `max_items` whose
// encoded requests add up to at most `max_bytes` (a larger task goes
// alone): [begin, end) index pairs, in order.
std::vector<std::pair<size_t, size_t>> SplitBatches(
    const std::vector<FileTask>& tasks, size_t max_items = kMaxBatchItems,
    size_t max_bytes = kMaxBatchBytes);

}  // namespace cli

#endif  // CRUCIBLE_CLI_TASK_FILE_H_
