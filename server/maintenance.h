#ifndef CRUCIBLE_SERVER_MAINTENANCE_H_
#define CRUCIBLE_SERVER_MAINTENANCE_H_

#include <atomic>
#include <functional>
#include <string>

#include "absl/time/time.h"
#include "common/grpc_server.h"
#include "server/periodic.h"
#include "server/scheduler/scheduler.h"

namespace server {

struct MaintenanceOptions {
  // How often the timer runs (expired leases, due tasks, the store's health).
  absl::Duration interval = absl::Seconds(1);
  // Terminal tasks purged per run at most.
  int purge_limit = 1000;
  // The health entry that follows the store's writes (NOT_SERVING while the
  // disk is full).
  std::string store_health_service = "crucible.store";
};

// The server's timer, on a thread of its own: every interval it lapses
// expired leases and hands out due tasks, purges tasks past retention, and
// applies the store-failure policy:
// - a full disk degrades, it does not stop the server: the store health
//   entry says NOT_SERVING until writes succeed again (the readiness entry
//   "" stays SERVING, or a liveness probe would restart the server in a
//   loop), and nothing is purged meanwhile;
// - any other failed commit means memory ran ahead of the store for good:
//   `stop` is called once, so a restart rebuilds from the store.
// Thread-safe; the destructor stops and joins the thread.
class Maintenance {
 public:
  // `scheduler` and `health` (may be null) must outlive this.
  Maintenance(Scheduler& scheduler, common::GrpcServer* health,
              const MaintenanceOptions& options, std::function<void()> stop);

  // Whether the store failed for good (the process should exit non-zero).
  bool store_failed() const { return store_failed_.load(); }

 private:
  void RunOnce();

  Scheduler& scheduler_;
  common::GrpcServer* const health_;
  const MaintenanceOptions options_;
  const std::function<void()> stop_;
  std::atomic<bool> store_failed_{false};
  bool store_full_ = false;  // the timer thread's alone
  PeriodicRunner timer_;     // last: its thread uses the fields above
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_MAINTENANCE_H_
