#include "cli/artifact_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <random>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace cli {
namespace {

absl::Status Refused(absl::string_view path, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("artifact path \"", absl::CHexEscape(path), "\" ", why,
                   ": refused (only plain names under the directory)"));
}

bool IsLowerHexSha256(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) &&
        (c < 'a' || c > 'f')) {
      return false;
    }
  }
  return true;
}

// A name for the temporary file beside `final_name`, recognisable if a
// killed download leaves it behind, and within NAME_MAX.
std::string TemporaryName(const std::string& final_name) {
  std::random_device random;
  return absl::StrFormat(".%s.crucible-%08x%08x", final_name.substr(0, 100),
                         random(), random());
}

absl::Status WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "write");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckArtifactPath(absl::string_view path) {
  if (path.empty()) return Refused(path, "is empty");
  if (path.find('\0') != absl::string_view::npos) {
    return Refused(path, "has a NUL byte");
  }
  if (path.front() == '/') return Refused(path, "is absolute");
  for (absl::string_view name : absl::StrSplit(path, '/')) {
    if (name.empty() || name == "." || name == "..") {
      return Refused(path, "has an empty, \".\" or \"..\" name");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ArtifactFile>> ArtifactFile::Create(
    const std::string& dir, const crucible::v1::ArtifactInfo& info) {
  if (absl::Status path = CheckArtifactPath(info.path()); !path.ok()) {
    return path;
  }
  if (info.status() != crucible::v1::ARTIFACT_STATUS_COLLECTED ||
      info.size_bytes() < 0 || !IsLowerHexSha256(info.sha256())) {
    return absl::DataLossError(
        absl::StrCat("artifact ", info.path(),
                     ": the server announced no collected artifact (status ",
                     crucible::v1::ArtifactStatus_Name(info.status()), ", ",
                     info.size_bytes(), " bytes, sha256 \"",
                     absl::CHexEscape(info.sha256()), "\")"));
  }
  const std::filesystem::path final_path =
      std::filesystem::path(dir) / info.path();
  const std::filesystem::path parent = final_path.parent_path();
  std::error_code error;
  std::filesystem::create_directories(parent, error);
  if (error) {
    return absl::ErrnoToStatus(
        error.value(), absl::StrCat("cannot make directory ", parent.string(),
                                    " for ", info.path()));
  }
  // O_EXCL: a name that exists (even as a symbolic link) is never opened;
  // mode 0666 less the umask, as any file this user makes.
  for (int tries = 0;; ++tries) {
    const std::string temp =
        (parent / TemporaryName(final_path.filename().string())).string();
    const int fd =
        open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      return std::unique_ptr<ArtifactFile>(
          new ArtifactFile(info, final_path.string(), temp, fd));
    }
    if (errno != EEXIST || tries >= 10) {
      return absl::ErrnoToStatus(
          errno, absl::StrCat("cannot create a file in ", parent.string(),
                              " for ", info.path()));
    }
  }
}

ArtifactFile::~ArtifactFile() {
  if (!committed_) Discard();
}

void ArtifactFile::Discard() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  unlink(temp_path_.c_str());
}

absl::Status ArtifactFile::Append(const crucible::v1::ArtifactChunk& chunk) {
  if (committed_ || fd_ < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("artifact ", info_.path(), " is no longer being written"));
  }
  if (chunk.path() != info_.path()) {
    return absl::DataLossError(
        absl::StrCat("artifact ", info_.path(), ": a chunk of \"",
                     absl::CHexEscape(chunk.path()), "\" in its stream"));
  }
  if (chunk.offset() != written_) {
    return absl::DataLossError(
        absl::StrCat("artifact ", info_.path(), ": a chunk at offset ",
                     chunk.offset(), " where ", written_, " was expected"));
  }
  if (static_cast<int64_t>(chunk.data().size()) >
      info_.size_bytes() - written_) {
    return absl::DataLossError(absl::StrCat("artifact ", info_.path(),
                                            ": more than the announced ",
                                            info_.size_bytes(), " bytes"));
  }
  if (absl::Status wrote = WriteAll(fd_, chunk.data()); !wrote.ok()) {
    return absl::Status(wrote.code(),
                        absl::StrCat("artifact ", info_.path(), ": writing ",
                                     temp_path_, ": ", wrote.message()));
  }
  sha256_.Update(chunk.data());
  written_ += static_cast<int64_t>(chunk.data().size());
  return absl::OkStatus();
}

absl::Status ArtifactFile::Commit() {
  if (committed_ || fd_ < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("artifact ", info_.path(), " is no longer being written"));
  }
  const std::string sha256 = sha256_.HexDigest();
  if (written_ != info_.size_bytes() || sha256 != info_.sha256()) {
    Discard();
    return absl::DataLossError(
        absl::StrCat("artifact ", info_.path(), ": received ", written_,
                     " bytes with SHA-256 ", sha256,
                     ", but the server announced ", info_.size_bytes(),
                     " bytes with SHA-256 ", info_.sha256(), "; not written"));
  }
  const int fd = fd_;
  fd_ = -1;
  if (close(fd) != 0) {
    const int error = errno;
    Discard();
    return absl::ErrnoToStatus(
        error, absl::StrCat("artifact ", info_.path(), ": writing ", path_));
  }
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    const int error = errno;
    Discard();
    return absl::ErrnoToStatus(
        error,
        absl::StrCat("artifact ", info_.path(), ": cannot put it at ", path_));
  }
  committed_ = true;
  return absl::OkStatus();
}

}  // namespace cli
