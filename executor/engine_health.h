#ifndef CRUCIBLE_EXECUTOR_ENGINE_HEALTH_H_
#define CRUCIBLE_EXECUTOR_ENGINE_HEALTH_H_

#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace executor {

struct EngineHealthOptions {
  // While the engine answers, how often it is pinged (--ping_interval).
  absl::Duration ping_interval = absl::Seconds(5);
  // While it does not, how often it is pinged, so that its return is seen
  // soon (--unhealthy_ping_interval).
  absl::Duration unhealthy_ping_interval = absl::Seconds(1);
};

// Keeps the executor's health status in step with its container engine.
// The engine is pinged on a thread this object owns: every ping_interval
// while it answers, every unhealthy_ping_interval while it does not. Any
// engine call that finds the engine unreachable reports it
// (ReportUnreachable), which makes the status NOT_SERVING at once instead
// of at the next ping; only a successful ping makes it SERVING again.
// Status changes are delivered to `on_change` on the owned thread, one at a
// time and in order, and so is the first failure of an engine unreachable
// from the start (NOT_SERVING then, with its cause). Thread-safe. Waits use
// real time (common::Clock cannot wait); deadlines and the outage's length are
// read from the clock.
class EngineHealth {
 public:
  // One ping of the engine; OK if it answered.
  using PingFn = std::function<absl::Status()>;
  // The status changed to `serving`. `after_outage` is true when SERVING
  // follows a failure seen since Start (false for the first SERVING of an
  // executor whose engine answered from the start). `why`: the failure
  // that made it NOT_SERVING; OK when serving.
  using ChangeFn = std::function<void(bool serving, bool after_outage,
                                      const absl::Status& why)>;

  EngineHealth(const common::Clock& clock, EngineHealthOptions options);
  // Stop().
  ~EngineHealth();
  EngineHealth(const EngineHealth&) = delete;
  EngineHealth& operator=(const EngineHealth&) = delete;

  // Starts the thread, which pings at once. The status is NOT_SERVING until
  // a ping succeeds (on_change is called for that initial status only once
  // a failure says why). Call once.
  void Start(PingFn ping, ChangeFn on_change);
  // An engine call failed because the engine or its proxy could not be
  // reached. Never blocks; safe to call before Start and after Stop (then it
  // only counts).
  void ReportUnreachable(const absl::Status& status);
  // Stops and joins the thread; no on_change runs after it returns.
  // Idempotent.
  void Stop();

  // The status last delivered (false before the first successful ping).
  bool serving() const;
  // Pings done so far.
  int pings() const;

 private:
  void Loop();
  // Applies a ping's outcome or a report; calls on_change_ outside the lock.
  void Observe(bool ok, const absl::Status& why);
  bool WakeLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stop_ || report_pending_;
  }

  const common::Clock& clock_;
  const EngineHealthOptions options_;
  PingFn ping_;         // set by Start, then read only by the thread
  ChangeFn on_change_;  // likewise
  std::thread thread_;

  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool report_pending_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status report_ ABSL_GUARDED_BY(mu_);
  bool serving_ ABSL_GUARDED_BY(mu_) = false;
  bool failure_seen_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time down_since_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int pings_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace executor

#endif  // CRUCIBLE_EXECUTOR_ENGINE_HEALTH_H_
