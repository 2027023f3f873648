#ifndef CRUCIBLE_SERVER_SCHEDULER_FLEET_ADMISSION_H_
#define CRUCIBLE_SERVER_SCHEDULER_FLEET_ADMISSION_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "crucible/v1/executor_service.pb.h"
#include "crucible/v1/task.pb.h"

namespace server {

struct FleetAdmissionOptions {
  // Off: every spec that passes the server's own limits is admitted.
  bool enabled = true;
  // What a worker published is still counted this long after its stream
  // ended, so that a worker restart or a short network cut does not make
  // the server refuse tasks its executors will run again in a moment.
  absl::Duration memory = absl::Minutes(10);
};

// Admission against the fleet: what the executors of the connected workers
// accept (ExecutorService.Describe, passed on by each worker in its hello
// and in ExecutorsUpdate), and whether a task spec is within it. A spec is
// admitted if at least one executor accepts all of it: its image by the
// executor's image rules, and each limit it sets within that executor's
// maxima (an unset limit takes the executor's default, always within them).
// Pure logic: no gRPC, no I/O, time from `clock`. Thread-safe.
class FleetAdmission {
 public:
  FleetAdmission(FleetAdmissionOptions options, const common::Clock& clock);

  // Stream `session` of worker `worker_id` published `executors`, replacing
  // what that worker published before (on this or an earlier stream).
  void Publish(const std::string& worker_id, uint64_t session,
               std::vector<crucible::v1::ExecutorAccepts> executors);
  // Stream `session` of `worker_id` publishes nothing (an older worker):
  // while it is counted, specs are admitted on the server's limits alone.
  void PublishUnknown(const std::string& worker_id, uint64_t session);
  // Stream `session` of `worker_id` ended. What it published is counted for
  // `memory` more, unless a newer stream of the worker replaced it.
  void Disconnected(const std::string& worker_id, uint64_t session);

  // OK if some executor counted now accepts `spec`. Otherwise
  // INVALID_ARGUMENT naming the field and the limit (the largest any
  // executor accepts, or, when each field alone is within some executor's
  // limits, the reason of each kind of executor), or UNAVAILABLE when no
  // executor is counted: then nothing can say whether the task could run.
  absl::Status Check(const crucible::v1::TaskSpec& spec) const;
  // True if some executor (or an older worker) is counted now.
  bool Known() const;

 private:
  struct Worker {
    uint64_t session = 0;
    bool unknown = false;  // publishes nothing
    std::vector<crucible::v1::ExecutorAccepts> executors;
    absl::Time gone = absl::InfiniteFuture();  // when its stream ended
  };
  bool CountedLocked(const Worker& w) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const FleetAdmissionOptions options_;
  const common::Clock& clock_;
  mutable absl::Mutex mu_;
  std::map<std::string, Worker> workers_ ABSL_GUARDED_BY(mu_);
};

// The reason `accepts` (one executor) refuses `spec`, or OK: INVALID_ARGUMENT
// naming the field, the value and the executor's limit. The same rules as
// the executor's ContainerPolicy::Plan (tests/server/fleet_admission_test.cc
// holds the two to each other).
absl::Status CheckAccepts(const crucible::v1::ExecutorAccepts& accepts,
                          const crucible::v1::TaskSpec& spec);

}  // namespace server

#endif  // CRUCIBLE_SERVER_SCHEDULER_FLEET_ADMISSION_H_
