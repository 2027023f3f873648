#ifndef CRUCIBLE_WORKER_EXECUTOR_FLEET_H_
#define CRUCIBLE_WORKER_EXECUTOR_FLEET_H_

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "crucible/v1/executor_service.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "worker/channel.h"
#include "worker/discovery.h"
#include "worker/executor_pool.h"

namespace worker {

struct FleetOptions {
  // Where the executors are.
  DiscoveryOptions discovery;
  // Slots, health-check intervals and backoff.
  PoolOptions pool;
  // How often DNS and the address file are looked at again.
  absl::Duration resolve_interval = absl::Seconds(5);
  // Deadline of one grpc.health.v1.Health/Check.
  absl::Duration check_deadline = absl::Seconds(1);
  // How often due checks are looked for (the checks' own pace is in `pool`).
  absl::Duration tick = absl::Milliseconds(100);
  // Where crucible_worker_executor_rotation_changes_total goes; null: the
  // process's common::DefaultMetricsRegistry(). Must outlive the fleet.
  common::MetricsRegistry* metrics = nullptr;
};

// Keeps the ExecutorPool current: re-resolves the executors' addresses on
// a thread of its own (a DNS lookup may hang for many seconds), and checks
// each executor with the standard gRPC health protocol
// (grpc.health.v1.Health/Check, service ""), from another thread, so checks
// go on meanwhile; checks run asynchronously so a slow executor does not
// hold up the others. The channels of executors discovery no longer lists
// are dropped.
// An executor that answers SERVING is also asked what it accepts
// (ExecutorService.Describe) when it enters rotation, and that is kept while
// discovery lists it, in rotation or not. `on_change` runs (on any thread,
// without locks held) when the free slots in rotation or Accepts() may have
// changed. Thread-safe.
class ExecutorFleet {
 public:
  // `channel`: how the channels to the executors are made. `on_known`, if
  // set, gets the addresses the pool knows after every resolve (on the
  // resolving thread, without locks held), so that other holders of
  // channels can drop those of executors that are gone.
  ExecutorFleet(FleetOptions options, ChannelOptions channel,
                std::function<void()> on_change,
                std::function<void(const std::set<std::string>& known)>
                    on_known = nullptr);
  ~ExecutorFleet();

  // Resolves once, checks every executor once (waiting up to
  // check_deadline for the answers), then starts the thread.
  void Start();
  // Stops the threads and waits for the checks in flight (and for a DNS
  // lookup in progress). Idempotent.
  void Stop();

  ExecutorPool& pool() { return pool_; }
  const ExecutorPool& pool() const { return pool_; }
  // What each listed executor that has answered Describe accepts, in the
  // order of their addresses.
  std::vector<crucible::v1::ExecutorAccepts> Accepts() const;
  // The addresses the pool knows: listed, or still running something.
  std::set<std::string> Known() const;
  // The addresses the fleet holds a channel to.
  std::set<std::string> ChannelsForTest() const;

 private:
  // One channel per executor address, with its two stubs.
  struct Stubs {
    std::unique_ptr<grpc::health::v1::Health::Stub> health;
    std::unique_ptr<crucible::v1::ExecutorService::Stub> executor;
  };
  void Loop();
  void ResolveLoop();
  std::shared_ptr<Stubs> StubsLocked(const std::string& address)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartCheck(const std::string& address);
  void StartDescribe(const std::string& address);
  // Forgets what executors no longer listed accept, and drops the channels
  // of those the pool forgot.
  void ForgetUnlisted();

  const FleetOptions options_;
  const ChannelOptions channel_;
  const std::function<void()> on_change_;
  const std::function<void(const std::set<std::string>&)> on_known_;
  // An executor entered (in_) or left (out_) rotation.
  common::Counter& rotation_in_;
  common::Counter& rotation_out_;
  absl::BitGen gen_;  // used only under the pool's lock
  ExecutorPool pool_;
  Discovery discovery_;   // Start's, then resolver_'s
  std::thread thread_;    // health checks
  std::thread resolver_;  // discovery

  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int pending_checks_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, std::shared_ptr<Stubs>> stubs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, crucible::v1::ExecutorAccepts> accepts_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace worker

#endif  // CRUCIBLE_WORKER_EXECUTOR_FLEET_H_
