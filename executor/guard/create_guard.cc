#include "executor/guard/create_guard.h"

#include <set>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "executor/policy/scratch.h"
#include "nlohmann/json.hpp"

namespace guard {
namespace {

using nlohmann::json;

// A planned body nests four levels deep (HostConfig.Ulimits[i].Name).
constexpr int kMaxDepth = 6;

absl::Status Denied(absl::string_view why) {
  return absl::PermissionDeniedError(
      absl::StrCat("crucible engine guard: container create refused: ", why));
}

bool KeyChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
         c == '_' || c == '-' || c == '/';
}

// Looks at the raw bytes before any parser does: every object key is
// plain ASCII of [A-Za-z0-9._/-] with no escape (so no spelling of a key
// past the comparison, and nothing the engine's case- and Unicode-folding
// decoder would read as another key), and nesting stays shallow. Malformed
// JSON is left to the parser, which refuses it.
absl::Status CheckRawKeys(absl::string_view body) {
  int depth = 0;
  size_t i = 0;
  while (i < body.size()) {
    const char c = body[i];
    if (c == '{' || c == '[') {
      if (++depth > kMaxDepth) return Denied("nested too deeply");
      ++i;
      continue;
    }
    if (c == '}' || c == ']') {
      --depth;
      ++i;
      continue;
    }
    if (c != '"') {
      ++i;
      continue;
    }
    const size_t start = ++i;
    bool escaped = false;
    while (i < body.size() && body[i] != '"') {
      if (body[i] == '\\') {
        escaped = true;
        ++i;  // skips the escaped character, so \" does not end the string
      }
      ++i;
    }
    if (i >= body.size()) return absl::OkStatus();  // unterminated: parser
    const absl::string_view token = body.substr(start, i - start);
    ++i;
    size_t j = i;
    while (j < body.size() &&
           absl::ascii_isspace(static_cast<unsigned char>(body[j])))
      ++j;
    if (j >= body.size() || body[j] != ':') continue;  // a value, not a key
    if (escaped || token.empty() ||
        !std::all_of(token.begin(), token.end(), KeyChar)) {
      return Denied(absl::StrCat("key ", QuoteCallerBytes(token),
                                 " is not plain ASCII [A-Za-z0-9._/-]"));
    }
  }
  return absl::OkStatus();
}

// Parses `body`, refusing a key that repeats within one object (JSON
// decoders disagree on which copy wins).
absl::StatusOr<json> ParseStrict(absl::string_view body) {
  std::vector<std::set<std::string>> keys;
  std::string duplicate;
  json::parser_callback_t cb = [&](int, json::parse_event_t event,
                                   json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case json::parse_event_t::key:
        if (!keys.empty() && parsed.is_string() &&
            !keys.back().insert(parsed.get<std::string>()).second &&
            duplicate.empty()) {
          duplicate = parsed.get<std::string>();
        }
        break;
      default:
        break;
    }
    return true;
  };
  json doc = json::parse(body.begin(), body.end(), cb,
                         /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return Denied("the body is not valid JSON (UTF-8)");
  }
  if (!duplicate.empty()) {
    return Denied(absl::StrCat("key ", QuoteCallerBytes(duplicate),
                               " appears twice in one object"));
  }
  if (!doc.is_object()) return Denied("the body is not a JSON object");
  return doc;
}

