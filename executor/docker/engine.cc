#include "executor/docker/engine.h"

#include "absl/strings/str_cat.h"

namespace docker {

absl::StatusOr<std::string> Engine::GetArchive(absl::string_view id,
                                               absl::string_view path,
                                               int64_t max_bytes) {
  std::string out;
  bool over = false;
  absl::Status s = StreamArchive(id, path, [&](absl::string_view bytes) {
    if (static_cast<int64_t>(out.size() + bytes.size()) > max_bytes) {
      over = true;
      return false;
    }
    out.append(bytes.data(), bytes.size());
    return true;
  });
  if (over) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "archive of ", path, " is larger than ", max_bytes, " bytes"));
  }
  if (!s.ok()) return s;
  return out;
}

}  // namespace docker
