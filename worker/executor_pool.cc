#include "worker/executor_pool.h"

#include "absl/status/status.h"

namespace worker {

ExecutorPool::ExecutorPool(std::vector<std::string> addresses) {
  for (std::string& a : addresses) entries_.push_back(Entry{std::move(a), 0});
}

absl::StatusOr<std::string> ExecutorPool::Acquire() {
  absl::MutexLock lock(&mu_);
  if (entries_.empty()) return absl::FailedPreconditionError("no executors configured");
  // Scan from next_ so that equally busy executors take turns.
  size_t best = next_ % entries_.size();
  for (size_t i = 1; i < entries_.size(); ++i) {
    size_t j = (next_ + i) % entries_.size();
    if (entries_[j].in_flight < entries_[best].in_flight) best = j;
  }
  next_ = best + 1;
  ++entries_[best].in_flight;
  return entries_[best].address;
}

void ExecutorPool::Release(const std::string& address) {
  absl::MutexLock lock(&mu_);
  for (Entry& e : entries_) {
    if (e.address == address && e.in_flight > 0) {
      --e.in_flight;
      return;
    }
  }
}

int ExecutorPool::InFlight(const std::string& address) const {
  absl::MutexLock lock(&mu_);
  for (const Entry& e : entries_) {
    if (e.address == address) return e.in_flight;
  }
  return 0;
}

}  // namespace worker
