#include "executor/runner/scratch_area.h"

#include <fnmatch.h>

#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/sha256.h"
#include "common/utf8.h"
#include "executor/policy/scratch.h"
#include "executor/runner/tar.h"
#include "glog/logging.h"

namespace runner {
namespace {

constexpr size_t kChunkBytes = 64 * 1024;

bool IsPattern(absl::string_view p) {
  return p.find_first_of("*?[") != absl::string_view::npos;
}

// Adds `what` to the result's error message, after what is there.
void AppendError(crucible::v1::TaskResult& result, absl::string_view what) {
  absl::StrAppend(result.mutable_error_message(),
                  result.error_message().empty() ? "" : "; ", what);
}

}  // namespace

absl::Status FillScratch(docker::Engine& engine,
                         const policy::ContainerPlan& plan,
                         const crucible::v1::TaskSpec& spec) {
  // The volume is mounted at start, hiding whatever an upload before it
  // wrote into the container's own directory: init mounts it first.
  if (absl::Status s = engine.InitContainer(plan.name); !s.ok()) return s;
  if (spec.files_size() == 0) return absl::OkStatus();
  // The files belong to the task's user (the tar's owner is kept).
  uint32_t uid = 65534, gid = 65534;
  const std::string user = plan.create_body.value("User", "65534:65534");
  std::vector<std::string> ids = absl::StrSplit(user, ':');
  if (ids.size() != 2 || !absl::SimpleAtoi(ids[0], &uid) ||
      !absl::SimpleAtoi(ids[1], &gid)) {
    return absl::InternalError(
        absl::StrCat("planned user \"", user, "\" is not numeric uid:gid"));
  }
  std::vector<TarFile> files;
  for (const crucible::v1::InputFile& f : spec.files()) {
    files.push_back(TarFile{.path = f.path(),
                            .content = f.content(),
                            .mode = f.mode() == 0 ? 0644u : f.mode()});
  }
  absl::StatusOr<std::string> tar = BuildTar(files, uid, gid);
  if (!tar.ok()) return tar.status();
  return engine.PutArchive(plan.name, plan.scratch_dir, *tar);
}

void CollectArtifacts(docker::Engine& engine, const policy::ContainerPlan& plan,
                      const crucible::v1::TaskSpec& spec, RunSink& sink,
                      crucible::v1::TaskResult& result) {
  if (spec.artifacts_size() == 0) return;
  // The tar of the whole area: its bytes plus headers and padding, for at
  // most kScratchInodes entries.
  const int64_t max_tar = plan.resources.scratch_bytes() + (32 << 20);
  // "DIR/." : Podman answers an empty archive for DIR itself when it is a
  // volume's mount point; "DIR/." gives its entries, relative to it.
  absl::StatusOr<std::string> tar = engine.GetArchive(
      plan.name, absl::StrCat(plan.scratch_dir, "/."), max_tar);
  absl::StatusOr<std::vector<TarEntry>> entries =
      tar.ok() ? ParseTar(*tar) : tar.status();
  if (!entries.ok()) {
    LOG(WARNING) << "run " << plan.name
                 << ": artifacts not collected: " << entries.status();
    AppendError(result, absl::StrCat("artifacts not collected: ",
                                     entries.status().message()));
    return;
  }
  std::vector<TarEntry*> files;
  for (TarEntry& e : *entries) {
    while (absl::StartsWith(e.path, "./")) e.path.erase(0, 2);
    if (e.path.empty() || e.path == ".") continue;  // the directory itself
    files.push_back(&e);
  }
  std::set<std::string> reported;
  int64_t kept = 0;
  // Matched, but neither collected nor listed: a name a result cannot
  // carry (proto strings are UTF-8), or past the most listed.
  int64_t unnamed = 0, unlisted = 0;
  for (const std::string& pattern : spec.artifacts()) {
    bool matched = false;
    for (TarEntry* e : files) {
      if (fnmatch(pattern.c_str(), e->path.c_str(), FNM_PATHNAME) != 0) {
        continue;
      }
      matched = true;
      if (!reported.insert(e->path).second) continue;
      if (!common::IsValidUtf8(e->path) ||
          e->path.size() > policy::kMaxScratchPathBytes) {
        ++unnamed;
        continue;
      }
      if (result.artifacts_size() >= policy::kMaxArtifactsListed) {
        ++unlisted;
        continue;
      }
      crucible::v1::ArtifactInfo* info = result.add_artifacts();
      info->set_path(e->path);
      info->set_size_bytes(e->size);
      if (e->type != '0') {
        info->set_status(crucible::v1::ARTIFACT_STATUS_NOT_REGULAR);
        continue;
      }
      if (kept + e->size > plan.max_artifact_bytes) {
        info->set_status(crucible::v1::ARTIFACT_STATUS_SKIPPED_OVER_LIMIT);
        continue;
      }
      kept += e->size;
      info->set_status(crucible::v1::ARTIFACT_STATUS_COLLECTED);
      info->set_sha256(common::Sha256Hex(e->content));
      for (size_t off = 0; off < e->content.size() || off == 0;
           off += kChunkBytes) {
        crucible::v1::ArtifactChunk chunk;
        chunk.set_path(e->path);
        chunk.set_offset(static_cast<int64_t>(off));
        chunk.set_data(e->content.substr(off, kChunkBytes));
        sink.OnArtifact(std::move(chunk));
        if (e->content.empty()) break;
      }
    }
    if (!matched && !IsPattern(pattern) && reported.insert(pattern).second) {
      crucible::v1::ArtifactInfo* info = result.add_artifacts();
      info->set_path(pattern);
      info->set_status(crucible::v1::ARTIFACT_STATUS_NOT_FOUND);
    }
  }
  if (unnamed > 0) {
    AppendError(
        result,
        absl::StrCat("artifacts: ", unnamed,
                     " matching files not collected: their names are not "
                     "UTF-8 or longer than ",
                     policy::kMaxScratchPathBytes, " bytes"));
  }
  if (unlisted > 0) {
    AppendError(result,
                absl::StrCat("artifacts: ", unlisted,
                             " more matching files not collected: at most ",
                             policy::kMaxArtifactsListed, " are"));
  }
}

}  // namespace runner
