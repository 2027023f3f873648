#include "executor/executor_id.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/random/distributions.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace executor {
namespace {

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::InternalError(
      absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

absl::StatusOr<std::string> ReadAll(int fd, const std::string& path) {
  std::string out;
  char buf[512];
  off_t at = 0;
  while (true) {
    const ssize_t n = pread(fd, buf, sizeof(buf), at);
    if (n < 0) return Errno("cannot read", path);
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
    at += n;
    if (out.size() > 4096) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": too long for an executor id"));
    }
  }
}

absl::Status WriteAll(int fd, const std::string& path, absl::string_view data) {
  if (ftruncate(fd, 0) != 0) return Errno("cannot truncate", path);
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = pwrite(fd, data.data() + done, data.size() - done, done);
    if (n < 0) return Errno("cannot write", path);
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) return Errno("cannot sync", path);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ExecutorIdentity> ExecutorIdentity::Resolve(
    const ExecutorIdOptions& o, absl::BitGenRef gen) {
  if (!o.id.empty()) return ExecutorIdentity(o.id, "--executor_id", true, -1);
  if (!o.id_file.empty()) {
    const int fd = open(o.id_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Errno("cannot open", o.id_file);
    // The lock dies with the process (kill -9 included), so a restart takes
    // it back; a second executor started on the same file while the first
    // runs must not, or the two would reap each other's containers.
    ExecutorIdentity identity(
        "", absl::StrCat("--executor_id_file ", o.id_file), true, fd);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) {
        return absl::FailedPreconditionError(
            absl::StrCat("--executor_id_file ", o.id_file,
                         " is in use by another running executor; two "
                         "executors must never share an id "
                         "(each would remove the other's containers): give "
                         "each its own file"));
      }
      return Errno("cannot lock", o.id_file);
    }
    absl::StatusOr<std::string> kept = ReadAll(fd, o.id_file);
    if (!kept.ok()) return kept.status();
    identity.id_ = std::string(absl::StripAsciiWhitespace(*kept));
    if (identity.id_.empty()) {
      identity.id_ =
          absl::StrFormat("%s-%012x", o.hostname,
                          absl::Uniform<uint64_t>(gen, 0, uint64_t{1} << 48));
      if (absl::Status s = WriteAll(fd, o.id_file, identity.id_ + "\n");
          !s.ok())
        return s;
      identity.source_ += " (new)";
    }
    return identity;
  }
  absl::string_view port = o.listen;
  if (size_t colon = port.rfind(':'); colon != absl::string_view::npos) {
    port = port.substr(colon + 1);
  }
  if (port.empty() || port == "0") {
    return ExecutorIdentity(
        absl::StrCat(o.hostname, "-", o.pid),
        "<hostname>-<pid> (--listen has port 0: not stable across "
        "restarts; set --executor_id or --executor_id_file)",
        false, -1);
  }
  return ExecutorIdentity(absl::StrCat(o.hostname, "-", port),
                          "<hostname>-<port>", true, -1);
}

ExecutorIdentity::ExecutorIdentity(ExecutorIdentity&& other) noexcept
    : id_(std::move(other.id_)),
      source_(std::move(other.source_)),
      stable_(other.stable_),
      fd_(std::exchange(other.fd_, -1)) {}

ExecutorIdentity& ExecutorIdentity::operator=(
    ExecutorIdentity&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    id_ = std::move(other.id_);
    source_ = std::move(other.source_);
    stable_ = other.stable_;
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

ExecutorIdentity::~ExecutorIdentity() {
  if (fd_ >= 0) close(fd_);
}

}  // namespace executor
