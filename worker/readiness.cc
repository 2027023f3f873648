#include "worker/readiness.h"

#include "absl/strings/str_cat.h"

namespace worker {

std::string Readiness::Reason() const {
  if (ready()) {
    return absl::StrCat("stream to the server open; executors in rotation: ",
                        executors_in_rotation_);
  }
  if (stream_up_) return "no executor in rotation";
  return absl::StrCat(
      "no stream to the server",
      executors_in_rotation_ == 0 ? " and no executor in rotation" : "",
      stream_error_.empty() ? "" : absl::StrCat(" (", stream_error_, ")"));
}

bool Readiness::StartPublishing() {
  if (publishing_ || NotReadyReason() == published_) return false;
  publishing_ = true;
  published_ = NotReadyReason();
  return true;
}

bool Readiness::PublishedOne() {
  if (NotReadyReason() == published_) {
    publishing_ = false;
    return false;
  }
  published_ = NotReadyReason();
  return true;
}

}  // namespace worker
