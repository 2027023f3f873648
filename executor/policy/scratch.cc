#include "executor/policy/scratch.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace policy {
namespace {

absl::Status CheckRelative(absl::string_view field, absl::string_view path) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " \"", absl::CHexEscape(path.substr(0, 64)), "\" ", why));
  };
  if (path.empty()) return bad("is empty");
  if (path.size() > kMaxScratchPathBytes) {
    return bad(absl::StrCat("is longer than ", kMaxScratchPathBytes, " bytes"));
  }
  if (absl::StrContains(path, '\0')) return bad("contains NUL");
  if (path[0] == '/') {
    return bad("must be relative to the working directory (no leading '/')");
  }
  for (absl::string_view seg : absl::StrSplit(path, '/')) {
    if (seg.empty() || seg == "." || seg == "..") {
      return bad("has an empty, \".\" or \"..\" segment");
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool NeedsScratch(const crucible::v1::TaskSpec& spec) {
  return spec.files_size() > 0 || spec.artifacts_size() > 0;
}

std::string ScratchDir(const crucible::v1::TaskSpec& spec) {
  return spec.working_dir().empty() ? std::string(kDefaultScratchDir)
                                    : spec.working_dir();
}

absl::Status CheckInputPath(absl::string_view field, absl::string_view path) {
  return CheckRelative(field, path);
}

absl::Status CheckArtifactPattern(absl::string_view field,
                                  absl::string_view pattern) {
  return CheckRelative(field, pattern);
}

absl::Status CheckScratchDir(absl::string_view dir) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "spec.working_dir \"", absl::CHexEscape(dir.substr(0, 64)),
        "\" cannot hold the scratch area (files or artifacts): ", why));
  };
  if (dir.size() < 2 || dir[0] != '/' || dir.size() > 1024) {
    return bad("it must be an absolute path other than \"/\"");
  }
  std::vector<absl::string_view> segs =
      absl::StrSplit(dir.substr(1), absl::ByChar('/'));
  for (absl::string_view seg : segs) {
    if (seg.empty() || seg == "." || seg == "..") {
      return bad("it must be normalized (no empty, \".\" or \"..\" segment)");
    }
    if (!std::all_of(seg.begin(), seg.end(), [](char c) {
          return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                 c == '.' || c == '_' || c == '-';
        })) {
      return bad("its names must be of [A-Za-z0-9._-]");
    }
  }
  for (absl::string_view system : {"proc", "sys", "dev", "tmp", "run"}) {
    if (segs[0] == system) {
      return bad("/proc, /sys, /dev, /tmp and /run are the system's");
    }
  }
  return absl::OkStatus();
}

std::string ScratchTmpfsOptions(int64_t scratch_bytes) {
  const int64_t blocks = std::max<int64_t>(
      1, (scratch_bytes + kScratchBlockBytes - 1) / kScratchBlockBytes);
  return absl::StrCat(kScratchTmpfsOptionsPrefix, blocks,
                      ",nr_inodes=", kScratchInodes);
}

absl::StatusOr<int64_t> ParseScratchTmpfsOptions(absl::string_view o) {
  absl::string_view rest = o;
  const std::string suffix = absl::StrCat(",nr_inodes=", kScratchInodes);
  int64_t blocks = 0;
  if (!absl::ConsumePrefix(&rest, kScratchTmpfsOptionsPrefix) ||
      !absl::ConsumeSuffix(&rest, suffix) || rest.empty() || rest.size() > 12 ||
      rest[0] == '0' ||
      !std::all_of(rest.begin(), rest.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(rest, &blocks) || blocks <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "scratch volume options \"", absl::CHexEscape(o.substr(0, 128)),
        "\" are not the policy's (", kScratchTmpfsOptionsPrefix, "<blocks>",
        suffix, ")"));
  }
  return blocks * kScratchBlockBytes;
}

nlohmann::json ScratchVolumeBody(absl::string_view name,
                                 int64_t scratch_bytes) {
  return {{"Name", std::string(name)},
          {"Driver", "local"},
          {"DriverOpts",
           {{"type", "tmpfs"},
            {"device", "tmpfs"},
            {"o", ScratchTmpfsOptions(scratch_bytes)}}}};
}

std::string ScratchBind(absl::string_view name, absl::string_view dir) {
  return absl::StrCat(name, ":", dir, ":", kScratchBindOptions);
}

}  // namespace policy
