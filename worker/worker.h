#ifndef CRUCIBLE_WORKER_WORKER_H_
#define CRUCIBLE_WORKER_WORKER_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "crucible/v1/queue_service.grpc.pb.h"
#include "worker/backoff.h"
#include "worker/channel.h"
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
  // Name sent in the hello; the server knows the worker by it.
  std::string worker_id = "worker";
  // The most tasks at once over all executors; 0: as many as the executors
  // in rotation have slots.
  int max_tasks = 0;
  // How often the running leases are named in a heartbeat.
  absl::Duration heartbeat_interval = absl::Seconds(5);
  // An assignment that finds no free executor slot waits this long for one
  // (its lease kept alive), then is given back as UNAVAILABLE.
  absl::Duration placement_timeout = absl::Seconds(30);
  // Deadline of a Run call: the spec's timeout plus this margin (container
  // start and removal, output draining)...
  absl::Duration run_deadline_margin = absl::Minutes(2);
  // ...or this when the spec has no timeout (the executor applies its
  // default, which the worker does not know). A guard against a stuck
  // stream, not a task limit.
  absl::Duration run_deadline_without_timeout = absl::Hours(24);
  // Reports queued for the server beyond this many bytes make the run
  // threads wait (back-pressure to the executors' streams).
  size_t max_outbound_bytes = 16 << 20;
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
  // A stream that lasted at least this long resets the backoff.
  absl::Duration backoff_reset_after = absl::Seconds(10);
  // Deadline of ExecutorService.Cancel.
  absl::Duration cancel_deadline = absl::Seconds(5);
};

// The queue worker: keeps one QueueService.Connect stream to the server
// open (reconnecting with capped, jittered exponential backoff), runs each
// assignment on the executor in rotation with the most free slots, relays
// its events, output and result, and keeps its lease alive with heartbeats.
// Credits granted to the server follow the free executor slots it can
// reach. Runs outlive a lost stream: after a reconnect the worker resumes
// heartbeats and reports for them under their leases (the server refuses
// the ones whose lease lapsed, and those runs are cancelled).
//
// Readiness (see Readiness): ready while a stream to the server is open
// (hello sent) and at least one executor is in rotation; each change is
// logged with its reason and handed to `on_readiness`.
//
// Threads, all owned and joined: the connection loop (which reads the
// stream), one writer per stream (every write and the heartbeats), one
// thread per run, and the fleet's. Thread-safe.
class Worker {
 public:
  // Called with the new readiness on each change (first with true, once
  // ready), on any of the worker's threads, without locks held; calls do
  // not overlap, and the last one carries the current state.
  using ReadinessCallback = std::function<void(bool ready)>;

  explicit Worker(WorkerOptions options, ReadinessCallback on_readiness = nullptr);
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
  int RunsForTest() const;
  bool DrainingForTest() const;
  // Whether the worker is ready now, and why (or why not).
  bool ReadyForTest(std::string* reason = nullptr) const;
  ExecutorPool& PoolForTest() { return fleet_.pool(); }

 private:
  // One assignment being run. Fields other than the constants are guarded
  // by mu_.
  struct ActiveRun {
    crucible::v1::Assignment assignment;
    std::string lease_id;
    std::string executor;  // address it runs on; empty until placed
    RunCall call;          // thread-safe by itself
    StopCause cause = StopCause::kNone;
    std::string cancel_reason;
    bool silenced = false;   // the server rejected a report: no more reports
    bool completed = false;  // completion queued: no more heartbeats
    std::thread thread;
  };
  struct Connection;

  // worker.cc: the stream.
  void Loop();
  // `going_away`: the server said it is going away (a clean shutdown).
  absl::Status Serve(bool& going_away);
  void WriterLoop(Connection& conn);
  void Handle(const crucible::v1::ConnectResponse& msg);
  void ReapFinished();
  // worker_runs.cc: assignments and runs.
  void StartRun(const crucible::v1::Assignment& assignment);
  void RunOne(std::shared_ptr<ActiveRun> run);
  // Waits for an executor slot; false if the run ended before it got one.
  bool Place(ActiveRun& run);
  void EndRunLocked(ActiveRun& run, crucible::v1::ConnectRequest completion)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CancelFromServer(const crucible::v1::AssignmentCancel& cancel);
  void OnRejected(const crucible::v1::ReportRejected& rejected);
  void CancelAllRuns();
  void OnCapacityChange();
  // Recomputes readiness and publishes a change. Call without mu_ held.
  void UpdateReadiness() ABSL_LOCKS_EXCLUDED(mu_);
  void SetStreamUp(bool up) ABSL_LOCKS_EXCLUDED(mu_);
  // Grants the server the credits it lacks to match the reachable free
  // slots (never takes any back: the protocol cannot).
  void RegrantLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int DesiredCreditsLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Tells the server what the executors accept if that changed since the
  // hello or the last update.
  void PublishExecutorsLocked(std::vector<crucible::v1::ExecutorAccepts> executors)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues a report. With `may_block`, waits while too many bytes are
  // queued (unless the worker is stopping).
  void Enqueue(crucible::v1::ConnectRequest msg, bool may_block);
  void PushLocked(crucible::v1::ConnectRequest msg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<std::string> LiveLeasesLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Leases of the runs going on and of those whose completion is not
  // written yet: what a new stream names first.
  std::vector<crucible::v1::HeldLease> HeldLeasesLocked() const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration RunDeadline(const crucible::v1::TaskSpec& spec) const;

  const WorkerOptions options_;
  const ReadinessCallback on_readiness_;
  std::unique_ptr<crucible::v1::QueueService::Stub> stub_;
  ExecutorClient executors_;
  ExecutorFleet fleet_;
  std::thread loop_;

  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<ActiveRun>> runs_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> finished_ ABSL_GUARDED_BY(mu_);  // to join
  // Reports for the server; kept across streams (credits and heartbeats
  // are dropped on reconnect: the hello replaces them).
  std::deque<crucible::v1::ConnectRequest> outbound_ ABSL_GUARDED_BY(mu_);
  size_t outbound_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  Connection* conn_ ABSL_GUARDED_BY(mu_) = nullptr;        // the open stream, if any
  int outstanding_credits_ ABSL_GUARDED_BY(mu_) = 0;       // granted, not yet used
  std::deque<std::string> unplaced_ ABSL_GUARDED_BY(mu_);  // leases waiting for an executor
  // Runs ended whose completion is queued but not yet written, by lease: a
  // restarted server must take their lease back before the completion.
  std::map<std::string, crucible::v1::HeldLease> ended_unsent_ ABSL_GUARDED_BY(mu_);
  uint64_t capacity_generation_ ABSL_GUARDED_BY(mu_) = 0;  // bumped on slot changes
  // What the server was last told the executors accept.
  std::vector<crucible::v1::ExecutorAccepts> published_executors_ ABSL_GUARDED_BY(mu_);
  Readiness readiness_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;  // no credits, no new runs
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;  // runs cancelled; half-close when reported
  bool stop_ ABSL_GUARDED_BY(mu_) = false;      // the loop ends; nothing more is written
};

}  // namespace worker

#endif  // CRUCIBLE_WORKER_WORKER_H_
