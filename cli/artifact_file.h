#ifndef CRUCIBLE_CLI_ARTIFACT_FILE_H_
#define CRUCIBLE_CLI_ARTIFACT_FILE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/sha256.h"
#include "crucible/v1/task.pb.h"

namespace cli {

// OK if `path` names a file under a directory of ours: relative, plain
// names joined by '/', none of them empty, "." or "..", no NUL byte.
// INVALID_ARGUMENT saying what is wrong otherwise. The server checks
// artifact paths too, but the client does not trust it with its own
// filesystem. Pure.
absl::Status CheckArtifactPath(absl::string_view path);

// One artifact being written to DIR/PATH from a GetArtifact stream. The
// bytes go to a temporary file beside the destination, hashed as they come,
// and are renamed into place only once their size and SHA-256 match what
// the stream's first message announced; a file that is not committed is
// removed, so a failed download leaves nothing at DIR/PATH that was not
// there before. Confined to one thread.
class ArtifactFile {
 public:
  // `info` is the stream's first message (a COLLECTED artifact, its size
  // and lowercase hex SHA-256): checks its path (CheckArtifactPath), makes
  // DIR/PATH's missing parent directories and opens the temporary file.
  // INVALID_ARGUMENT for a refused path, DATA_LOSS for an info that is not
  // of a collected artifact, the errno's code if the filesystem says no.
  static absl::StatusOr<std::unique_ptr<ArtifactFile>> Create(
      const std::string& dir, const crucible::v1::ArtifactInfo& info);
  // Removes the temporary file unless committed.
  ~ArtifactFile();
  ArtifactFile(const ArtifactFile&) = delete;
  ArtifactFile& operator=(const ArtifactFile&) = delete;

  // Writes the chunk's bytes. DATA_LOSS if it names another path, does not
  // start where the previous one ended, or goes past the announced size.
  absl::Status Append(const crucible::v1::ArtifactChunk& chunk);
  // Renames the temporary file to DIR/PATH (replacing a file there).
  // DATA_LOSS, and the temporary file removed, if the bytes written are not
  // the announced size or SHA-256.
  absl::Status Commit();

  // DIR/PATH.
  const std::string& path() const { return path_; }
  const crucible::v1::ArtifactInfo& info() const { return info_; }

 private:
  ArtifactFile(crucible::v1::ArtifactInfo info, std::string path,
               std::string temp_path, int fd)
      : info_(std::move(info)),
        path_(std::move(path)),
        temp_path_(std::move(temp_path)),
        fd_(fd) {}
  // Closes the file and removes it.
  void Discard();

  const crucible::v1::ArtifactInfo info_;
  const std::string path_;
  const std::string temp_path_;
  int fd_;  // -1 once closed
  bool committed_ = false;
  int64_t written_ = 0;
  // SHA-256 of the bytes written, fed as they come.
  common::Sha256 sha256_;
};

}  // namespace cli

#endif  // CRUCIBLE_CLI_ARTIFACT_FILE_H_
