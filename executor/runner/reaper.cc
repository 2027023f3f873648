#include "executor/runner/reaper.h"

#include "glog/logging.h"

namespace runner {

OrphanReaper::OrphanReaper(Runner& runner, absl::Duration interval)
    : runner_(runner), interval_(interval) {
  thread_ = std::thread([this] { Loop(); });
}

OrphanReaper::~OrphanReaper() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void OrphanReaper::ReapNow() {
  absl::MutexLock lock(&mu_);
  now_ = true;
}

int OrphanReaper::rounds() const {
  absl::MutexLock lock(&mu_);
  return rounds_;
}

void OrphanReaper::Loop() {
  while (true) {
    absl::StatusOr<int> reaped = runner_.ReapOrphans();
    if (!reaped.ok()) {
      LOG(WARNING) << "orphan reaping failed, retrying in "
                   << absl::FormatDuration(interval_) << ": "
                   << reaped.status();
    } else if (*reaped > 0) {
      LOG(INFO) << "reaped " << *reaped << " orphaned containers";
    }
    absl::MutexLock lock(&mu_);
    ++rounds_;
    mu_.AwaitWithTimeout(absl::Condition(this, &OrphanReaper::WakeLocked),
                         interval_);
    if (stop_) return;
    now_ = false;
  }
}

}  // namespace runner
