#ifndef CRUCIBLE_EXECUTOR_POLICY_SCRATCH_H_
#define CRUCIBLE_EXECUTOR_POLICY_SCRATCH_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crucible/v1/task.pb.h"
#include "nlohmann/json.hpp"

// The scratch working directory of a run whose spec has files or artifacts
// (issue 25): an engine-managed tmpfs volume of the run's own, named as its
// container, created before the container, bound at the working directory
// noexec,nosuid,nodev, filled with an archive upload after the container's
// init and before its start, read with an archive download after exit, and
// removed after the container. What is here is shared by the executor (which
// plans the calls) and the engine guard (which admits only these shapes).
// Pure functions.
namespace policy {

// The working directory when the spec names none.
inline constexpr char kDefaultScratchDir[] = "/work";
// The options of the bind of the volume at the working directory
// (HostConfig.Binds "VOLUME:DIR:OPTIONS"). A Mounts entry of type volume
// fails at start under UsernsMode auto (locked mount flags); a bind works.
inline constexpr char kScratchBindOptions[] = "rw,noexec,nosuid,nodev";
// The tmpfs options of the volume (DriverOpts.o) before its size: mode 1777
// because tmpfs' uid= is a host uid and the user namespace maps the task's
// user to another; Podman refuses size= (it wants a project quota), so the
// size is nr_blocks pages of kScratchBlockBytes.
inline constexpr char kScratchTmpfsOptionsPrefix[] =
    "nosuid,nodev,noexec,mode=1777,nr_blocks=";
inline constexpr int64_t kScratchBlockBytes = 4096;
inline constexpr int64_t kScratchInodes = 16384;
// At most this many artifact patterns, each at most kMaxScratchPathBytes.
inline constexpr int kMaxArtifactPatterns = 64;
// The longest input path or artifact pattern (a ustar header holds 255),
// and the longest artifact path collected.
inline constexpr size_t kMaxScratchPathBytes = 255;
// At most this many artifacts are listed in a result (and collected): the
// result goes in one message and one stored row.
inline constexpr int kMaxArtifactsListed = 1000;

// The largest archive upload (the input files' tar) the docker-proxy and
// the guard take: a tar of max_input_bytes, whose policy maximum this
// bounds.
inline constexpr size_t kMaxArchiveUploadBytes = size_t{16} << 20;

// The holder of a run's scratch volume: a second container of the run's
// own planned body, named ContainerName(run_id) + kScratchHolderSuffix,
// created and initialized (never started) before the task's container, and
// removed after it. Podman unmounts a tmpfs volume when the last container
// using it stops (its conmon's `container cleanup`), and a tmpfs' bytes go
// with its mount: without the holder the artifacts are gone a moment
// after the exit (and a download then mounts a fresh, empty tmpfs).
inline constexpr char kScratchHolderSuffix[] = ".keep";

// True if the spec has files or artifacts: its run gets a scratch volume.
bool NeedsScratch(const crucible::v1::TaskSpec& spec);

// The working directory of a spec with a scratch area.
std::string ScratchDir(const crucible::v1::TaskSpec& spec);

// INVALID_ARGUMENT unless `path` is relative: names separated by '/', none
// empty, "." or "..", no NUL, at most kMaxScratchPathBytes. `field` names
// it in the message.
absl::Status CheckInputPath(absl::string_view field, absl::string_view path);

// As CheckInputPath, for an artifact path or pattern ('*', '?', '[...]'
// allowed; they match within one segment).
absl::Status CheckArtifactPattern(absl::string_view field,
                                  absl::string_view pattern);

// INVALID_ARGUMENT unless `dir` can hold the scratch volume: absolute,
// normalized (no empty, "." or ".." segment, no trailing '/'), of
// [A-Za-z0-9._-] names, not "/" and not /proc, /sys, /dev, /tmp, /run or
// below them.
absl::Status CheckScratchDir(absl::string_view dir);

// DriverOpts.o of a volume of `scratch_bytes` (rounded up to whole blocks).
std::string ScratchTmpfsOptions(int64_t scratch_bytes);

// The size in bytes a DriverOpts.o made by ScratchTmpfsOptions gives;
// INVALID_ARGUMENT for any other string.
absl::StatusOr<int64_t> ParseScratchTmpfsOptions(absl::string_view o);

// The body of POST /volumes/create for the volume `name`.
nlohmann::json ScratchVolumeBody(absl::string_view name, int64_t scratch_bytes);

// The HostConfig.Binds entry of the volume `name` at `dir`.
std::string ScratchBind(absl::string_view name, absl::string_view dir);

}  // namespace policy

#endif  // CRUCIBLE_EXECUTOR_POLICY_SCRATCH_H_
