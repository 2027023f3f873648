#ifndef CRUCIBLE_WORKER_CORE_WORKER_CORE_H_
#define CRUCIBLE_WORKER_CORE_WORKER_CORE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "crucible/v1/executor_service.pb.h"
#include "crucible/v1/queue_service.pb.h"
#include "worker/core/worker_metrics.h"
#include "worker/executor_pool.h"
#include "worker/protocol.h"
#include "worker/readiness.h"

namespace worker {

struct CoreOptions {
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
  // A run without its result by its timeout plus this margin after its
  // start is stopped (DEADLINE_EXCEEDED). The timeout is the one its
  // executor reports at the start (the spec's, or the executor's default
  // when the spec sets none); until then, the spec's from the call's start.
  absl::Duration run_deadline_margin = absl::Minutes(2);
  // The same bound for a run whose spec sets no timeout and whose executor
  // (an older one) reports none.
  absl::Duration run_deadline_without_timeout = absl::Hours(24);
  // Reports queued for the server beyond this many bytes make OnRunEvent
  // wait (back-pressure to the executors' streams).
  size_t max_outbound_bytes = 16 << 20;
  // Where the core's metrics go (WorkerMetrics); null: the process's
  // common::DefaultMetricsRegistry(). Must outlive the core.
  common::MetricsRegistry* metrics = nullptr;
};

// Where the core's runs go: starts and stops calls to executors. The gRPC
// adapter implements it with ExecutorClient and a thread per run; tests
// with a fake that records. Implementations are thread-safe and never call
// back into the core from within these methods.
class RunLauncher {
 public:
  virtual ~RunLauncher() = default;
  // Starts running `request` on `executor`, bounded by `deadline`, without
  // blocking. Every event of the run goes to WorkerCore::OnRunEvent and its
  // end, once, to WorkerCore::OnRunEnded.
  virtual void Launch(const std::string& executor,
                      const crucible::v1::RunRequest& request,
                      absl::Duration deadline) = 0;
  // Cancels the call of the run `lease` (its end still comes to OnRunEnded).
  virtual void CancelCall(const std::string& lease) = 0;
  // Asks `executor` to cancel the run `lease`, falling back to CancelCall.
  virtual void CancelOnExecutor(const std::string& executor,
                                const std::string& lease) = 0;
};

// What the stream writer is to do next (WorkerCore::NextWrite).
struct WriteStep {
  enum class Kind {
    kWrite,      // write `msg`, then report it with Written
    kHalfClose,  // nothing more for this stream: half-close it
    kEnd,        // the stream is over (or the worker stopped): just return
    kIdle,       // nothing yet (only when NextWrite's max_wait ran out)
  };
  Kind kind = Kind::kIdle;
  crucible::v1::ConnectRequest msg;
};

// The worker's logic, without gRPC: which assignments it takes, where each
// runs (the executor in rotation with the most free slots, first come first
// placed, given back after placement_timeout), the credits the server gets
// (the free slots it can reach), what is reported and in which order
// (heartbeats ahead of queued output, reports kept across streams,
// back-pressure on the runs when too much is queued), drain and stop, and
// readiness. Time comes from the injected clock: placement deadlines, full
// executors' backoff (through the pool) and heartbeats; time-driven
// decisions happen in Tick and NextWrite, so a test moves a FakeClock and
// calls them. The adapter (Worker) owns the stream, the threads and the
// executor calls (RunLauncher). Thread-safe; no callback runs under its
// lock.
class WorkerCore {
 public:
  // `reason`: why it is ready or not (Readiness::Reason).
  using ReadinessCallback =
      std::function<void(bool ready, const std::string& reason)>;

  WorkerCore(CoreOptions options, const common::Clock& clock,
             ExecutorPool& pool, RunLauncher& launcher,
             ReadinessCallback on_readiness = nullptr);
  WorkerCore(const WorkerCore&) = delete;
  WorkerCore& operator=(const WorkerCore&) = delete;

