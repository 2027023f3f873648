#include "cli/format.h"

#include <google/protobuf/duration.pb.h>
#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/exit_codes.h"
#include "common/proto_time.h"

namespace cli {
namespace {

// Quotes an argv word for display if it has spaces or quotes.
std::string ShellWord(const std::string& word) {
  if (!word.empty() && word.find_first_of(" \t\n'\"$\\") == std::string::npos)
    return word;
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

// "memory=64Mi cpu=500m timeout=30s" for the limits the spec sets.
std::string Limits(const crucible::v1::TaskSpec& spec) {
  std::vector<std::string> parts;
  const crucible::v1::Resources& r = spec.resources();
  if (r.memory_bytes() > 0)
    parts.push_back(absl::StrCat("memory=", r.memory_bytes()));
  if (r.cpu_millis() > 0)
    parts.push_back(absl::StrCat("cpu=", r.cpu_millis(), "m"));
  if (r.pids_limit() > 0)
    parts.push_back(absl::StrCat("pids=", r.pids_limit()));
  if (r.tmpfs_bytes() > 0)
    parts.push_back(absl::StrCat("tmpfs=", r.tmpfs_bytes()));
  if (spec.has_timeout()) {
    parts.push_back(absl::StrCat(
        "timeout=",
        absl::FormatDuration(common::FromProtoDuration(spec.timeout()))));
  }
  if (spec.max_output_bytes() > 0) {
    parts.push_back(absl::StrCat("max-output=", spec.max_output_bytes()));
  }
  return absl::StrJoin(parts, " ");
}

std::string TimeLine(const google::protobuf::Timestamp& t, absl::Time now) {
  absl::Time at = common::FromProtoTime(t);
  return absl::StrCat(FormatTimestamp(at), " (", FormatAge(now - at), " ago)");
}

// Clears every Duration and Timestamp in `m` that is outside protobuf's
// range, adding (its JSON pointer, its value as a string) to `cleared`.
void ClearOutOfRangeTimes(
    google::protobuf::Message& m, const std::string& pointer,
    std::vector<std::pair<std::string, std::string>>& cleared) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection* r = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  for (const FieldDescriptor* f : fields) {
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || f->is_map())
      continue;
    const std::string path = absl::StrCat(pointer, "/", f->json_name());
    if (f->is_repeated()) {
      for (int i = 0; i < r->FieldSize(m, f); ++i) {
        ClearOutOfRangeTimes(*r->MutableRepeatedMessage(&m, f, i),
                             absl::StrCat(path, "/", i), cleared);
      }
      continue;
    }
    google::protobuf::Message* sub = r->MutableMessage(&m, f);
    if (auto* d = dynamic_cast<google::protobuf::Duration*>(sub)) {
      const bool valid =
          d->seconds() >= -315'576'000'000 && d->seconds() <= 315'576'000'000 &&
          d->nanos() > -1'000'000'000 && d->nanos() < 1'000'000'000 &&
          !(d->seconds() > 0 && d->nanos() < 0) &&
          !(d->seconds() < 0 && d->nanos() > 0);
      if (!valid) {
        cleared.emplace_back(
            path, d->nanos() == 0
                      ? absl::StrCat(d->seconds(), "s")
                      : absl::StrCat(d->seconds(), "s ", d->nanos(), "ns"));
        r->ClearField(&m, f);
      }
    } else if (auto* t = dynamic_cast<google::protobuf::Timestamp*>(sub)) {
      const bool valid = t->seconds() >= -62'135'596'800 &&
                         t->seconds() <= 253'402'300'799 && t->nanos() >= 0 &&
                         t->nanos() < 1'000'000'000;
      if (!valid) {
        cleared.emplace_back(
            path, absl::FormatTime(absl::RFC3339_full,
                                   absl::FromUnixSeconds(t->seconds()) +
                                       absl::Nanoseconds(t->nanos()),
                                   absl::UTCTimeZone()));
        r->ClearField(&m, f);
      }
    } else {
      ClearOutOfRangeTimes(*sub, path, cleared);
    }
  }
}

// "a.json (12 bytes), big.bin (9000000 bytes, skipped: over the limit)".
std::string Artifacts(const crucible::v1::TaskResult& r) {
  std::vector<std::string> items;
  for (const crucible::v1::ArtifactInfo& a : r.artifacts()) {
    items.push_back(FormatArtifact(a));
  }
  return absl::StrJoin(items, ", ");
}

}  // namespace

