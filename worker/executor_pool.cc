#include "worker/executor_pool.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/random/distributions.h"
#include "absl/status/status.h"

namespace worker {

ExecutorPool::ExecutorPool(PoolOptions options, const common::Clock& clock,
                           absl::BitGenRef gen)
    : options_(options), clock_(clock), gen_(gen) {}

bool ExecutorPool::SetListed(const std::vector<std::string>& addresses) {
  const std::set<std::string> listed(addresses.begin(), addresses.end());
  absl::MutexLock lock(&mu_);
  bool changed = false;
  for (const std::string& a : listed) {
    auto [it, added] = entries_.try_emplace(a);
    if (!added && !it->second.listed) {
      // Back in the list: check it again before it gets work.
      it->second = Entry{.in_flight = it->second.in_flight};
      changed = true;
    }
    changed = changed || added;
  }
  std::vector<std::string> gone;
  for (auto& [address, e] : entries_) {
    if (listed.contains(address) || !e.listed) continue;
    e.listed = false;
    e.healthy = false;
    changed = true;
    gone.push_back(address);
  }
  for (const std::string& a : gone) ForgetIfUnusedLocked(a);
  return changed;
}

std::vector<std::string> ExecutorPool::DueChecks() {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  std::vector<std::string> due;
  for (auto& [address, e] : entries_) {
    if (!e.listed || e.checking || e.next_check > now) continue;
    e.checking = true;
    due.push_back(address);
  }
  return due;
}

bool ExecutorPool::CheckResult(const std::string& address, bool serving) {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(address);
  if (it == entries_.end()) return false;
  Entry& e = it->second;
  e.checking = false;
  if (!e.listed) return false;
  const int before = FreeSlotsLocked();
  if (serving && !e.healthy && e.was_in_rotation) {
    // Back from an outage: only after a stable window of SERVING checks.
    if (e.serving_since == absl::InfiniteFuture()) e.serving_since = now;
    const absl::Duration left =
        options_.rejoin_window - (now - e.serving_since);
    if (left > absl::ZeroDuration()) {
      e.failed_checks =
          0;  // so a failure in the window backs off from the start
      e.next_check = now + std::min(options_.retry_initial, left);
      return false;
    }
  }
  if (serving) {
    e.healthy = true;
    e.was_in_rotation = true;
    e.serving_since = absl::InfiniteFuture();
    e.failed_checks = 0;
    e.failed_runs = 0;
    e.next_check = now + options_.probe_interval;
  } else {
    MarkUnhealthyLocked(e);
  }
  return FreeSlotsLocked() != before;
}

bool ExecutorPool::InRotation(const std::string& address) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(address);
  return it != entries_.end() && it->second.listed && it->second.healthy;
}

void ExecutorPool::MarkUnhealthyLocked(Entry& e) {
  e.healthy = false;
  e.serving_since = absl::InfiniteFuture();
  // Backoff: retry_initial * 2^(failed checks so far), capped.
  const double factor = std::pow(2.0, std::min(e.failed_checks, 30));
  const absl::Duration delay =
      std::min(options_.retry_initial * factor, options_.retry_max);
  ++e.failed_checks;
  e.next_check = clock_.Now() + delay;
}

absl::StatusOr<std::string> ExecutorPool::Acquire() {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  int best_free = 0;
  std::vector<std::map<std::string, Entry>::iterator> best;
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    const Entry& e = it->second;
    if (!e.listed || !e.healthy || e.full_until > now) continue;
    const int free = options_.slots_per_executor - e.in_flight;
    if (free <= 0 || free < best_free) continue;
    if (free > best_free) best.clear();
    best_free = free;
    best.push_back(it);
  }
  if (best.empty())
    return absl::UnavailableError("no executor in rotation has a free slot");
  const size_t pick =
      best.size() == 1 ? 0 : absl::Uniform<size_t>(gen_, 0, best.size());
  ++best[pick]->second.in_flight;
  return best[pick]->first;
}

void ExecutorPool::Release(const std::string& address, bool reached) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(address);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  if (e.in_flight > 0) --e.in_flight;
  if (reached) {
    e.failed_runs = 0;
  } else if (e.listed) {
    ++e.failed_runs;
    if (e.failed_runs >= options_.failures_to_eject) {
      if (e.healthy) MarkUnhealthyLocked(e);
    } else if (!e.checking) {
      e.next_check = clock_.Now();  // check it soon: it may be gone
    }
  }
  ForgetIfUnusedLocked(address);
}

void ExecutorPool::TakeOut(const std::string& address) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(address);
  if (it == entries_.end() || !it->second.healthy) return;
  MarkUnhealthyLocked(it->second);
}

void ExecutorPool::MarkFull(const std::string& address) {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(address);
  if (it != entries_.end()) it->second.full_until = now + options_.full_backoff;
}

void ExecutorPool::ForgetIfUnusedLocked(const std::string& address) {
  auto it = entries_.find(address);
  if (it != entries_.end() && !it->second.listed && it->second.in_flight == 0) {
    entries_.erase(it);
  }
}

int ExecutorPool::FreeSlotsLocked() const {
  int free = 0;
  for (const auto& [address, e] : entries_) {
    if (e.listed && e.healthy)
      free += std::max(0, options_.slots_per_executor - e.in_flight);
  }
  return free;
}

int ExecutorPool::InRotationCount() const {
  absl::MutexLock lock(&mu_);
  int n = 0;
  for (const auto& [address, e] : entries_) n += e.listed && e.healthy ? 1 : 0;
  return n;
}

int ExecutorPool::FreeSlots() const {
  absl::MutexLock lock(&mu_);
  return FreeSlotsLocked();
}

int ExecutorPool::InFlight(const std::string& address) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(address);
  return it == entries_.end() ? 0 : it->second.in_flight;
}

std::vector<ExecutorView> ExecutorPool::Snapshot() const {
  absl::MutexLock lock(&mu_);
  std::vector<ExecutorView> out;
  for (const auto& [address, e] : entries_) {
    out.push_back(ExecutorView{address, e.listed, e.healthy, e.in_flight,
                               e.failed_checks});
  }
  return out;
}

}  // namespace worker
