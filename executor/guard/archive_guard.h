#ifndef CRUCIBLE_EXECUTOR_GUARD_ARCHIVE_GUARD_H_
#define CRUCIBLE_EXECUTOR_GUARD_ARCHIVE_GUARD_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// The engine guard's decision on the archive calls of a run's scratch area
// (issue 25): PUT /containers/{name}/archive?path=DIR, the input files, and
// GET /containers/{name}/archive?path=DIR/., the artifacts. Only these two
// shapes, on exactly the directory where the run's own scratch volume is
// mounted; the engine would otherwise write anywhere in a container's
// filesystem, its read-only root included (and execute from there), and
// read anywhere in it. Pure; the HTTP side is GuardServer.
namespace guard {

// The path of an archive call, exactly the proxy's c_archive
// (deploy/docker-proxy/haproxy.cfg); its second group is the container.
inline constexpr char kArchivePathPattern[] =
    R"(^(/v[0-9]+\.[0-9]+)?/containers/(crucible-[A-Za-z0-9][A-Za-z0-9_.-]*)/archive$)";

// What an admitted archive call is about.
struct ArchiveTarget {
  std::string container;  // crucible-<run id>
  std::string path;       // the query's path, as the engine gets it
};

// The container name and path of an archive call, from the request's path
// (optionally versioned, /vX.Y/containers/NAME/archive) and query (exactly
// path=ABSOLUTE, clean: no "..", "//", "%" or other parameter).
// PERMISSION_DENIED for anything else, and for a holder (NAME ending in
// .keep): only the run's own container carries its files.
absl::StatusOr<ArchiveTarget> ParseArchiveCall(absl::string_view path,
                                               absl::string_view query);

// Admits the call given the engine's inspect of target.container (GET
// /containers/NAME/json, as JSON): the container has the volume named as
// itself mounted, at target.path for a PUT (`upload`) and at the path
// without its final "/." for a GET. A PUT only into a container that has
// never started (after init, before start: the volume is fresh), and only
// of a tar of plain relative names (policy::CheckInputPath) that are
// regular files or directories: no link, device or other entry the engine
// would create or follow. PERMISSION_DENIED saying why otherwise.
absl::Status CheckArchiveCall(const ArchiveTarget& target, bool upload,
                              absl::string_view inspect_json,
                              absl::string_view tar);

}  // namespace guard

#endif  // CRUCIBLE_EXECUTOR_GUARD_ARCHIVE_GUARD_H_
