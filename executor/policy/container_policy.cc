#include "executor/policy/container_policy.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/image_reference.h"
#include "common/proto_time.h"
#include "common/trace.h"
#include "executor/policy/scratch.h"

namespace policy {
namespace {

using nlohmann::json;

constexpr int64_t kMinMemoryBytes = 6 * kMiB;  // the engines' own minimum
constexpr char kReadOnlyTmpfs[] = "ro,noexec,nosuid,nodev,size=4096";

absl::Status CheckUser(const std::string& user) {
  std::vector<std::string> parts = absl::StrSplit(user, ':');
  if (parts.size() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("user \"", user, "\" must be numeric \"uid:gid\""));
  }
  for (const std::string& p : parts) {
    uint32_t id = 0;
    if (!absl::SimpleAtoi(p, &id) || p.empty() ||
        !std::all_of(p.begin(), p.end(), absl::ascii_isdigit)) {
      return absl::InvalidArgumentError(
          absl::StrCat("user \"", user, "\" must be numeric \"uid:gid\""));
    }
    if (id == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "user \"", user, "\": uid and gid 0 (root) are refused"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckPair(absl::string_view name, int64_t def, int64_t max) {
  if (def <= 0 || max <= 0 || def > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy ", name, ": default ", def, " and maximum ", max,
                     " must be positive with default <= maximum"));
  }
  return absl::OkStatus();
}

// Applies default and maximum to one requested limit.
absl::StatusOr<int64_t> Limit(absl::string_view field, int64_t requested,
                              int64_t def, int64_t max) {
  if (requested < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must not be negative (got ", requested, ")"));
  }
  if (requested == 0) return def;
  if (requested > max) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " ", requested, " exceeds the executor's maximum ", max,
        " (policy rule ", field.substr(field.rfind('.') + 1), ".max)"));
  }
  return requested;
}

// A name the engine accepts for a network or runtime: no path, no mode.
bool PlainName(absl::string_view s) {
  return !s.empty() && s.size() <= 128 &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                  c == '.' || c == '_' || c == '-';
         });
}

// A run or executor id that may go into a container name and a label
// filter as is: 1-`max` characters of [A-Za-z0-9_.-], the first
// alphanumeric (the engine's own rule for names), nothing a URL escapes.
bool ValidId(absl::string_view s, size_t max) {
  return !s.empty() && s.size() <= max &&
         absl::ascii_isalnum(static_cast<unsigned char>(s[0])) &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                  c == '.' || c == '_' || c == '-';
         });
}

absl::Status CheckNetwork(const std::string& network) {
  if (network == "none") return absl::OkStatus();
  if (network == "host" || network == "bridge" || network == "default" ||
      !PlainName(network)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "policy network \"", network,
        "\" is refused: use \"none\" or the "
        "name of a user-defined network (never host, bridge, default, or "
        "another container's or a path's namespace)"));
  }
  return absl::OkStatus();
}

}  // namespace

bool ValidRunId(absl::string_view run_id) { return ValidId(run_id, 64); }

std::string ContainerName(absl::string_view run_id) {
  return absl::StrCat(kContainerNamePrefix, run_id);
}

void ParseImageRules(const std::vector<std::string>& rules,
                     ContainerPolicyOptions& o) {
  o.allowed_images.clear();
  o.allowed_image_prefixes.clear();
  for (absl::string_view rule : rules) {
    rule = absl::StripAsciiWhitespace(rule);
    if (rule.empty()) continue;
    if (absl::ConsumeSuffix(&rule, "*")) {
      o.allowed_image_prefixes.emplace_back(rule);
    } else if (absl::EndsWith(rule, "/") || absl::EndsWith(rule, ":")) {
      o.allowed_image_prefixes.emplace_back(rule);
    } else {
      o.allowed_images.emplace_back(rule);
    }
  }
}

bool ContainerPolicy::ImageAllowed(absl::string_view image) const {
  const ContainerPolicyOptions& o = options_;
  return std::find(o.allowed_images.begin(), o.allowed_images.end(), image) !=
             o.allowed_images.end() ||
         std::any_of(
             o.allowed_image_prefixes.begin(), o.allowed_image_prefixes.end(),
             [&](const std::string& p) { return absl::StartsWith(image, p); });
}

