#include "worker/readiness.h"

#include "absl/strings/str_cat.h"

namespace worker {

std::string Readiness::Reason() const {
  if (ready()) {
    return absl::StrCat("stream to the server open; executors in rotation: ",
                        executors_in_rotation_);
  }
  if (!stream_up_ && executors_in_rotation_ == 0) {
    return "no stream to the server and no executor in rotation";
  }
  return stream_up_ ? "no executor in rotation" : "no stream to the server";
}

bool Readiness::StartPublishing() {
  if (publishing_ || ready() == published_) return false;
  publishing_ = true;
  published_ = ready();
  return true;
}

bool Readiness::PublishedOne() {
  if (ready() == published_) {
    publishing_ = false;
    return false;
  }
  published_ = ready();
  return true;
}

}  // namespace worker
