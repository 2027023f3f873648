#include "executor/guard/describe.h"

#include <functional>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "nlohmann/json.hpp"

namespace guard {
namespace {

using nlohmann::json;

std::string Code(const json& v) { return absl::StrCat("`", v.dump(), "`"); }

// What the task (not the policy) decides, by key path; every other value
// is exactly the policy's.
std::map<std::string, std::string> TaskFields(
    const policy::ContainerPolicyOptions& o) {
  std::vector<std::string> rules;
  for (const std::string& i : o.allowed_images)
    rules.push_back(absl::StrCat("`", i, "`"));
  for (const std::string& p : o.allowed_image_prefixes) {
    rules.push_back(absl::StrCat("`", p, "…`"));
  }
  return {
      {"Image",
       absl::StrCat("an image reference the policy's image rules allow (",
                    absl::StrJoin(rules, ", "), ")")},
      {"Cmd", "absent, or the task's command: an array of strings without NUL"},
      {"Env",
       "the task's environment: `KEY=value` strings sorted by key, keys "
       "non-empty without `=` or NUL"},
      {"WorkingDir",
       "absent, or the task's working directory: an absolute path"},
      {"OpenStdin", "`false`, or `true` when the task has stdin"},
      {"AttachStdin", "`false`, or `true` when the task has stdin"},
      {"StdinOnce", "absent, or `true` when the task has stdin"},
      {absl::StrCat("Labels.", policy::kTaskLabel), "the task's id"},
      {absl::StrCat("Labels.", policy::kAttemptLabel),
       "the attempt, a decimal number"},
      {absl::StrCat("Labels.", policy::kRunLabel),
       "the run's id: 1-64 characters of `[A-Za-z0-9_.-]`, the container's "
       "name "
       "without its `crucible-` prefix"},
      {absl::StrCat("Labels.", policy::kExecutorLabel),
       "the executor's id (`--executor_id` of the guard, if set)"},
      {absl::StrCat("Labels.", policy::kTraceLabel),
       "absent, or the task's trace id: 32 lowercase hex digits, not all "
       "zeros"},
      {"HostConfig.Memory",
       absl::StrCat("6291456 to ", o.max_memory_bytes, " (bytes)")},
      {"HostConfig.MemorySwap", "equal to `Memory` (no swap)"},
      {"HostConfig.NanoCpus", absl::StrCat("1000000 × 1 to ", o.max_cpu_millis,
                                           " (whole thousandths of a core)")},
      {"HostConfig.PidsLimit", absl::StrCat("1 to ", o.max_pids_limit)},
  };
}

void Rows(const json& v, const std::string& path,
          const std::map<std::string, std::string>& task,
          const policy::ContainerPolicyOptions& o,
          std::vector<std::string>& out) {
  if (auto it = task.find(path); it != task.end()) {
    out.push_back(absl::StrCat("| `", path, "` | ", it->second, " |"));
    return;
  }
  if (path == "HostConfig.Tmpfs./tmp" && v.is_string()) {
    const std::string size = absl::StrCat("size=", o.max_tmpfs_bytes);
    out.push_back(absl::StrCat(
        "| `", path, "` | exactly `",
        absl::StrReplaceAll(v.get<std::string>(), {{size, "size=N"}}),
        "`, N from 1 to ", o.max_tmpfs_bytes, " (bytes) |"));
    return;
  }
  if (v.is_object() && !v.empty()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      Rows(it.value(),
           path.empty() ? it.key() : absl::StrCat(path, ".", it.key()), task, o,
           out);
    }
    return;
  }
  out.push_back(absl::StrCat("| `", path, "` | exactly ", Code(v), " |"));
}

}  // namespace

std::string DescribeAllowedCreate(
    const policy::ContainerPolicyOptions& options) {
  policy::ContainerPolicyOptions o = options;
  o.executor_id = "executor";
  auto policy = policy::ContainerPolicy::Create(o);
  if (!policy.ok())
    return absl::StrCat("invalid policy: ", policy.status().message());
  // A task that uses every option, so every key that can appear does.
  crucible::v1::RunRequest req;
  req.set_run_id("run");
  req.set_task_id("task");
  req.set_attempt(1);
  req.set_trace_id("4bf92f3577b34da6a3ce929d0e0e4736");
  crucible::v1::TaskSpec& spec = *req.mutable_spec();
  spec.set_image(o.allowed_images.empty()
                     ? absl::StrCat(o.allowed_image_prefixes.front(), "image")
                     : o.allowed_images.front());
  spec.add_command("true");
  (*spec.mutable_env())["K"] = "v";
  spec.set_working_dir("/tmp");
  spec.set_stdin("x");
  spec.mutable_resources()->set_tmpfs_bytes(o.max_tmpfs_bytes);
  absl::StatusOr<policy::ContainerPlan> plan = policy->Plan(req);
  if (!plan.ok()) return absl::StrCat("cannot plan: ", plan.status().message());

  std::vector<std::string> out = {
      "`POST /[vX.Y/]containers/create?name=crucible-<run id>` with exactly "
      "the "
      "query `name=crucible-` + the body's `crucible.run` label, and a JSON "
      "object body of at most " +
          std::to_string(policy::kMaxCreateBodyBytes) +
          " bytes whose keys are plain ASCII (`[A-Za-z0-9._/-]`, no escapes), "
          "none repeated in one object, with exactly these keys (nothing else, "
          "at any level) and values (with the same JSON types):",
      "", "| key | allowed value |", "|---|---|"};
  Rows(plan->create_body, "", TaskFields(o), o, out);
  out.push_back("");
  out.push_back(
      "Any other key, a missing key, another value or another type is "
      "refused (403), and so is everything the executor's policy itself "
      "refuses for the task (an image outside the rules, a limit over its "
      "maximum, a NUL in the command). What reaches the engine is the body as "
      "the guard re-encodes it, never the caller's bytes.");
  return absl::StrJoin(out, "\n") + "\n";
}

}  // namespace guard