const json* Field(const json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string StringAt(const json& object, const char* key) {
  const json* v = Field(object, key);
  return v != nullptr && v->is_string() ? v->get<std::string>() : "";
}

int64_t IntAt(const json& object, const char* key) {
  const json* v = Field(object, key);
  return v != nullptr && v->is_number_integer() ? v->get<int64_t>() : 0;
}

// The "size=N" option of a tmpfs option string, 0 if there is none.
int64_t TmpfsSize(absl::string_view options) {
  for (absl::string_view option : absl::StrSplit(options, ',')) {
    int64_t size = 0;
    if (absl::ConsumePrefix(&option, "size=") &&
        absl::SimpleAtoi(option, &size)) {
      return size;
    }
  }
  return 0;
}

// The RunRequest whose plan `body` claims to be. Fields of the wrong type
// are left unset: the plan then differs from the body and is refused there.
absl::StatusOr<crucible::v1::RunRequest> RequestOf(const json& body) {
  crucible::v1::RunRequest req;
  const json* labels = Field(body, "Labels");
  if (labels == nullptr || !labels->is_object()) {
    return Denied("Labels (the run's crucible.* labels) are required");
  }
  req.set_run_id(StringAt(*labels, policy::kRunLabel));
  req.set_task_id(StringAt(*labels, policy::kTaskLabel));
  req.set_trace_id(StringAt(*labels, policy::kTraceLabel));
  const std::string attempt = StringAt(*labels, policy::kAttemptLabel);
  int32_t n = 0;
  if (absl::SimpleAtoi(attempt, &n)) req.set_attempt(n);

  crucible::v1::TaskSpec& spec = *req.mutable_spec();
  spec.set_image(StringAt(body, "Image"));
  if (const json* cmd = Field(body, "Cmd"); cmd != nullptr && cmd->is_array()) {
    for (const json& arg : *cmd) {
      if (arg.is_string()) spec.add_command(arg.get<std::string>());
    }
  }
  if (const json* env = Field(body, "Env"); env != nullptr && env->is_array()) {
    for (const json& kv : *env) {
      if (!kv.is_string()) continue;
      const std::string s = kv.get<std::string>();
      const size_t eq = s.find('=');
      if (eq == std::string::npos) return Denied("an Env entry has no '='");
      (*spec.mutable_env())[s.substr(0, eq)] = s.substr(eq + 1);
    }
  }
  spec.set_working_dir(StringAt(body, "WorkingDir"));
  if (const json* in = Field(body, "OpenStdin"); in != nullptr && *in == true) {
    spec.set_stdin("-");  // any non-empty stdin plans the same body
  }
  const json* host = Field(body, "HostConfig");
  if (host == nullptr || !host->is_object()) {
    return Denied("HostConfig is required");
  }
  crucible::v1::Resources& r = *spec.mutable_resources();
  r.set_memory_bytes(IntAt(*host, "Memory"));
  r.set_pids_limit(IntAt(*host, "PidsLimit"));
  r.set_cpu_millis(IntAt(*host, "NanoCpus") / 1'000'000);
  if (const json* tmpfs = Field(*host, "Tmpfs"); tmpfs != nullptr) {
    r.set_tmpfs_bytes(TmpfsSize(StringAt(*tmpfs, "/tmp")));
  }
  // Binds are planned only for a spec with files or artifacts: then
  // exactly one, the run's own scratch volume at WorkingDir (the plan of
  // any such spec has the same body).
  if (Field(*host, "Binds") != nullptr) spec.add_artifacts("any");
  return req;
}

std::string Short(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 80) s = absl::StrCat(s.substr(0, 80), "...");
  return s;
}

// The first place where `got` is not `want`, as a sentence.
std::string FirstDifference(const json& want, const json& got,
                            const std::string& path) {
  const std::string at = path.empty() ? "the body" : path;
  if (want.is_object() && got.is_object()) {
    for (auto it = got.begin(); it != got.end(); ++it) {
      if (!want.contains(it.key())) {
        return absl::StrCat("key ", path.empty() ? "" : path + ".", it.key(),
                            " is not allowed");
      }
    }
    for (auto it = want.begin(); it != want.end(); ++it) {
      const std::string sub = path.empty() ? it.key() : path + "." + it.key();
      if (!got.contains(it.key()))
        return absl::StrCat("key ", sub, " is required");
      std::string d = FirstDifference(it.value(), got[it.key()], sub);
      if (!d.empty()) return d;
    }
    return "";
  }
  if (want.is_array() && got.is_array() && want.size() == got.size()) {
    for (size_t i = 0; i < want.size(); ++i) {
      std::string d =
          FirstDifference(want[i], got[i], absl::StrCat(path, "[", i, "]"));
      if (!d.empty()) return d;
    }
    return "";
  }
  if (want.dump() == got.dump()) return "";
  return absl::StrCat(at, " must be ", Short(want), " (got ", Short(got), ")");
}

}  // namespace

std::string QuoteCallerBytes(absl::string_view s) {
  constexpr size_t kMax = 60;
  std::string out =
      absl::StrCat("\"", absl::CHexEscape(s.substr(0, kMax)), "\"");
  if (s.size() > kMax) absl::StrAppend(&out, "...");
  return out;
}

