#ifndef CRUCIBLE_WORKER_WORKER_H_
#define CRUCIBLE_WORKER_WORKER_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "crucible/v1/queue_service.grpc.pb.h"
#include "worker/backoff.h"
#include "worker/channel.h"
#include "worker/core/worker_core.h"
#include "worker/executor_client.h"
#include "worker/executor_fleet.h"
#include "worker/protocol.h"
#include "worker/readiness.h"

namespace worker {

struct WorkerOptions {
  // host:port of the server's QueueService.
  std::string server_address = "127.0.0.1:8080";
  // The executors: where they are, their slots, how they are checked.
  FleetOptions fleet;
  // Placement, credits, heartbeats, run deadlines, back-pressure: the
  // core's (worker/core/worker_core.h), which this adapter drives.
  CoreOptions core;
  // On Stop: how long cancelled runs get to end and their reports to be
  // written before the stream is cut.
  absl::Duration stop_grace = absl::Seconds(8);
  // Delays between reconnections.
  BackoffOptions reconnect_backoff;
  // Keepalives, reconnection and re-resolution of every channel, to the
  // server and to the executors. Its max_reconnect_backoff bounds the
  // channel's own attempts to reach a server that is down, so a restarted
  // server is found within about that plus reconnect_backoff.max.
  ChannelOptions channel;
  // With TLS (channel.credentials): the names the certificates of the
  // server and of every executor must carry (--server_tls_name,
  // --executor_tls_name); empty: the host of the address dialled.
  std::string server_tls_name;
  std::string executor_tls_name;
  // A stream that lasted at least this long resets the backoff.
  absl::Duration backoff_reset_after = absl::Seconds(10);
  // Deadline of ExecutorService.Cancel.
  absl::Duration cancel_deadline = absl::Seconds(5);
};

// The queue worker's gRPC adapter: keeps one QueueService.Connect stream to
// the server open (reconnecting with capped, jittered exponential backoff),
// hands what the server sends to the WorkerCore (worker/core/), writes what
// the core queues, and runs the core's runs on executors (ExecutorClient,
// a thread per run). What the worker decides (placement, credits,
// heartbeats, drain, readiness) is the core's; see WorkerCore. Runs outlive
// a lost stream: after a reconnect the worker resumes heartbeats and
// reports for them under their leases (the server refuses the ones whose
// lease lapsed, and those runs are cancelled).
//
// Readiness (see Readiness): ready while a stream to the server is open
// (hello sent) and at least one executor is in rotation; each change is
// logged with its reason and handed to `on_readiness`.
//
// Threads, all owned and joined: the connection loop (which reads the
// stream), one writer per stream, a ticker (the core's time-driven
// decisions), one thread per run, and the fleet's. Thread-safe.
class Worker {
 public:
  // Called with the new readiness and why on each change (first with true,
  // once ready; again with false when the reason why not changes), on any
  // of the worker's threads, without locks held; calls do not overlap, and
  // the last one carries the current state.
  using ReadinessCallback = WorkerCore::ReadinessCallback;

  explicit Worker(WorkerOptions options,
                  ReadinessCallback on_readiness = nullptr);
  ~Worker();

  // Finds and checks the executors, then starts the connection loop.
  void Start();
  // Graceful end: grants no more credits and refuses new assignments; the
  // running tasks get up to `grace` to finish; then Stop(). Returns after.
  void Drain(absl::Duration grace);
  // Cancels the running tasks, reports them as UNAVAILABLE (so the server
  // retries them at once), half-closes the stream once they are reported
  // (bounded by stop_grace), and joins every thread. Idempotent.
  void Stop();

  // Runs held now (placed or waiting for an executor), for tests.
  int RunsForTest() const { return core_.runs(); }
  bool DrainingForTest() const { return core_.draining(); }
  // Waits up to `timeout` for Drain to have begun.
  bool AwaitDrainingForTest(absl::Duration timeout) {
    return core_.AwaitDraining(timeout);
  }
  // Whether the worker is ready now, and why (or why not).
  bool ReadyForTest(std::string* reason = nullptr) const {
    return core_.ready(reason);
  }
  ExecutorPool& PoolForTest() { return fleet_.pool(); }

 private:
  struct Connection;
  // Runs the core's runs on executors, a thread each (worker_runs.cc).
  class Launcher final : public RunLauncher {
   public:
    explicit Launcher(ExecutorClient& executors) : executors_(executors) {}
    // The core that gets the runs' events; set once, before any Launch.
    void Bind(WorkerCore& core) { core_ = &core; }
    void Launch(const std::string& executor,
                const crucible::v1::RunRequest& request,
                absl::Duration deadline) override;
    void CancelCall(const std::string& lease) override;
    void CancelOnExecutor(const std::string& executor,
                          const std::string& lease) override;
    // Joins the threads of the runs that ended.
    void ReapFinished();
    // Waits for every run thread to end, then joins them.
    void JoinAll();

   private:
    // One lease's call handle, shared by its attempts at placement.
    struct Entry {
      std::shared_ptr<RunCall> call = std::make_shared<RunCall>();
      int threads = 0;
    };
    void RunOne(uint64_t id, std::string executor,
                crucible::v1::RunRequest request, absl::Duration deadline,
                std::shared_ptr<RunCall> call);
    std::shared_ptr<RunCall> CallLocked(const std::string& lease)
        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

    ExecutorClient& executors_;
    WorkerCore* core_ = nullptr;
    absl::Mutex mu_;
    uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
    std::map<std::string, Entry> calls_ ABSL_GUARDED_BY(mu_);
    std::map<uint64_t, std::thread> threads_ ABSL_GUARDED_BY(mu_);
    std::vector<std::thread> finished_ ABSL_GUARDED_BY(mu_);  // to join
  };

  // worker.cc: the stream.
  void Loop();
  // `going_away`: the server said it is going away (a clean shutdown).
  absl::Status Serve(bool& going_away);
  void WriterLoop(Connection& conn);
  void Handle(const crucible::v1::ConnectResponse& msg);
  void TickerLoop();

  const WorkerOptions options_;
  std::unique_ptr<crucible::v1::QueueService::Stub> stub_;
  ExecutorClient executors_;
  Launcher launcher_;
  ExecutorFleet fleet_;
  WorkerCore core_;
  std::thread loop_;
  std::thread ticker_;

  mutable absl::Mutex mu_;
  Connection* conn_ ABSL_GUARDED_BY(mu_) = nullptr;  // the open stream, if any
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;  // Stop() began: no reconnecting
  // Stop's grace is over: streams are cut, the ticker ends.
  bool cut_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace worker

#endif  // CRUCIBLE_WORKER_WORKER_H_
