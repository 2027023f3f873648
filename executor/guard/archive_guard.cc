#include "executor/guard/archive_guard.h"

#include <regex>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "executor/guard/create_guard.h"
#include "executor/policy/scratch.h"
#include "executor/runner/tar.h"
#include "nlohmann/json.hpp"

namespace guard {
namespace {

using nlohmann::json;

absl::Status Denied(absl::string_view why) {
  return absl::PermissionDeniedError(
      absl::StrCat("crucible engine guard: archive call refused: ", why));
}

const std::regex& ArchivePath() {
  static const std::regex* re = new std::regex(kArchivePathPattern);
  return *re;
}

// A string member of `j`, or "" if there is none of that type.
std::string StringAt(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

absl::StatusOr<ArchiveTarget> ParseArchiveCall(absl::string_view path,
                                               absl::string_view query) {
  std::match_results<absl::string_view::const_iterator> m;
  if (!std::regex_match(path.begin(), path.end(), m, ArchivePath())) {
    return Denied(absl::StrCat("not an archive call on a crucible-* ",
                               "container: ", QuoteCallerBytes(path)));
  }
  ArchiveTarget target;
  target.container = m[2].str();
  if (absl::EndsWith(target.container, policy::kScratchHolderSuffix)) {
    return Denied(absl::StrCat(
        "archive calls go to a run's container, not to its holder ",
        target.container));
  }
  absl::string_view dir = query;
  if (!absl::ConsumePrefix(&dir, "path=") || !absl::StartsWith(dir, "/") ||
      absl::StrContains(dir, "&") || absl::StrContains(dir, "%") ||
      absl::StrContains(dir, "..") || absl::StrContains(dir, "//")) {
    return Denied(absl::StrCat("the query must be exactly path=DIR, a clean ",
                               "absolute path, not ", QuoteCallerBytes(query)));
  }
  target.path = std::string(dir);
  return target;
}

absl::Status CheckArchiveCall(const ArchiveTarget& target, bool upload,
                              absl::string_view inspect_json,
                              absl::string_view tar) {
  const json inspect = json::parse(inspect_json, nullptr, false);
  if (!inspect.is_object() ||
      StringAt(inspect, "Name") != absl::StrCat("/", target.container)) {
    return Denied(absl::StrCat("the engine's inspect of ", target.container,
                               " is not that container's"));
  }
  // Where the run's own volume (named as its container, see
  // policy::ScratchVolumeBody) is mounted.
  std::string dir;
  auto mounts = inspect.find("Mounts");
  if (mounts != inspect.end() && mounts->is_array()) {
    for (const json& mount : *mounts) {
      if (StringAt(mount, "Type") == "volume" &&
          StringAt(mount, "Name") == target.container) {
        dir = StringAt(mount, "Destination");
      }
    }
  }
  if (dir.empty() || !policy::CheckScratchDir(dir).ok()) {
    return Denied(absl::StrCat(target.container,
                               " has no scratch volume of its own mounted"));
  }
  const std::string want = upload ? dir : absl::StrCat(dir, "/.");
  if (target.path != want) {
    return Denied(absl::StrCat(
        upload ? "PUT" : "GET", " of path ", QuoteCallerBytes(target.path),
        " of ", target.container, ": only ", want, ", its scratch directory"));
  }
  if (!upload) return absl::OkStatus();

  // Files go in after init and before start, into a volume nothing has run
  // on: the task cannot have left a link there for the upload to follow.
  auto state = inspect.find("State");
  const bool never_started =
      state != inspect.end() && state->is_object() &&
      absl::StartsWith(StringAt(*state, "StartedAt"), "0001-01-01") &&
      state->contains("Running") && (*state)["Running"] == false;
  if (!never_started) {
    return Denied(absl::StrCat(target.container,
                               " has started: its files go in before start"));
  }
  absl::StatusOr<std::vector<runner::TarEntry>> entries =
      runner::ParsePlainUstar(tar);
  if (!entries.ok()) return Denied(entries.status().message());
  for (const runner::TarEntry& e : *entries) {
    if (absl::Status s = policy::CheckInputPath("tar entry", e.path); !s.ok()) {
      return Denied(s.message());
    }
    if ((e.mode & ~0777u) != 0) {
      return Denied(absl::StrCat("tar entry ", QuoteCallerBytes(e.path),
                                 " has mode 0", absl::StrFormat("%o", e.mode),
                                 " (setuid, setgid or sticky)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace guard