CreateGuard::CreateGuard(policy::ContainerPolicyOptions options,
                         std::string executor_id)
    : options_(std::move(options)), executor_id_(std::move(executor_id)) {}

absl::StatusOr<AdmittedCreate> CreateGuard::Check(
    absl::string_view query, absl::string_view body) const {
  if (body.size() > policy::kMaxCreateBodyBytes) {
    return Denied(absl::StrCat("the body is ", body.size(),
                               " bytes; the limit is ",
                               policy::kMaxCreateBodyBytes));
  }
  RETURN_IF_ERROR(CheckRawKeys(body));
  ASSIGN_OR_RETURN(json got, ParseStrict(body));
  ASSIGN_OR_RETURN(crucible::v1::RunRequest request, RequestOf(got));

  policy::ContainerPolicyOptions options = options_;
  const json* labels = Field(got, "Labels");
  options.executor_id = StringAt(*labels, policy::kExecutorLabel);
  if (!executor_id_.empty() && options.executor_id != executor_id_) {
    return Denied(absl::StrCat("label ", policy::kExecutorLabel, " must be \"",
                               executor_id_, "\" (got ",
                               QuoteCallerBytes(options.executor_id), ")"));
  }
  absl::StatusOr<policy::ContainerPolicy> policy =
      policy::ContainerPolicy::Create(options);
  if (!policy.ok()) return Denied(policy.status().message());
  absl::StatusOr<policy::ContainerPlan> plan = policy->Plan(request);
  if (!plan.ok()) {
    return Denied(
        absl::StrCat("the policy refuses it: ", plan.status().message()));
  }
  const std::string want = plan->create_body.dump();
  if (got.dump() != want) {
    return Denied(FirstDifference(plan->create_body, got, ""));
  }
  const std::string expected_query = absl::StrCat("name=", plan->name);
  // A run with a scratch volume has a second container, its holder
  // (policy::kScratchHolderSuffix), of the same planned body.
  if (!plan->scratch_volume.empty() &&
      query == absl::StrCat(expected_query, policy::kScratchHolderSuffix)) {
    return AdmittedCreate{
        .name = absl::StrCat(plan->name, policy::kScratchHolderSuffix),
        .body = want};
  }
  if (query != expected_query) {
    return Denied(absl::StrCat("the query must be exactly ", expected_query,
                               " (got ", QuoteCallerBytes(query), ")"));
  }
  return AdmittedCreate{.name = plan->name, .body = want};
}

absl::StatusOr<AdmittedCreate> CreateGuard::CheckVolume(
    absl::string_view query, absl::string_view body) const {
  auto denied = [](absl::string_view why) {
    return absl::PermissionDeniedError(
        absl::StrCat("crucible engine guard: volume create refused: ", why));
  };
  if (body.size() > 4096) return denied("the body is too large");
  if (!query.empty()) return denied("no query is allowed");
  RETURN_IF_ERROR(CheckRawKeys(body));
  ASSIGN_OR_RETURN(json got, ParseStrict(body));
  const std::string name = StringAt(got, "Name");
  absl::string_view run_id = name;
  if (!absl::ConsumePrefix(&run_id, policy::kContainerNamePrefix) ||
      !policy::ValidRunId(run_id)) {
    return denied(absl::StrCat("Name must be ", policy::kContainerNamePrefix,
                               "<run id> (got ", QuoteCallerBytes(name), ")"));
  }
  const json* opts = Field(got, "DriverOpts");
  const std::string o = opts == nullptr ? "" : StringAt(*opts, "o");
  absl::StatusOr<int64_t> size = policy::ParseScratchTmpfsOptions(o);
  if (!size.ok()) return denied(size.status().message());
  if (*size > options_.max_scratch_bytes) {
    return denied(absl::StrCat(
        "a scratch volume of ", *size, " bytes exceeds the policy's maximum ",
        options_.max_scratch_bytes, " (policy rule scratch_bytes.max)"));
  }
  const json want = policy::ScratchVolumeBody(name, *size);
  if (got.dump() != want.dump()) {
    return denied(FirstDifference(want, got, ""));
  }
  return AdmittedCreate{.name = name, .body = want.dump()};
}

}  // namespace guard
