#include "executor/engine_health.h"

#include <algorithm>
#include <utility>

#include "glog/logging.h"

namespace executor {

EngineHealth::EngineHealth(const common::Clock& clock,
                           EngineHealthOptions options)
    : clock_(clock), options_(options) {}

EngineHealth::~EngineHealth() { Stop(); }

void EngineHealth::Start(PingFn ping, ChangeFn on_change) {
  CHECK(!thread_.joinable()) << "EngineHealth::Start called twice";
  ping_ = std::move(ping);
  on_change_ = std::move(on_change);
  thread_ = std::thread([this] { Loop(); });
}

void EngineHealth::ReportUnreachable(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  report_pending_ = true;
  report_ = status;
}

void EngineHealth::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool EngineHealth::serving() const {
  absl::MutexLock lock(&mu_);
  return serving_;
}

int EngineHealth::pings() const {
  absl::MutexLock lock(&mu_);
  return pings_;
}

void EngineHealth::Loop() {
  absl::Time next_ping = clock_.Now();  // the first ping at once
  while (true) {
    bool reported = false;
    absl::Status why;
    {
      absl::MutexLock lock(&mu_);
      const absl::Duration wait = next_ping - clock_.Now();
      if (wait > absl::ZeroDuration() && !WakeLocked()) {
        mu_.AwaitWithTimeout(absl::Condition(this, &EngineHealth::WakeLocked),
                             wait);
      }
      if (stop_) return;
      if (report_pending_) {
        reported = true;
        why = report_;
        report_pending_ = false;
      }
    }
    if (reported) {
      // A failed call is as good as a failed ping for going NOT_SERVING, but
      // only a ping says the engine is back; a report never postpones the
      // next one (calls failing all the time must not starve the pings).
      Observe(false, why);
      next_ping =
          std::min(next_ping, clock_.Now() + options_.unhealthy_ping_interval);
      continue;
    }
    if (clock_.Now() < next_ping) continue;
    const absl::Status ping = ping_();
    {
      absl::MutexLock lock(&mu_);
      ++pings_;
    }
    Observe(ping.ok(), ping);
    next_ping = clock_.Now() + (ping.ok() ? options_.ping_interval
                                          : options_.unhealthy_ping_interval);
  }
}

void EngineHealth::Observe(bool ok, const absl::Status& why) {
  bool changed = false;
  bool after_outage = false;
  absl::Duration down = absl::ZeroDuration();
  {
    absl::MutexLock lock(&mu_);
    if (ok) {
      if (serving_) return;
      changed = true;
      after_outage = failure_seen_;
      if (failure_seen_) down = clock_.Now() - down_since_;
      serving_ = true;
    } else {
      const bool first_failure = !failure_seen_ && !serving_;
      failure_seen_ = true;
      // Still down: said once when it started (also at the start, so that
      // the cause is known).
      if (!serving_ && !first_failure) {
        VLOG(1) << "container engine still unreachable: " << why;
        return;
      }
      changed = true;
      serving_ = false;
      down_since_ = clock_.Now();
    }
  }
  if (!changed) return;
  if (ok && after_outage) {
    LOG(INFO) << "container engine reachable again after "
              << absl::FormatDuration(down) << "; SERVING";
  } else if (ok) {
    LOG(INFO) << "container engine reachable; SERVING";
  } else {
    LOG(ERROR) << "container engine unreachable, NOT_SERVING until it answers "
                  "a ping (every "
               << absl::FormatDuration(options_.unhealthy_ping_interval)
               << "): " << why;
  }
  on_change_(ok, after_outage, ok ? absl::OkStatus() : why);
}

}  // namespace executor
