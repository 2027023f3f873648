#include "executor/runner/scratch_area.h"

#include <fnmatch.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
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

  // Each artifact as the archive brings it, in the archive's order; listed
  // at the end by the first pattern each matched, then that order.
  struct Listed {
    int pattern = 0;
    crucible::v1::ArtifactInfo info;
  };
  std::vector<Listed> listed;
  std::vector<bool> matched(spec.artifacts_size(), false);
  std::set<std::string> reported;
  int64_t kept = 0;
  // Matched, but neither collected nor listed: a name a result cannot
  // carry (proto strings are UTF-8), or past the most listed.
  int64_t unnamed = 0, unlisted = 0;
  // The artifact whose bytes are coming: hashed, and sent in chunks of
  // kChunkBytes.
  Listed* current = nullptr;
  common::Sha256 sha256;
  std::string pending;
  int64_t sent = 0;
  auto send = [&](size_t n) {
    crucible::v1::ArtifactChunk chunk;
    chunk.set_path(current->info.path());
    chunk.set_offset(sent);
    chunk.set_data(pending.substr(0, n));
    pending.erase(0, n);
    sent += static_cast<int64_t>(n);
    sink.OnArtifact(std::move(chunk));
  };

  TarReader reader(
      [&](const TarEntry& entry) {
        current = nullptr;
        absl::string_view path = entry.path;
        while (absl::ConsumePrefix(&path, "./")) {
        }
        if (path.empty() || path == ".") return false;  // the directory
        int first = -1;
        for (int i = 0; i < spec.artifacts_size(); ++i) {
          if (fnmatch(spec.artifacts(i).c_str(), std::string(path).c_str(),
                      FNM_PATHNAME) == 0) {
            matched[i] = true;
            if (first < 0) first = i;
          }
        }
        if (first < 0 || !reported.insert(std::string(path)).second) {
          return false;
        }
        if (!common::IsValidUtf8(path) ||
            path.size() > policy::kMaxScratchPathBytes) {
          ++unnamed;
          return false;
        }
        if (static_cast<int>(listed.size()) >= policy::kMaxArtifactsListed) {
          ++unlisted;
          return false;
        }
        Listed& l = listed.emplace_back();
        l.pattern = first;
        l.info.set_path(std::string(path));
        l.info.set_size_bytes(entry.size);
        if (entry.type != '0') {
          l.info.set_status(crucible::v1::ARTIFACT_STATUS_NOT_REGULAR);
          return false;
        }
        if (kept + entry.size > plan.max_artifact_bytes) {
          l.info.set_status(crucible::v1::ARTIFACT_STATUS_SKIPPED_OVER_LIMIT);
          return false;
        }
        kept += entry.size;
        // INCOMPLETE until its last byte is sent.
        l.info.set_status(crucible::v1::ARTIFACT_STATUS_INCOMPLETE);
        current = &l;
        sha256 = common::Sha256();
        pending.clear();
        sent = 0;
        return true;
      },
      [&](absl::string_view bytes) {
        sha256.Update(bytes);
        pending.append(bytes.data(), bytes.size());
        while (pending.size() >= kChunkBytes) send(kChunkBytes);
      },
      [&] {
        if (!pending.empty() || sent == 0) send(pending.size());
        current->info.set_status(crucible::v1::ARTIFACT_STATUS_COLLECTED);
        current->info.set_sha256(sha256.HexDigest());
        current = nullptr;
      });
  int64_t downloaded = 0;
  absl::Status parsed = absl::OkStatus();
  // "DIR/." : Podman answers an empty archive for DIR itself when it is a
  // volume's mount point; "DIR/." gives its entries, relative to it.
  absl::Status s = engine.StreamArchive(
      plan.name, absl::StrCat(plan.scratch_dir, "/."),
      [&](absl::string_view bytes) {
        downloaded += static_cast<int64_t>(bytes.size());
        if (downloaded > max_tar) {
          parsed = absl::ResourceExhaustedError(
              absl::StrCat("the archive of ", plan.scratch_dir,
                           " is larger than ", max_tar, " bytes"));
          return false;
        }
        parsed = reader.Feed(bytes);
        return parsed.ok();
      });
  if (!parsed.ok()) s = parsed;
  if (s.ok()) s = reader.Finish();
  if (!s.ok()) {
    LOG(WARNING) << "run " << plan.name << ": artifacts not collected: " << s;
    AppendError(result, absl::StrCat("artifacts not collected: ", s.message()));
  }

  std::stable_sort(
      listed.begin(), listed.end(),
      [](const Listed& a, const Listed& b) { return a.pattern < b.pattern; });
  for (Listed& l : listed) *result.add_artifacts() = std::move(l.info);
  // A path missing from a download that broke may have been in the rest.
  for (int i = 0; i < spec.artifacts_size() && s.ok(); ++i) {
    const std::string& pattern = spec.artifacts(i);
    if (!matched[i] && !IsPattern(pattern) && reported.insert(pattern).second) {
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
