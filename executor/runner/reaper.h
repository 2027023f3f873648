#ifndef CRUCIBLE_EXECUTOR_RUNNER_REAPER_H_
#define CRUCIBLE_EXECUTOR_RUNNER_REAPER_H_

#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "executor/runner/runner.h"

namespace runner {

// Removes the executor's orphaned containers (Runner::ReapOrphans) once at
// construction and then every `interval`, on a thread it owns, until it is
// destroyed; ReapNow asks for a round at once (e.g. when the engine is back
// after an outage, so containers of runs lost in it do not run on). A
// failed round (engine unreachable) is logged and retried at the next one.
// Thread-safe; the destructor stops and joins the thread.
class OrphanReaper {
 public:
  OrphanReaper(Runner& runner, absl::Duration interval);
  ~OrphanReaper();
  OrphanReaper(const OrphanReaper&) = delete;
  OrphanReaper& operator=(const OrphanReaper&) = delete;

  // Starts a round now on the reaper's thread (or right after the one in
  // progress); requests made before it starts are one round. Never blocks.
  void ReapNow();
  // Rounds finished so far, failed ones included.
  int rounds() const;

 private:
  void Loop();
  bool WakeLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stop_ || now_;
  }

  Runner& runner_;
  const absl::Duration interval_;
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool now_ ABSL_GUARDED_BY(mu_) = false;
  int rounds_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace runner

#endif  // CRUCIBLE_EXECUTOR_RUNNER_REAPER_H_