std::string FormatArtifact(const crucible::v1::ArtifactInfo& a, bool sha256) {
  std::string item = absl::StrCat(a.path(), " (");
  switch (a.status()) {
    case crucible::v1::ARTIFACT_STATUS_COLLECTED:
      absl::StrAppend(&item, a.size_bytes(), " bytes");
      if (sha256) absl::StrAppend(&item, ", sha256 ", a.sha256());
      absl::StrAppend(&item, ")");
      break;
    case crucible::v1::ARTIFACT_STATUS_SKIPPED_OVER_LIMIT:
      absl::StrAppend(&item, a.size_bytes(),
                      " bytes, skipped: over the limit)");
      break;
    case crucible::v1::ARTIFACT_STATUS_NOT_FOUND:
      absl::StrAppend(&item, "not found)");
      break;
    case crucible::v1::ARTIFACT_STATUS_NOT_REGULAR:
      absl::StrAppend(&item, "skipped: not a regular file)");
      break;
    case crucible::v1::ARTIFACT_STATUS_INCOMPLETE:
      absl::StrAppend(&item, a.size_bytes(),
                      " bytes, lost: did not all reach the server)");
      break;
    default:
      absl::StrAppend(&item, "unknown)");
  }
  return item;
}

std::string FormatAge(absl::Duration age) {
  if (age < absl::ZeroDuration()) age = absl::ZeroDuration();
  if (age < absl::Minutes(1))
    return absl::StrCat(absl::ToInt64Seconds(age), "s");
  if (age < absl::Hours(1)) return absl::StrCat(absl::ToInt64Minutes(age), "m");
  if (age < absl::Hours(48)) return absl::StrCat(absl::ToInt64Hours(age), "h");
  return absl::StrCat(absl::ToInt64Hours(age) / 24, "d");
}

std::string FormatTask(const crucible::v1::Task& task, absl::Time now) {
  std::string out;
  auto line = [&out](absl::string_view key, absl::string_view value) {
    absl::StrAppend(&out, key,
                    std::string(std::max<int>(1, 12 - key.size()), ' '), value,
                    "\n");
  };
  const crucible::v1::TaskSpec& spec = task.spec();
  line("ID:", task.id());
  // What to grep the logs of every process for, to follow this task.
  if (!task.trace_id().empty()) line("TRACE ID:", task.trace_id());
  line("STATE:", StateName(task.state()));
  line("IMAGE:", spec.image());
  line("COMMAND:", CommandLine(spec));
  line("ATTEMPT:", absl::StrCat(task.attempt()));
  if (task.has_create_time())
    line("CREATED:", TimeLine(task.create_time(), now));
  if (task.has_result() && task.result().has_start_time()) {
    line("STARTED:", TimeLine(task.result().start_time(), now));
  }
  if (task.has_end_time()) line("ENDED:", TimeLine(task.end_time(), now));
  if (task.has_result() && task.result().has_start_time() &&
      task.result().has_finish_time()) {
    line("DURATION:", absl::FormatDuration(absl::Trunc(
                          common::FromProtoTime(task.result().finish_time()) -
                              common::FromProtoTime(task.result().start_time()),
                          absl::Milliseconds(1))));
  }
  if (std::string limits = Limits(spec); !limits.empty())
    line("LIMITS:", limits);
  if (spec.priority() != 0) line("PRIORITY:", absl::StrCat(spec.priority()));
  if (spec.files_size() > 0) {
    std::vector<std::string> paths;
    for (const crucible::v1::InputFile& f : spec.files())
      paths.push_back(f.path());
    line("FILES:", absl::StrJoin(paths, ", "));
  }
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
    if (r.artifacts_size() > 0) line("ARTIFACTS:", Artifacts(r));
  }
  if (!task.last_error().empty()) line("LAST ERROR:", task.last_error());
  if (!spec.labels().empty()) {
    std::vector<std::string> labels;
    for (const auto& [k, v] : spec.labels())
      labels.push_back(absl::StrCat(k, "=", v));
    std::sort(labels.begin(), labels.end());
    line("LABELS:", absl::StrJoin(labels, ","));
  }
  return out;
}