  // --- the server stream (worker_core.cc) ---
  // A new stream: drops the old stream's credits, heartbeats and executor
  // updates, offers the free slots afresh. Returns the hello (publishing
  // `accepts`) and sets `stream` to the new stream's id.
  crucible::v1::ConnectRequest BeginStream(
      std::vector<crucible::v1::ExecutorAccepts> accepts, uint64_t& stream);
  // The stream is connected: credits may go on it from now on.
  void StreamConnected(uint64_t stream);
  // The hello was written: the worker is up (readiness). Returns the resume
  // heartbeat naming the leases still held, if any, to write next.
  std::optional<crucible::v1::ConnectRequest> HelloWritten(uint64_t stream);
  // Waits (at most `max_wait`, and at most until the next heartbeat is due)
  // for what to write on `stream`.
  WriteStep NextWrite(uint64_t stream, absl::Duration max_wait);
  // The outcome of writing `msg` (from NextWrite). A report that could not
  // be written goes out again on the next stream.
  void Written(crucible::v1::ConnectRequest msg, bool ok);
  // The stream ended (its reader is done). True if the server had said it
  // was going away.
  bool EndStream(uint64_t stream);
  // How the last stream ended (its status, e.g. a standby's refusal): the
  // readiness reason says it until a stream is up again.
  void StreamFailed(const absl::Status& status);
  // The server said it is going away: half-close, reconnect.
  void GoingAway();
  // True once Stop began or the worker stopped: no more connecting.
  bool stopping() const;

  // --- server messages and runs (core_runs.cc) ---
  void OnAssignment(const crucible::v1::Assignment& assignment);
  void OnServerCancel(const crucible::v1::AssignmentCancel& cancel);
  void OnRejected(const crucible::v1::ReportRejected& rejected);
  // An event of the run of `lease`; may block while too much is queued for
  // the server (unless the worker is stopping).
  void OnRunEvent(const std::string& lease,
                  const crucible::v1::RunResponse& event);
  // The run's call on its executor ended with `status`.
  void OnRunEnded(const std::string& lease, absl::Status status);
  // The free slots in rotation or what the executors accept may have changed.
  void OnCapacityChange(std::vector<crucible::v1::ExecutorAccepts> accepts);
  // Time-driven decisions: places runs on executors whose full_backoff is
  // over; gives back runs that waited placement_timeout for a slot; stops
  // runs past their deadline (run_deadline_margin).
  void Tick();

  // --- drain and stop (worker_core.cc) ---
  // No more credits; new assignments are given back as UNAVAILABLE.
  void StartDrain();
  // Waits up to `timeout` for the drain to begin; true if it did.
  bool AwaitDraining(absl::Duration timeout);
  // Waits up to `timeout` for no run to be held; true if none is.
  bool AwaitNoRuns(absl::Duration timeout);
  // Drains and cancels every run (reported UNAVAILABLE, so the server
  // retries them at once); the writer half-closes once they are reported.
  void BeginStop();
  // Waits up to `timeout` for the runs to be gone and their reports written
  // (or the stream gone), then up to `close_timeout` for the stream to close.
  void AwaitReported(absl::Duration timeout, absl::Duration close_timeout);
  // Nothing more is written or queued; NextWrite returns kEnd from now on.
  void Stopped();

  // --- state, for the adapter and tests ---
  int runs() const;
  // Whether the run of `lease` is held (placed or waiting).
  bool holds(const std::string& lease) const;
  bool draining() const;
  bool ready(std::string* reason = nullptr) const;
  // Recomputes readiness (e.g. executors in rotation changed) and publishes
  // a change.
  void UpdateReadiness() ABSL_LOCKS_EXCLUDED(mu_);
  // Waits until `n` OnRunEvent calls are held up by back-pressure.
  bool AwaitBlockedReportsForTest(int n, absl::Duration timeout);

