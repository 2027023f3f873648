#include "server/scheduler/spec_validation.h"

#include <fnmatch.h>

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/image_reference.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "server/scheduler/request_validation.h"

namespace server {
namespace {

// The ranges protobuf defines for its well-known time types.
constexpr int64_t kMaxProtoDurationSeconds = 315'576'000'000;
constexpr int64_t kMinProtoTimestampSeconds = -62'135'596'800;  // 0001-01-01
constexpr int64_t kMaxProtoTimestampSeconds = 253'402'300'799;  // 9999-12-31

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

absl::Status NonNegative(absl::string_view field, int64_t value) {
  if (value < 0) {
    return Invalid(field,
                   absl::StrCat("must not be negative (got ", value, ")"));
  }
  return absl::OkStatus();
}

absl::Status ValidDuration(absl::string_view field,
                           const google::protobuf::Duration& d, bool positive) {
  // Protobuf's own validity rule: seconds and nanos share a sign.
  if ((d.seconds() > 0 && d.nanos() < 0) ||
      (d.seconds() < 0 && d.nanos() > 0) || d.nanos() <= -1'000'000'000 ||
      d.nanos() >= 1'000'000'000) {
    return Invalid(field, "malformed duration");
  }
  // Beyond ~10,000 years a Duration is not valid protobuf (its JSON form
  // fails); beyond kMaxSpecDuration it is not a sane limit.
  if (d.seconds() > kMaxProtoDurationSeconds ||
      d.seconds() < -kMaxProtoDurationSeconds) {
    return Invalid(field, "outside the range of google.protobuf.Duration");
  }
  absl::Duration value = common::FromProtoDuration(d);
  if (value > kMaxSpecDuration) {
    return Invalid(field, absl::StrCat("at most ",
                                       absl::FormatDuration(kMaxSpecDuration)));
  }
  if (positive && value <= absl::ZeroDuration()) {
    return Invalid(field, absl::StrCat("must be positive (got ",
                                       absl::FormatDuration(value), ")"));
  }
  if (!positive && value < absl::ZeroDuration()) {
    return Invalid(field, absl::StrCat("must not be negative (got ",
                                       absl::FormatDuration(value), ")"));
  }
  return absl::OkStatus();
}

absl::Status ValidateCommand(const crucible::v1::TaskSpec& spec) {
  if (spec.command_size() > kMaxCommandEntries) {
    return Invalid("spec.command",
                   absl::StrCat("at most ", kMaxCommandEntries,
                                " entries (got ", spec.command_size(), ")"));
  }
  // No program can have an empty name; an empty command (not [""]) runs
  // the image's own.
  if (spec.command_size() > 0 && spec.command(0).empty()) {
    return Invalid("spec.command[0]", "empty: it names the program to run");
  }
  size_t total = 0;
  for (int i = 0; i < spec.command_size(); ++i) {
    if (absl::StrContains(spec.command(i), '\0')) {
      return Invalid(absl::StrCat("spec.command[", i, "]"), "contains NUL");
    }
    total += spec.command(i).size();
  }
  if (total > kMaxCommandBytes) {
    return Invalid("spec.command",
                   absl::StrCat("at most ", kMaxCommandBytes,
                                " bytes in total (got ", total, ")"));
  }
  return absl::OkStatus();
}

absl::Status ValidateEnv(const crucible::v1::TaskSpec& spec) {
  if (spec.env_size() > kMaxEnvEntries) {
    return Invalid("spec.env",
                   absl::StrCat("at most ", kMaxEnvEntries, " entries (got ",
                                spec.env_size(), ")"));
  }
  size_t total = 0;
  for (const auto& [name, value] : spec.env()) {
    if (name.empty()) return Invalid("spec.env", "empty variable name");
    if (absl::StrContains(name, '=') || absl::StrContains(name, '\0')) {
      return Invalid(absl::StrCat("spec.env[", Abbreviate(name), "]"),
                     "name must not contain '=' or NUL");
    }
    if (absl::StrContains(value, '\0')) {
      return Invalid(absl::StrCat("spec.env[", Abbreviate(name), "]"),
                     "value contains NUL");
    }
    total += name.size() + value.size() + 1;
  }
  if (total > kMaxEnvBytes) {
    return Invalid("spec.env",
                   absl::StrCat("at most ", kMaxEnvBytes,
                                " bytes in total (got ", total, ")"));
  }
  return absl::OkStatus();
}

absl::Status ValidateLabels(const crucible::v1::TaskSpec& spec) {
  if (spec.labels_size() > kMaxLabels) {
    return Invalid("spec.labels",
                   absl::StrCat("at most ", kMaxLabels, " labels (got ",
                                spec.labels_size(), ")"));
  }
  for (const auto& [key, value] : spec.labels()) {
    RETURN_IF_ERROR(ValidateLabel("spec.labels", key, value));
    if (absl::StrContains(key, '\0') || absl::StrContains(value, '\0')) {
      return Invalid(absl::StrCat("spec.labels[", Abbreviate(key), "]"),
                     "contains NUL");
    }
  }
  return absl::OkStatus();
}

// A path under the working directory, as files[].path or artifacts[]: names
// joined by '/', none empty, "." or "..", no leading '/'. Links and
// absolute paths out of the scratch area are thereby impossible to name.
absl::Status ValidateRelativePath(const std::string& field,
                                  absl::string_view path) {
  if (path.empty()) return Invalid(field, "empty path");
  if (path.size() > kMaxFilePathBytes) {
    return Invalid(field, absl::StrCat("at most ", kMaxFilePathBytes,
                                       " bytes (got ", path.size(), ")"));
  }
  if (absl::StrContains(path, '\0')) return Invalid(field, "contains NUL");
  if (path[0] == '/') {
    return Invalid(field,
                   absl::StrCat("\"", Abbreviate(path),
                                "\" is absolute; name it relative to the "
                                "working directory"));
  }
  for (absl::string_view name : absl::StrSplit(path, '/')) {
    if (name.empty() || name == "." || name == "..") {
      return Invalid(field, absl::StrCat("\"", Abbreviate(path),
                                         "\" has an empty, \".\" or \"..\" "
                                         "name; only plain names are allowed"));
    }
    if (name.size() > kMaxFileNameBytes) {
      return Invalid(field, absl::StrCat("a name of \"", Abbreviate(path),
                                         "\" is longer than ",
                                         kMaxFileNameBytes, " bytes"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateFiles(const crucible::v1::TaskSpec& spec) {
  if (spec.files_size() > kMaxInputFiles) {
    return Invalid("spec.files",
                   absl::StrCat("at most ", kMaxInputFiles, " files (got ",
                                spec.files_size(), ")"));
  }
  size_t total = 0;
  int64_t content = 0;  // the files' bytes, without their paths
  absl::flat_hash_set<absl::string_view> paths;
  for (int i = 0; i < spec.files_size(); ++i) {
    const crucible::v1::InputFile& f = spec.files(i);
    const std::string field = absl::StrCat("spec.files[", i, "].path");
    RETURN_IF_ERROR(ValidateRelativePath(field, f.path()));
    if (!paths.insert(f.path()).second) {
      return Invalid(
          field, absl::StrCat("\"", Abbreviate(f.path()), "\" is named twice"));
    }
    if (f.mode() > 0777) {
      return Invalid(absl::StrCat("spec.files[", i, "].mode"),
                     absl::StrFormat("at most 0777 (no setuid, setgid or "
                                     "sticky bit; got %#o)",
                                     f.mode()));
    }
    total += f.path().size() + f.content().size();
    content += static_cast<int64_t>(f.content().size());
  }
  // A file cannot also be the directory of another ("a" and "a/b").
  for (absl::string_view p : paths) {
    for (size_t slash = p.find('/'); slash != absl::string_view::npos;
         slash = p.find('/', slash + 1)) {
      if (paths.contains(p.substr(0, slash))) {
        return Invalid("spec.files",
                       absl::StrCat("\"", Abbreviate(p.substr(0, slash)),
                                    "\" is both a file and the directory of \"",
                                    Abbreviate(p), "\""));
      }
    }
  }
  if (total > kMaxInputBytes) {
    return Invalid(
        "spec.files",
        absl::StrCat("at most ", kMaxInputBytes,
                     " bytes of paths and contents in all (got ", total, ")"));
  }
  // The files must fit the scratch area the spec asks for (the executor
  // refuses them otherwise, after the task has waited its turn).
  const int64_t scratch = spec.resources().scratch_bytes();
  if (scratch > 0 && content > scratch) {
    return Invalid("spec.files", absl::StrCat(content,
                                              " bytes of contents do not fit "
                                              "spec.resources.scratch_bytes (",
                                              scratch, ")"));
  }
  return absl::OkStatus();
}

absl::Status ValidateArtifacts(const crucible::v1::TaskSpec& spec) {
  if (spec.artifacts_size() > kMaxArtifactPatterns) {
    return Invalid(
        "spec.artifacts",
        absl::StrCat("at most ", kMaxArtifactPatterns,
                     " paths or patterns (got ", spec.artifacts_size(), ")"));
  }
  for (int i = 0; i < spec.artifacts_size(); ++i) {
    RETURN_IF_ERROR(ValidateRelativePath(
        absl::StrCat("spec.artifacts[", i, "]"), spec.artifacts(i)));
  }
  return NonNegative("spec.max_artifact_bytes", spec.max_artifact_bytes());
}

absl::Status ValidateResources(const crucible::v1::Resources& r) {
  RETURN_IF_ERROR(NonNegative("spec.resources.memory_bytes", r.memory_bytes()));
  RETURN_IF_ERROR(NonNegative("spec.resources.cpu_millis", r.cpu_millis()));
  RETURN_IF_ERROR(NonNegative("spec.resources.pids_limit", r.pids_limit()));
  RETURN_IF_ERROR(NonNegative("spec.resources.tmpfs_bytes", r.tmpfs_bytes()));
  RETURN_IF_ERROR(
      NonNegative("spec.resources.scratch_bytes", r.scratch_bytes()));
  return absl::OkStatus();
}

absl::Status ValidateRetry(const crucible::v1::RetryPolicy& p) {
  RETURN_IF_ERROR(
      NonNegative("spec.retry_policy.max_attempts", p.max_attempts()));
  if (p.max_attempts() > kMaxAttemptsLimit) {
    return Invalid("spec.retry_policy.max_attempts",
                   absl::StrCat("at most ", kMaxAttemptsLimit, " (got ",
                                p.max_attempts(), ")"));
  }
  if (p.has_initial_backoff()) {
    RETURN_IF_ERROR(ValidDuration("spec.retry_policy.initial_backoff",
                                  p.initial_backoff(), /*positive=*/false));
  }
  if (p.has_max_backoff()) {
    RETURN_IF_ERROR(ValidDuration("spec.retry_policy.max_backoff",
                                  p.max_backoff(), /*positive=*/false));
  }
  if (p.has_initial_backoff() && p.has_max_backoff() &&
      common::FromProtoDuration(p.initial_backoff()) >
          common::FromProtoDuration(p.max_backoff())) {
    return Invalid("spec.retry_policy.initial_backoff",
                   "must not be larger than max_backoff");
  }
  return absl::OkStatus();
}

absl::Status AtMost(absl::string_view field, int64_t value, int64_t max) {
  if (max > 0 && value > max) {
    return Invalid(field,
                   absl::StrCat("at most ", max, " (the server's maximum; got ",
                                value, ")"));
  }
  return absl::OkStatus();
}

absl::Status WithinLimits(const crucible::v1::TaskSpec& spec,
                          const ValidationLimits& limits) {
  const crucible::v1::Resources& r = spec.resources();
  RETURN_IF_ERROR(AtMost("spec.resources.memory_bytes", r.memory_bytes(),
                         limits.max_memory_bytes));
  RETURN_IF_ERROR(AtMost("spec.resources.cpu_millis", r.cpu_millis(),
                         limits.max_cpu_millis));
  RETURN_IF_ERROR(AtMost("spec.resources.pids_limit", r.pids_limit(),
                         limits.max_pids_limit));
  RETURN_IF_ERROR(AtMost("spec.resources.tmpfs_bytes", r.tmpfs_bytes(),
                         limits.max_tmpfs_bytes));
  RETURN_IF_ERROR(AtMost("spec.max_output_bytes", spec.max_output_bytes(),
                         limits.max_output_bytes));
  if (spec.has_timeout() && limits.max_timeout > absl::ZeroDuration() &&
      common::FromProtoDuration(spec.timeout()) > limits.max_timeout) {
    return Invalid(
        "spec.timeout",
        absl::StrCat("at most ", absl::FormatDuration(limits.max_timeout),
                     " (the server's maximum)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateTaskSpec(const crucible::v1::TaskSpec& spec,
                              const ValidationLimits& limits) {
  if (spec.image().empty()) return Invalid("spec.image", "required");
  if (spec.image().size() > kMaxImageBytes) {
    return Invalid("spec.image",
                   absl::StrCat("at most ", kMaxImageBytes, " bytes (got ",
                                spec.image().size(), ")"));
  }
  if (absl::Status s = common::ValidateImageReference(spec.image()); !s.ok()) {
    return Invalid("spec.image", absl::StrCat("\"", Abbreviate(spec.image()),
                                              "\" is ", s.message()));
  }
  RETURN_IF_ERROR(ValidateCommand(spec));
  RETURN_IF_ERROR(ValidateEnv(spec));
  int64_t max_stdin = std::min<int64_t>(limits.max_stdin_bytes, kMaxStdinBytes);
  if (static_cast<int64_t>(spec.stdin().size()) > max_stdin) {
    return Invalid("spec.stdin",
                   absl::StrCat("at most ", max_stdin, " bytes (got ",
                                spec.stdin().size(), ")"));
  }
  if (spec.working_dir().size() > kMaxWorkingDirBytes) {
    return Invalid("spec.working_dir",
                   absl::StrCat("at most ", kMaxWorkingDirBytes, " bytes"));
  }
  if (absl::StrContains(spec.working_dir(), '\0')) {
    return Invalid("spec.working_dir", "contains NUL");
  }
  // The executors (and the engine guard) accept only absolute paths; a
  // relative one would otherwise be accepted here and refused there.
  if (!spec.working_dir().empty() && spec.working_dir()[0] != '/') {
    return Invalid("spec.working_dir", "must be an absolute path");
  }
  RETURN_IF_ERROR(ValidateResources(spec.resources()));
  if (spec.has_timeout()) {
    RETURN_IF_ERROR(
        ValidDuration("spec.timeout", spec.timeout(), /*positive=*/true));
  }
  if (spec.has_not_before()) {
    const google::protobuf::Timestamp& t = spec.not_before();
    if (t.seconds() < kMinProtoTimestampSeconds ||
        t.seconds() > kMaxProtoTimestampSeconds || t.nanos() < 0 ||
        t.nanos() >= 1'000'000'000) {
      return Invalid("spec.not_before",
                     "outside the range of google.protobuf.Timestamp");
    }
  }
  RETURN_IF_ERROR(
      NonNegative("spec.max_output_bytes", spec.max_output_bytes()));
  RETURN_IF_ERROR(ValidateRetry(spec.retry_policy()));
  RETURN_IF_ERROR(ValidateLabels(spec));
  RETURN_IF_ERROR(ValidateFiles(spec));
  RETURN_IF_ERROR(ValidateArtifacts(spec));
  RETURN_IF_ERROR(WithinLimits(spec, limits));
  return absl::OkStatus();
}

absl::Status ValidateReportedArtifactPath(const crucible::v1::TaskSpec& spec,
                                          const std::string& path) {
  RETURN_IF_ERROR(ValidateRelativePath("artifact.chunk.path", path));
  for (const std::string& pattern : spec.artifacts()) {
    // As the executor matches (executor/runner/scratch_area.cc).
    if (fnmatch(pattern.c_str(), path.c_str(), FNM_PATHNAME) == 0) {
      return absl::OkStatus();
    }
  }
  return Invalid("artifact.chunk.path",
                 absl::StrCat("\"", Abbreviate(path),
                              "\" matches none of the spec's artifacts"));
}

absl::Status ValidateRequestId(const std::string& request_id) {
  if (request_id.size() > kMaxRequestIdBytes) {
    return Invalid("request_id",
                   absl::StrCat("at most ", kMaxRequestIdBytes, " bytes (got ",
                                request_id.size(), ")"));
  }
  return absl::OkStatus();
}

}  // namespace server
