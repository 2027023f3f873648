#ifndef CRUCIBLE_EXECUTOR_RUNNER_REAPER_H_
#define CRUCIBLE_EXECUTOR_RUNNER_REAPER_H_

#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "executor/runner/runner.h"

namespace runner {

// Removes the executor's orphaned containers (Runner::ReapOrphans) once at
// construction and then every `interval`, on a thread it owns, until it is
// destroyed. A failed round (engine unreachable) is logged and retried at
// the next one. Thread-safe: it has no methods but the destructor, which
// stops and joins the thread.
class OrphanReaper {
 public:
  OrphanReaper(Runner& runner, absl::Duration interval);
  ~OrphanReaper();
  OrphanReaper(const OrphanReaper&) = delete;
  OrphanReaper& operator=(const OrphanReaper&) = delete;

 private:
  void Loop();

  Runner& runner_;
  const absl::Duration interval_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace runner

#endif  // CRUCIBLE_EXECUTOR_RUNNER_REAPER_H_