 private:
  // One assignment being run.
  struct Run {
    crucible::v1::Assignment assignment;
    std::string executor;  // empty until placed
    absl::Time placement_deadline = absl::InfiniteFuture();
    StopCause cause = StopCause::kNone;
    std::string cancel_reason;
    bool silenced = false;   // the server rejected a report: no more reports
    bool any_event = false;  // of the current call
    std::optional<crucible::v1::TaskResult> result;
    // When the current call is stopped if it has not ended (see
    // CoreOptions::run_deadline_margin), and whether it was.
    absl::Time run_deadline = absl::InfiniteFuture();
    bool overdue = false;
    // The run's timeout as its executor reported it at the start.
    std::optional<absl::Duration> timeout;
  };
  // Calls to make on the launcher once the lock is released.
  struct Effects {
    struct Launch {
      std::string executor;
      crucible::v1::RunRequest request;
      absl::Duration deadline;
    };
    std::vector<Launch> launches;
    std::vector<std::string> cancel_calls;  // leases
  };

  // core_runs.cc
  void PlaceLocked(Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExpirePlacementsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stops the calls of runs past their run_deadline.
  void ExpireRunsLocked(Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The start of a run: its deadline from the timeout its executor reports.
  void StartedLocked(Run& run, const crucible::v1::RunStarted& started)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The lease of `run` as a resume heartbeat names it.
  static crucible::v1::HeldLease HeldLeaseOfRun(const Run& run);
  void Apply(Effects& fx) ABSL_LOCKS_EXCLUDED(mu_);
  // Ends a run that never reached an executor (or no longer does).
  void EndUnplacedLocked(Run& run, absl::Status why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EndRunLocked(Run& run, crucible::v1::ConnectRequest completion)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A run its executor refused for lack of slots goes back to the front
  // of the line (another executor, or the same one after full_backoff).
  void RequeueFullLocked(Run& run, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RegrantLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int DesiredCreditsLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PublishExecutorsLocked(
      std::vector<crucible::v1::ExecutorAccepts> executors)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration RunDeadline(const crucible::v1::TaskSpec& spec) const;
  // worker_core.cc
  void EnqueueBlocking(crucible::v1::ConnectRequest msg)
      ABSL_LOCKS_EXCLUDED(mu_);
  void PushLocked(crucible::v1::ConnectRequest msg)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<std::string> LiveLeasesLocked() const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<crucible::v1::HeldLease> HeldLeasesLocked() const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool StreamDoneLocked(uint64_t stream) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const CoreOptions options_;
  const common::Clock& clock_;
  ExecutorPool& pool_;
  RunLauncher& launcher_;
  const ReadinessCallback on_readiness_;
  WorkerMetrics metrics_;

  mutable absl::Mutex mu_;
  std::map<std::string, Run> runs_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> unplaced_
      ABSL_GUARDED_BY(mu_);  // leases waiting for an executor
  // Reports for the server; kept across streams (credits and heartbeats
  // are dropped on reconnect: the hello replaces them).
  std::deque<crucible::v1::ConnectRequest> outbound_ ABSL_GUARDED_BY(mu_);
  size_t outbound_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int blocked_reports_ ABSL_GUARDED_BY(mu_) = 0;
  // Runs ended whose completion is queued but not yet written, by lease: a
  // restarted server must take their lease back before the completion.
  std::map<std::string, crucible::v1::HeldLease> ended_unsent_
      ABSL_GUARDED_BY(mu_);
  // What the server was last told the executors accept.
  std::vector<crucible::v1::ExecutorAccepts> published_executors_
      ABSL_GUARDED_BY(mu_);
  uint64_t stream_ ABSL_GUARDED_BY(mu_) = 0;  // id of the latest stream
  bool connected_ ABSL_GUARDED_BY(mu_) =
      false;  // stream_ is open: credits go on it
  bool going_away_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time next_heartbeat_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  int outstanding_credits_ ABSL_GUARDED_BY(mu_) = 0;  // granted, not yet used
  Readiness readiness_ ABSL_GUARDED_BY(mu_);
  bool draining_ ABSL_GUARDED_BY(mu_) = false;  // no credits, no new runs
  bool stopping_ ABSL_GUARDED_BY(mu_) =
      false;  // runs cancelled; half-close when reported
  bool stop_ ABSL_GUARDED_BY(mu_) = false;  // nothing more is written
};

}  // namespace worker

#endif  // CRUCIBLE_WORKER_CORE_WORKER_CORE_H_
