#include "cli/format.h"

#include <algorithm>

#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/exit_codes.h"
#include "common/proto_time.h"

namespace cli {
namespace {

// Quotes an argv word for display if it has spaces or quotes.
std::string ShellWord(const std::string& word) {
  if (!word.empty() && word.find_first_of(" \t\n'\"$\\") == std::string::npos) return word;
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string CommandLine(const crucible::v1::TaskSpec& spec) {
  std::vector<std::string> words;
  for (const std::string& w : spec.command()) words.push_back(ShellWord(w));
  return words.empty() ? "(image default)" : absl::StrJoin(words, " ");
}

std::string Ellipsize(std::string s, size_t max) {
  for (char& c : s) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  if (s.size() <= max) return s;
  return s.substr(0, max - 3) + "...";
}

std::string ExitColumn(const crucible::v1::Task& task) {
  if (task.has_result() &&
      task.result().reason() == crucible::v1::TERMINATION_REASON_EXITED) {
    return absl::StrCat(task.result().exit_code());
  }
  return "-";
}

std::string TimeLine(const google::protobuf::Timestamp& t, absl::Time now) {
  absl::Time at = common::FromProtoTime(t);
  return absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", at, absl::UTCTimeZone()), " (",
                      FormatAge(now - at), " ago)");
}

}  // namespace

std::string FormatAge(absl::Duration age) {
  if (age < absl::ZeroDuration()) age = absl::ZeroDuration();
  if (age < absl::Minutes(1)) return absl::StrCat(absl::ToInt64Seconds(age), "s");
  if (age < absl::Hours(1)) return absl::StrCat(absl::ToInt64Minutes(age), "m");
  if (age < absl::Hours(48)) return absl::StrCat(absl::ToInt64Hours(age), "h");
  return absl::StrCat(absl::ToInt64Hours(age) / 24, "d");
}

std::string FormatTask(const crucible::v1::Task& task, absl::Time now) {
  std::string out;
  auto line = [&out](absl::string_view key, absl::string_view value) {
    absl::StrAppend(&out, key, std::string(std::max<int>(1, 12 - key.size()), ' '), value,
                    "\n");
  };
  const crucible::v1::TaskSpec& spec = task.spec();
  line("ID:", task.id());
  line("STATE:", StateName(task.state()));
  line("IMAGE:", spec.image());
  line("COMMAND:", CommandLine(spec));
  line("ATTEMPT:", absl::StrCat(task.attempt()));
  if (task.has_create_time()) line("CREATED:", TimeLine(task.create_time(), now));
  if (task.has_end_time()) line("ENDED:", TimeLine(task.end_time(), now));
  if (task.has_result()) {
    const crucible::v1::TaskResult& r = task.result();
    std::string result = ReasonName(r.reason());
    if (r.reason() == crucible::v1::TERMINATION_REASON_EXITED ||
        r.exit_code() != 0) {
      absl::StrAppend(&result, ", exit code ", r.exit_code());
    }
    if (r.output_truncated()) absl::StrAppend(&result, ", output truncated");
    line("RESULT:", result);
    if (!r.error_message().empty()) line("MESSAGE:", r.error_message());
  }
  if (!task.last_error().empty()) line("LAST ERROR:", task.last_error());
  if (!spec.labels().empty()) {
    std::vector<std::string> labels;
    for (const auto& [k, v] : spec.labels()) labels.push_back(absl::StrCat(k, "=", v));
    std::sort(labels.begin(), labels.end());
    line("LABELS:", absl::StrJoin(labels, ","));
  }
  return out;
}

std::string FormatTable(const std::vector<crucible::v1::Task>& tasks, absl::Time now) {
  std::vector<std::vector<std::string>> rows = {
      {"ID", "STATE", "EXIT", "IMAGE", "COMMAND", "AGE"}};
  for (const crucible::v1::Task& t : tasks) {
    std::string age = t.has_create_time()
                          ? FormatAge(now - common::FromProtoTime(t.create_time()))
                          : "-";
    rows.push_back({t.id(), StateName(t.state()), ExitColumn(t), Ellipsize(t.spec().image(), 40),
                    Ellipsize(CommandLine(t.spec()), 40), age});
  }
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

std::string TaskToJson(const crucible::v1::Task& task) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  if (!google::protobuf::util::MessageToJsonString(task, &json, options).ok()) return "{}";
  return json;
}

}  // namespace cli
