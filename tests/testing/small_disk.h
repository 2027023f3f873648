#ifndef CRUCIBLE_TESTS_TESTING_SMALL_DISK_H_
#define CRUCIBLE_TESTS_TESTING_SMALL_DISK_H_

#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace testing_util {

// A real small filesystem for tests of a full disk: a tmpfs of a given size
// mounted on a fresh directory (needs root, as CI and these machines run),
// which Fill() fills to the last byte with a filler file and Free() empties
// again. Unmounted (lazily, so it cannot fail for a busy file) and removed
// when destroyed. Confined to one thread.
class SmallDisk {
 public:
  // Mounts a tmpfs of `bytes` on `dir` (created; must not exist or be
  // empty). FAILED_PRECONDITION if mount(2) is refused.
  static absl::StatusOr<std::unique_ptr<SmallDisk>> Mount(
      const std::string& dir, int64_t bytes) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
      return absl::InternalError(
          absl::StrCat("mkdir ", dir, ": ", ec.message()));
    const std::string data = absl::StrCat("size=", bytes, ",mode=0755");
    if (mount("crucible-test", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
              data.c_str()) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot mount a tmpfs on ", dir, ": ", strerror(errno),
                       " (needs root)"));
    }
    return std::unique_ptr<SmallDisk>(new SmallDisk(dir));
  }
  ~SmallDisk() {
    umount2(dir_.c_str(), MNT_DETACH);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;

  const std::string& dir() const { return dir_; }
  std::string filler() const { return dir_ + "/filler"; }

  // Writes the filler until the disk refuses (ENOSPC). Returns its size.
  absl::StatusOr<int64_t> Fill() {
    int fd =
        open(filler().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
      return absl::InternalError(
          absl::StrCat("open filler: ", strerror(errno)));
    static const char kZeros[64 << 10] = {};
    int64_t total = 0;
    while (true) {
      ssize_t n = write(fd, kZeros, sizeof(kZeros));
      if (n > 0) {
        total += n;
        continue;
      }
      int err = errno;
      close(fd);
      if (n < 0 && err == ENOSPC) return total;
      return absl::InternalError(absl::StrCat("write filler: ", strerror(err)));
    }
  }
  // Deletes the filler: the space is back.
  absl::Status Free() {
    if (unlink(filler().c_str()) != 0 && errno != ENOENT) {
      return absl::InternalError(
          absl::StrCat("unlink filler: ", strerror(errno)));
    }
    return absl::OkStatus();
  }
  int64_t FreeBytes() const {
    struct statvfs st;
    if (statvfs(dir_.c_str(), &st) != 0) return -1;
    return static_cast<int64_t>(st.f_bavail) *
           static_cast<int64_t>(st.f_frsize);
  }

 private:
  explicit SmallDisk(std::string dir) : dir_(std::move(dir)) {}
  const std::string dir_;
};

}  // namespace testing_util

// In a test body, with `disk_or` an absl::StatusOr<std::unique_ptr<SmallDisk>>:
// fail in CI (CI=true), skip elsewhere, when no tmpfs could be mounted.
#define REQUIRE_SMALL_DISK(disk_or)                     \
  do {                                                  \
    if (!(disk_or).ok()) {                              \
      const char* ci = getenv("CI");                    \
      if (ci != nullptr && std::string(ci) == "true") { \
        FAIL() << (disk_or).status();                   \
      }                                                 \
      GTEST_SKIP() << (disk_or).status();               \
    }                                                   \
  } while (0)

#endif  // CRUCIBLE_TESTS_TESTING_SMALL_DISK_H_
