#ifndef CRUCIBLE_EXECUTOR_RUNNER_TAR_H_
#define CRUCIBLE_EXECUTOR_RUNNER_TAR_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
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

// Reads a ustar/PAX/GNU archive as its bytes arrive (as Docker and Podman
// send them: PAX 'x' path records and GNU 'L' long names are applied to
// the next entry, 'g' records are skipped), without holding it: only one
// header and the current entry's metadata are kept. Reading ends at the
// first all-zero block.
class TarReader {
 public:
  // For each entry, `on_entry` gets its header (path, type, size, mode;
  // content empty; a regular file's type is '0') and says whether it wants
  // the content; if so `on_content` gets its bytes in order, in pieces,
  // then `on_end` is called once (also for an empty file).
  TarReader(std::function<bool(const TarEntry&)> on_entry,
            std::function<void(absl::string_view)> on_content,
            std::function<void()> on_end);

  // The next bytes of the archive. INVALID_ARGUMENT for a malformed one;
  // after an error, or the end, the rest is ignored.
  absl::Status Feed(absl::string_view bytes);
  // The archive's bytes have all come: INVALID_ARGUMENT if it ended inside
  // an entry.
  absl::Status Finish() const;

 private:
  absl::Status OnHeader();

  std::function<bool(const TarEntry&)> on_entry_;
  std::function<void(absl::string_view)> on_content_;
  std::function<void()> on_end_;
  enum class State { kHeader, kContent, kMeta, kPadding, kEnd };
  State state_ = State::kHeader;
  std::string header_;     // the header block being read
  char meta_type_ = 0;     // kMeta: 'x', 'g' or 'L'
  std::string meta_;       // kMeta: the record's bytes so far
  std::string long_name_;  // the next entry's path, from 'x' or 'L'
  bool wanted_ = false;    // kContent: the bytes go to on_content_
  int64_t left_ = 0;       // bytes left of the content or metadata
  int64_t padding_ = 0;    // zero bytes after it, to the block's end
};

// The entries of a ustar/PAX/GNU archive held whole (TarReader), with the
// contents of regular files. INVALID_ARGUMENT for a malformed archive.
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