crucible::v1::ExecutorAccepts ContainerPolicy::Accepts() const {
  const ContainerPolicyOptions& o = options_;
  crucible::v1::ExecutorAccepts a;
  a.set_executor_id(o.executor_id);
  for (const std::string& i : o.allowed_images) a.add_images(i);
  for (const std::string& p : o.allowed_image_prefixes) a.add_image_prefixes(p);
  a.set_max_memory_bytes(o.max_memory_bytes);
  a.set_min_memory_bytes(kMinMemoryBytes);
  a.set_max_cpu_millis(o.max_cpu_millis);
  a.set_max_pids_limit(o.max_pids_limit);
  a.set_max_tmpfs_bytes(o.max_tmpfs_bytes);
  a.set_max_output_bytes(o.max_max_output_bytes);
  *a.mutable_max_timeout() = common::ToProtoDuration(o.max_timeout);
  a.set_network(o.network);
  a.set_max_input_files(o.max_input_files);
  a.set_max_input_bytes(o.max_input_bytes);
  a.set_max_scratch_bytes(o.max_scratch_bytes);
  a.set_max_artifact_bytes(o.max_max_artifact_bytes);
  return a;
}

absl::StatusOr<ContainerPolicy> ContainerPolicy::Create(
    ContainerPolicyOptions o) {
  if (absl::Status s = CheckUser(o.user); !s.ok()) return s;
  if (o.allowed_image_prefixes.empty() && o.allowed_images.empty()) {
    return absl::InvalidArgumentError("policy allows no image");
  }
  for (const std::string& i : o.allowed_images) {
    if (i.empty())
      return absl::InvalidArgumentError("an allowed image is empty");
  }
  if (absl::Status s = CheckNetwork(o.network); !s.ok()) return s;
  if (o.userns != kUsernsAuto && !o.userns.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "policy userns \"", absl::CHexEscape(o.userns.substr(0, 64)),
        "\" is refused: use \"auto\" (a user namespace per container) or "
        "\"\" (none)"));
  }
  if (!ValidId(o.executor_id, 128)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "executor_id \"", absl::CHexEscape(o.executor_id.substr(0, 128)),
        "\" must be 1-128 characters of [A-Za-z0-9_.-] starting with a "
        "letter or digit"));
  }
  if (!o.runtime.empty() && !PlainName(o.runtime)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "policy runtime \"", o.runtime, "\" is not a plain runtime name"));
  }
  for (const std::string& p : o.allowed_image_prefixes) {
    if (p.empty()) {
      return absl::InvalidArgumentError(
          "an empty allowed image prefix would allow every image");
    }
  }
  for (auto [name, def, max] :
       {std::tuple{"memory_bytes", o.default_memory_bytes, o.max_memory_bytes},
        std::tuple{"cpu_millis", o.default_cpu_millis, o.max_cpu_millis},
        std::tuple{"pids_limit", o.default_pids_limit, o.max_pids_limit},
        std::tuple{"tmpfs_bytes", o.default_tmpfs_bytes, o.max_tmpfs_bytes},
        std::tuple{"max_output_bytes", o.default_max_output_bytes,
                   o.max_max_output_bytes},
        std::tuple{"timeout_ms", absl::ToInt64Milliseconds(o.default_timeout),
                   absl::ToInt64Milliseconds(o.max_timeout)},
        std::tuple{"scratch_bytes", o.default_scratch_bytes,
                   o.max_scratch_bytes},
        std::tuple{"max_artifact_bytes", o.default_max_artifact_bytes,
                   o.max_max_artifact_bytes},
        std::tuple{"max_input_files", o.max_input_files, o.max_input_files},
        std::tuple{"max_input_bytes", o.max_input_bytes, o.max_input_bytes},
        std::tuple{"nofile", o.nofile_limit, o.nofile_limit},
        std::tuple{"nproc", o.nproc_limit, o.nproc_limit}}) {
    if (absl::Status s = CheckPair(name, def, max); !s.ok()) return s;
  }
  return ContainerPolicy(std::move(o));
}

