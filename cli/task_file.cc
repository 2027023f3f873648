#include "cli/task_file.h"

#include <openssl/sha.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"

namespace cli {

std::string FileRequestId(absl::string_view run, absl::string_view line_text,
                          int occurrence) {
  // Lengths first, so that no two (run, line, occurrence) share an input.
  const std::string input = absl::StrCat(run.size(), ":", run, line_text.size(),
                                         ":", line_text, ":", occurrence);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(),
         digest);
  return absl::StrCat("crucible-file-",
                      absl::BytesToHexString(absl::string_view(
                          reinterpret_cast<const char*>(digest), 16)));
}

TaskFile ParseTaskFile(absl::string_view content, absl::string_view run) {
  TaskFile file;
  absl::flat_hash_map<std::string, int> seen;  // line text -> times so far
  int number = 0;
  for (absl::string_view line : absl::StrSplit(content, '\n')) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty() || text.front() == '#') continue;
    FileTask task;
    task.line = number;
    google::protobuf::util::JsonParseOptions options;
    // protobuf 3.21's own util::Status, not absl's.
    const auto parsed = google::protobuf::util::JsonStringToMessage(
        std::string(text), task.request.mutable_spec(), options);
    if (!parsed.ok()) {
      // Its first line: the parser goes on to quote the input.
      const std::string why(parsed.message());
      file.errors.emplace_back(number,
                               absl::StrCat("not a TaskSpec in JSON: ",
                                            why.substr(0, why.find('\n'))));
      continue;
    }
    const int occurrence = seen[std::string(text)]++;
    task.request.set_request_id(FileRequestId(run, text, occurrence));
    file.tasks.push_back(std::move(task));
  }
  return file;
}

std::vector<std::pair<size_t, size_t>> SplitBatches(
    const std::vector<FileTask>& tasks, size_t max_items, size_t max_bytes) {
  std::vector<std::pair<size_t, size_t>> batches;
  size_t begin = 0;
  size_t bytes = 0;
  for (size_t i = 0; i < tasks.size(); ++i) {
    // The field's tag and length: a few bytes past the message.
    const size_t size = tasks[i].request.ByteSizeLong() + 8;
    if (i > begin && (i - begin >= max_items || bytes + size > max_bytes)) {
      batches.emplace_back(begin, i);
      begin = i;
      bytes = 0;
    }
    bytes += size;
  }
  if (begin < tasks.size()) batches.emplace_back(begin, tasks.size());
  return batches;
}

}  // namespace cli