std::string FormatTable(const std::vector<crucible::v1::Task>& tasks,
                        absl::Time now, bool header, bool tenant_column) {
  std::vector<std::vector<std::string>> rows = {
      {"ID", "STATE", "EXIT", "IMAGE", "COMMAND", "AGE"}};
  for (const crucible::v1::Task& t : tasks) {
    std::string age =
        t.has_create_time()
            ? FormatAge(now - common::FromProtoTime(t.create_time()))
            : "-";
    rows.push_back({t.id(), StateName(t.state()), ExitColumn(t),
                    Ellipsize(t.spec().image(), 40),
                    Ellipsize(CommandLine(t.spec()), 40), age});
  }
  if (tenant_column) {
    rows[0].insert(rows[0].begin() + 1, "TENANT");
    for (size_t r = 1; r < rows.size(); ++r) {
      rows[r].insert(rows[r].begin() + 1, tasks[r - 1].tenant());
    }
  }
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i)
      widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (size_t r = header ? 0 : 1; r < rows.size(); ++r) {
    const std::vector<std::string>& row = rows[r];
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size())
        line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  options.always_print_primitive_fields = true;
  if (google::protobuf::util::MessageToJsonString(message, &json, options).ok())
    return json;
  // The printer refuses a Duration or Timestamp outside protobuf's range
  // (a task stored before the server refused them): print the rest, and
  // those as strings of what they hold.
  std::unique_ptr<google::protobuf::Message> copy(message.New());
  copy->CopyFrom(message);
  std::vector<std::pair<std::string, std::string>> out_of_range;
  ClearOutOfRangeTimes(*copy, "", out_of_range);
  json.clear();
  if (!google::protobuf::util::MessageToJsonString(*copy, &json, options).ok())
    return "{}";
  nlohmann::ordered_json j =
      nlohmann::ordered_json::parse(json, nullptr, false);
  if (j.is_discarded()) return "{}";
  for (const auto& [pointer, value] : out_of_range) {
    j[nlohmann::ordered_json::json_pointer(pointer)] = value;
  }
  return j.dump();
}

std::string TaskToJson(const crucible::v1::Task& task) { return ToJson(task); }

std::string FormatTimestamp(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

std::string FormatEvent(const crucible::v1::TaskEvent& event) {
  std::string line = absl::StrCat(
      event.has_event_time()
          ? FormatTimestamp(common::FromProtoTime(event.event_time()))
          : "-",
      "  ", StateName(event.state()));
  if (event.attempt() > 0)
    absl::StrAppend(&line, "  attempt ", event.attempt());
  if (event.has_result() &&
      event.result().reason() != crucible::v1::TERMINATION_REASON_UNSPECIFIED) {
    const crucible::v1::TaskResult& r = event.result();
    absl::StrAppend(&line, "  ", ReasonName(r.reason()));
    if (r.reason() == crucible::v1::TERMINATION_REASON_EXITED ||
        r.exit_code() != 0) {
      absl::StrAppend(&line, " (exit code ", r.exit_code(), ")");
    }
    if (!r.error_message().empty())
      absl::StrAppend(&line, ": ", Ellipsize(r.error_message(), 200));
  }
  if (!event.message().empty())
    absl::StrAppend(&line, "  -- ", Ellipsize(event.message(), 200));
  return line;
}

std::string ProgressLine(const std::string& task_id,
                         crucible::v1::TaskState state, int attempt,
                         absl::Duration elapsed) {
  std::string line = absl::StrCat("task ", task_id, " ", StateName(state));
  if (attempt > 1) absl::StrAppend(&line, ", attempt ", attempt);
  absl::StrAppend(&line, ", ", FormatAge(elapsed));
  return line;
}

}  // namespace cli