absl::StatusOr<int64_t> ContainerPolicy::PlanScratch(
    const crucible::v1::TaskSpec& spec) const {
  const ContainerPolicyOptions& o = options_;
  if (absl::Status s = CheckScratchDir(ScratchDir(spec)); !s.ok()) return s;
  absl::StatusOr<int64_t> scratch =
      Limit("spec.resources.scratch_bytes", spec.resources().scratch_bytes(),
            o.default_scratch_bytes, o.max_scratch_bytes);
  if (!scratch.ok()) return scratch.status();
  if (spec.files_size() > o.max_input_files) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.files has ", spec.files_size(),
                     " files; the executor's maximum is ", o.max_input_files,
                     " (policy rule max_input_files)"));
  }
  int64_t total = 0;
  absl::flat_hash_set<std::string> paths;
  for (int i = 0; i < spec.files_size(); ++i) {
    const crucible::v1::InputFile& f = spec.files(i);
    const std::string field = absl::StrCat("spec.files[", i, "].path");
    if (absl::Status s = CheckInputPath(field, f.path()); !s.ok()) return s;
    if (f.mode() > 0777) {
      return absl::InvalidArgumentError(absl::StrCat(
          "spec.files[", i, "].mode ", absl::StrFormat("%#o", f.mode()),
          " is above 0777 (no setuid, setgid or sticky bit)"));
    }
    if (!paths.insert(f.path()).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " \"", absl::CHexEscape(f.path()), "\" is named twice"));
    }
    total += static_cast<int64_t>(f.content().size());
  }
  // A file may not also be another's parent directory.
  for (const std::string& p : paths) {
    for (size_t slash = p.find('/'); slash != std::string::npos;
         slash = p.find('/', slash + 1)) {
      if (paths.contains(p.substr(0, slash))) {
        return absl::InvalidArgumentError(
            absl::StrCat("spec.files: \"", absl::CHexEscape(p.substr(0, slash)),
                         "\" is both a file and the directory of \"",
                         absl::CHexEscape(p), "\""));
      }
    }
  }
  if (total > o.max_input_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "spec.files hold ", total, " bytes; the executor's maximum is ",
        o.max_input_bytes, " (policy rule max_input_bytes)"));
  }
  if (total > *scratch) {
    return absl::InvalidArgumentError(absl::StrCat(
        "spec.files hold ", total, " bytes, more than the scratch area's ",
        *scratch, " (spec.resources.scratch_bytes)"));
  }
  if (spec.artifacts_size() > kMaxArtifactPatterns) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.artifacts has ", spec.artifacts_size(),
                     " patterns; at most ", kMaxArtifactPatterns));
  }
  for (int i = 0; i < spec.artifacts_size(); ++i) {
    if (absl::Status s = CheckArtifactPattern(
            absl::StrCat("spec.artifacts[", i, "]"), spec.artifacts(i));
        !s.ok()) {
      return s;
    }
  }
  return *scratch;
}

