#ifndef CRUCIBLE_EXECUTOR_RUNNER_TAR_H_
#define CRUCIBLE_EXECUTOR_RUNNER_TAR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// The tar archives of the scratch area (issue 25): the input files going
// up (PUT archive), the working directory coming back (GET archive). Pure.
namespace runner {

struct TarFile {
  std::string path;  // relative, '/'-separated, at most 255 bytes
  std::string content;
  uint32_t mode = 0644;
};

// A ustar archive of `files`, owned by uid:gid, with an entry (mode 0755)
// for every parent directory before its first file. Paths must be valid
// (policy::CheckInputPath); INVALID_ARGUMENT for one a ustar header cannot
// hold.
absl::StatusOr<std::string> BuildTar(const std::vector<TarFile>& files,
                                     uint32_t uid, uint32_t gid);

struct TarEntry {
  std::string path;  // as in the archive, without a trailing '/'
  char type = '0';   // '0' regular, '5' directory, '2' symlink, ...
  int64_t size = 0;
  uint32_t mode = 0;    // permission bits as in the header
  std::string content;  // regular files only
};

// The entries of a ustar/PAX/GNU archive (as Docker and Podman send them:
// PAX 'x' path records and GNU 'L' long names are applied to the next
// entry). INVALID_ARGUMENT for a malformed archive.
absl::StatusOr<std::vector<TarEntry>> ParseTar(absl::string_view archive);

// The entries of an archive as BuildTar makes them, read strictly, so that
// any other tar reader (the engine's) sees the same entries: plain ustar
// headers only (magic "ustar\0", version "00", a valid checksum, octal
// fields), of regular files and directories only (no PAX, GNU or other
// extension header, no link), then nothing but the end-of-archive zeros.
// INVALID_ARGUMENT, saying what, for anything else.
absl::StatusOr<std::vector<TarEntry>> ParsePlainUstar(
    absl::string_view archive);

}  // namespace runner

#endif  // CRUCIBLE_EXECUTOR_RUNNER_TAR_H_
