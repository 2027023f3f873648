#include "executor/runner/reaper.h"

#include "glog/logging.h"

namespace runner {

OrphanReaper::OrphanReaper(Runner& runner, absl::Duration interval)
    : runner_(runner), interval_(interval) {
  thread_ = std::thread([this] { Loop(); });
}

OrphanReaper::~OrphanReaper() {
  stop_.Notify();
  thread_.join();
}

void OrphanReaper::Loop() {
  do {
    absl::StatusOr<int> reaped = runner_.ReapOrphans();
    if (!reaped.ok()) {
      LOG(WARNING) << "orphan reaping failed, retrying in "
                   << absl::FormatDuration(interval_) << ": "
                   << reaped.status();
    } else if (*reaped > 0) {
      LOG(INFO) << "reaped " << *reaped << " orphaned containers";
    }
  } while (!stop_.WaitForNotificationWithTimeout(interval_));
}

}  // namespace runner