absl::StatusOr<ContainerPlan> ContainerPolicy::Plan(
    const crucible::v1::RunRequest& req) const {
  const crucible::v1::TaskSpec& spec = req.spec();
  if (req.run_id().empty())
    return absl::InvalidArgumentError("run_id is required");
  // The run id names the container (ContainerName), which the docker-proxy
  // matches against the same character set.
  if (!ValidId(req.run_id(), 64)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "run_id \"", absl::CHexEscape(req.run_id().substr(0, 64)),
        "\" must be 1-64 characters of [A-Za-z0-9_.-] starting with a "
        "letter or digit"));
  }
  // The trace id goes into a label as is: only the server's format.
  if (!req.trace_id().empty() && !common::IsTraceId(req.trace_id())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "trace_id \"", absl::CHexEscape(req.trace_id().substr(0, 64)),
        "\" must be 32 lowercase hex digits, not all zeros"));
  }
  const std::string& image = spec.image();
  if (image.empty())
    return absl::InvalidArgumentError("spec.image is required");
  if (absl::Status s = common::ValidateImageReference(image); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.image \"", absl::CHexEscape(image.substr(0, 64)),
                     image.size() > 64 ? "...\": " : "\": ", s.message()));
  }
  if (!ImageAllowed(image)) {
    std::vector<std::string> rules;
    for (const std::string& i : options_.allowed_images) {
      rules.push_back(absl::StrCat("\"", i, "\""));
    }
    for (const std::string& p : options_.allowed_image_prefixes) {
      rules.push_back(absl::StrCat("images starting with ", p));
    }
    return absl::PermissionDeniedError(
        absl::StrCat("image \"", image,
                     "\" is not allowed by the executor's image "
                     "allowlist (rule: allowed_images): it allows only ",
                     absl::StrJoin(rules, " or ")));
  }
  const crucible::v1::Resources& r = spec.resources();
  const ContainerPolicyOptions& o = options_;
  ContainerPlan plan;
  absl::StatusOr<int64_t> memory =
      Limit("spec.resources.memory_bytes", r.memory_bytes(),
            o.default_memory_bytes, o.max_memory_bytes);
  if (!memory.ok()) return memory.status();
  if (*memory < kMinMemoryBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.resources.memory_bytes ", *memory,
                     " is below the minimum ", kMinMemoryBytes));
  }
  absl::StatusOr<int64_t> cpu =
      Limit("spec.resources.cpu_millis", r.cpu_millis(), o.default_cpu_millis,
            o.max_cpu_millis);
  if (!cpu.ok()) return cpu.status();
  absl::StatusOr<int64_t> pids =
      Limit("spec.resources.pids_limit", r.pids_limit(), o.default_pids_limit,
            o.max_pids_limit);
  if (!pids.ok()) return pids.status();
  absl::StatusOr<int64_t> tmpfs =
      Limit("spec.resources.tmpfs_bytes", r.tmpfs_bytes(),
            o.default_tmpfs_bytes, o.max_tmpfs_bytes);
  if (!tmpfs.ok()) return tmpfs.status();
  absl::StatusOr<int64_t> output =
      Limit("spec.max_output_bytes", spec.max_output_bytes(),
            o.default_max_output_bytes, o.max_max_output_bytes);
  if (!output.ok()) return output.status();
  plan.max_output_bytes = *output;
  absl::StatusOr<int64_t> artifact =
      Limit("spec.max_artifact_bytes", spec.max_artifact_bytes(),
            o.default_max_artifact_bytes, o.max_max_artifact_bytes);
  if (!artifact.ok()) return artifact.status();
  plan.max_artifact_bytes = *artifact;
  plan.resources.set_memory_bytes(*memory);
  plan.resources.set_cpu_millis(*cpu);
  plan.resources.set_pids_limit(*pids);
  plan.resources.set_tmpfs_bytes(*tmpfs);
  plan.timeout = o.default_timeout;
  if (spec.has_timeout()) {
    absl::Duration t = common::FromProtoDuration(spec.timeout());
    if (t < absl::ZeroDuration()) {
      return absl::InvalidArgumentError("spec.timeout must not be negative");
    }
    if (t > o.max_timeout) {
      return absl::InvalidArgumentError(absl::StrCat(
          "spec.timeout ", absl::FormatDuration(t),
          " exceeds the executor's maximum ",
          absl::FormatDuration(o.max_timeout), " (policy rule timeout.max)"));
    }
    if (t > absl::ZeroDuration()) plan.timeout = t;
  }

  // Env sorted by key so the body is deterministic.
  std::map<std::string, std::string> env(spec.env().begin(), spec.env().end());
  json env_list = json::array();
  for (const auto& [k, v] : env) {
    if (k.empty() || absl::StrContains(k, '=') || absl::StrContains(k, '\0') ||
        absl::StrContains(v, '\0')) {
      return absl::InvalidArgumentError(
          absl::StrCat("spec.env key \"", absl::CHexEscape(k),
                       "\" is invalid (empty, contains '=' or NUL)"));
    }
    env_list.push_back(absl::StrCat(k, "=", v));
  }
  if (!spec.working_dir().empty() &&
      (spec.working_dir()[0] != '/' || spec.working_dir().size() > 4096 ||
       absl::StrContains(spec.working_dir(), '\0'))) {
    return absl::InvalidArgumentError(
        "spec.working_dir must be an absolute path (starting with '/', "
        "at most 4096 bytes, no NUL)");
  }
  for (const std::string& arg : spec.command()) {
    if (absl::StrContains(arg, '\0')) {
      return absl::InvalidArgumentError(
          "spec.command must not contain NUL bytes");
    }
  }

  json host = {
      {"Privileged", false},
      {"CapDrop", {"ALL"}},
      {"ReadonlyRootfs", true},
      {"SecurityOpt", {"no-new-privileges"}},
      {"NetworkMode", o.network},
      {"Memory", *memory},
      {"MemorySwap", *memory},
      {"PidsLimit", *pids},
      {"NanoCpus", *cpu * 1'000'000},
      // /tmp is the one writable place: owned by the task's user (U: runc
      // gives a tmpfs the mode of the image's own /tmp, so mode=1777 alone
      // leaves it root's 0755), empty (notmpcopyup), noexec and sized.
      // Podman mounts /run and /var/tmp (writable and executable, half the
      // host's RAM) and /dev/shm, /dev/mqueue in read-only containers:
      // tiny read-only mounts take their places.
      {"Tmpfs",
       {{"/tmp", absl::StrCat("rw,noexec,nosuid,nodev,mode=1777,size=", *tmpfs,
                              ",U,notmpcopyup")},
        {"/run", kReadOnlyTmpfs},
        {"/var/tmp", kReadOnlyTmpfs},
        {"/dev/shm", kReadOnlyTmpfs},
        {"/dev/mqueue", kReadOnlyTmpfs}}},
      {"Ulimits",
       {{{"Name", "nofile"},
         {"Soft", o.nofile_limit},
         {"Hard", o.nofile_limit}},
        {{"Name", "nproc"}, {"Soft", o.nproc_limit}, {"Hard", o.nproc_limit}}}},
      {"RestartPolicy", {{"Name", "no"}}},
      {"AutoRemove", false},
  };
  json body = {
      {"Image", image},
      {"User", o.user},
      {"Labels",
       {{kTaskLabel, req.task_id()},
        {kAttemptLabel, absl::StrCat(req.attempt())},
        {kRunLabel, req.run_id()},
        {kExecutorLabel, o.executor_id}}},
      {"Env", env_list},
      {"Tty", false},
      {"OpenStdin", false},
      {"AttachStdin", false},
      {"AttachStdout", false},
      {"AttachStderr", false},
      {"NetworkDisabled", o.network == "none"},
      {"HostConfig", host},
  };
  if (!req.trace_id().empty()) body["Labels"][kTraceLabel] = req.trace_id();
  if (!o.runtime.empty()) body["HostConfig"]["Runtime"] = o.runtime;
  if (o.userns == kUsernsAuto) {
    body["HostConfig"]["UsernsMode"] = kUsernsAutoMode;
  }
  if (spec.command_size() > 0) {
    body["Cmd"] = json(
        std::vector<std::string>(spec.command().begin(), spec.command().end()));
  }
  if (!spec.working_dir().empty()) body["WorkingDir"] = spec.working_dir();
  if (!spec.stdin().empty()) {
    // The runner attaches to stdin, writes the bytes and closes it; with
    // StdinOnce the engine then closes the process's stdin (EOF).
    body["OpenStdin"] = true;
    body["StdinOnce"] = true;
    body["AttachStdin"] = true;
  }
  // The docker-proxy inspects create bodies and refuses what it cannot
  // look at in full, and the two characters the engine folds to ASCII key
  // letters: refuse them here, as the task's error, rather than as a
  // proxy refusal the server would retry.
  const std::string dumped =
      body.dump(-1, ' ', false, json::error_handler_t::replace);
  if (dumped.size() > kMaxCreateBodyBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "spec is too large: its command, env and working_dir make a "
        "container-create body of ",
        dumped.size(), " bytes; the limit is ", kMaxCreateBodyBytes));
  }
  for (absl::string_view folding : {"\xc5\xbf", "\xe2\x84\xaa"}) {
    if (absl::StrContains(dumped, folding)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "spec.command, spec.env or spec.working_dir contains U+017F or "
          "U+212A, which the container engine folds to ASCII letters in "
          "JSON keys; the docker-proxy refuses them"));
    }
  }
  plan.name = ContainerName(req.run_id());
  if (NeedsScratch(spec)) {
    absl::StatusOr<int64_t> scratch = PlanScratch(spec);
    if (!scratch.ok()) return scratch.status();
    plan.resources.set_scratch_bytes(*scratch);
    plan.scratch_volume = plan.name;
    plan.scratch_dir = ScratchDir(spec);
    plan.scratch_volume_body = ScratchVolumeBody(plan.name, *scratch);
    body["WorkingDir"] = plan.scratch_dir;
    body["HostConfig"]["Binds"] = {ScratchBind(plan.name, plan.scratch_dir)};
  }
  plan.create_body = std::move(body);
  plan.pull_image = o.pull_images;
  return plan;
}

}  // namespace policy
