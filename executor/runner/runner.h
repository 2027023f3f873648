#ifndef CRUCIBLE_EXECUTOR_RUNNER_RUNNER_H_
#define CRUCIBLE_EXECUTOR_RUNNER_RUNNER_H_

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "crucible/v1/executor_service.pb.h"
#include "crucible/v1/task.pb.h"
#include "executor/docker/engine.h"
#include "executor/policy/container_policy.h"
#include "executor/runner/runner_metrics.h"

namespace runner {

// How a log line names a run: "run <run id> (task <id> trace=<trace id>)".
std::string RunTag(const crucible::v1::RunRequest& request);

// Receives the events of one run, on the run's thread, in order. May block
// briefly (e.g. for flow control) but should observe RunControl::cancelled.
class RunSink {
 public:
  virtual ~RunSink() = default;
  // The container started: its id, start time and the run's limits (the
  // spec's, with the policy's defaults for those it leaves unset).
  virtual void OnStarted(const crucible::v1::RunStarted& started) = 0;
  virtual void OnOutput(crucible::v1::OutputChunk chunk) = 0;
  // A piece of a collected artifact, after the exit and before the result
  // (runs with artifacts only). Sinks that keep no artifacts drop it.
  virtual void OnArtifact(crucible::v1::ArtifactChunk chunk) {}
};

// The shared control block of one run: the caller (or Runner::Cancel) asks
// for cancellation; the run's watchdog waits on it for kill requests, and
// the run marks it done. Thread-safe; no method blocks except WaitForEvent.
class RunControl {
 public:
  enum class Kill { kNone, kCancelled, kTimeout, kOutputLimit, kShutdown };

  // Requests cancellation: the container is killed and removed and the run
  // ends with reason CANCELLED. Idempotent.
  void Cancel();
  // Like Cancel, but the run ends with UNAVAILABLE (retryable) instead of a
  // CANCELLED result: the executor is going away, the task was not
  // cancelled by anyone.
  void Shutdown();
  // True after Cancel or Shutdown.
  bool cancelled() const;
  bool shutting_down() const;

  // For the runner: asks the watchdog to kill the container for `why`
  // (the first reason wins).
  void RequestKill(Kill why);
  // The reason of the kill the watchdog issued, if any.
  Kill killed_for() const;
  void MarkKilled(Kill why);
  void MarkDone();
  bool done() const;
  // True once done, waiting at most `timeout`.
  bool WaitDone(absl::Duration timeout);
  // Returns the pending kill reason (kNone if none) once one is pending, the
  // run is done, or `timeout` passed.
  Kill WaitForEvent(absl::Duration timeout);

 private:
  mutable absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  Kill requested_ ABSL_GUARDED_BY(mu_) = Kill::kNone;
  Kill killed_for_ ABSL_GUARDED_BY(mu_) = Kill::kNone;
};

struct RunnerOptions {
  // Concurrent runs; one more is refused with RESOURCE_EXHAUSTED.
  int slots = 4;
  // How long after posting wait (and before start) the runner waits for the
  // wait request to have been sent.
  absl::Duration wait_post_timeout = absl::Seconds(5);
  // After the log stream ends, how long the wait call may take before the
  // runner falls back to inspecting the container.
  absl::Duration wait_grace = absl::Seconds(2);
  // Interval of deadline checks and of the inspect fallback.
  absl::Duration poll_interval = absl::Milliseconds(50);
  // After a kill, how long before the streams are abandoned (engine hung).
  absl::Duration kill_grace = absl::Seconds(15);
  // While the wait call has not answered, how often the container is
  // inspected to notice its exit (Podman may miss it in wait and in logs,
  // and answers both a few hundred ms after it has recorded the exit).
  // The first inspection comes first_inspect after the start, each next
  // one twice as long after the previous, up to inspect_interval.
  absl::Duration inspect_interval = absl::Seconds(1);
  absl::Duration first_inspect = absl::Milliseconds(10);
  // Once the engine has recorded the exit, a log stream that has relayed
  // at most this many bytes is dropped at once and the output read again
  // without follow (skipping what was relayed), rather than waiting for
  // the stream's own end (logs_grace at most).
  int64_t logs_reread_bytes = int64_t{64} << 10;
  // After the exit was noticed, how long the log stream may take to end
  // before it is abandoned and the rest is read without follow.
  absl::Duration logs_grace = absl::Seconds(2);
  // While the container runs, this many inspections in a row failing with
  // UNAVAILABLE (engine or proxy down, or hung past the client's request
  // timeout) end the run UNAVAILABLE without waiting for the engine; its
  // container is left to the orphan reaper.
  int engine_failures_to_give_up = 3;
  // Where the run metrics go (RunnerMetrics); null: the process's
  // common::DefaultMetricsRegistry(). Must outlive the runner.
  common::MetricsRegistry* metrics = nullptr;
};

// Runs RunRequests as containers under a ContainerPolicy, at most `slots` at
// once. Thread-safe: Run blocks the calling thread for the whole run and
// may be called from several threads; Cancel and CancelAll never block.
//
// One run: policy -> create (only if the engine lacks the image: image
// inspected, and pulled where the policy allows, then create again) ->
// wait posted -> start -> stdin written (if any) through a hijacked
// attach, on its own thread -> logs followed (demultiplexed into
// OutputChunks numbered by combined offset; past max_output_bytes the
// container is killed: OUTPUT_LIMIT, exactly max_output_bytes kept; once
// the engine has recorded the exit, the rest read without follow) -> exit
// code and state from inspect (OOM_KILLED) -> remove, always, on every
// path once the container exists. A watchdog
// thread per run kills the container at the deadline (TIMEOUT, measured on
// the injected clock from start) or on cancellation (CANCELLED).
//
// A missing executable (start fails with "executable file not found" or
// similar) is a result: reason REJECTED, exit_code 127 (what docker run
// reports), with the engine's message.
class Runner {
 public:
  Runner(docker::Engine& engine, const policy::ContainerPolicy& policy,
         const common::Clock& clock, RunnerOptions options);

  // Runs `request` to its end and returns its result (see class comment and
  // ExecutorService.Run for the error codes). `control` may be null; Cancel
  // reaches the run through it either way.
  absl::StatusOr<crucible::v1::TaskResult> Run(
      const crucible::v1::RunRequest& request, RunSink& sink,
      std::shared_ptr<RunControl> control);

  // Cancels the active run `run_id`; NOT_FOUND if there is none.
  absl::Status Cancel(const std::string& run_id);
  // From now on Run refuses new runs with UNAVAILABLE (the executor is
  // draining); active runs go on. Irreversible.
  void StopAccepting();
  // Removes, by name, every container labelled crucible.executor=<the
  // policy's executor_id> whose crucible.run label (and name) names no
  // active run: containers left behind by a crash of this executor. Listed
  // containers whose name lacks policy::kContainerNamePrefix are left alone
  // (logged): Crucible did not create them. Returns how many it removed;
  // UNAVAILABLE if the engine cannot be reached. Runs started while it
  // works are never touched (their run ids are active before their
  // containers exist).
  absl::StatusOr<int> ReapOrphans();
  // Ends every active run with UNAVAILABLE (executor shutting down); their
  // containers are killed and removed.
  void ShutdownAll();
  // The executor's drain, after StopAccepting: waits up to `grace` (on the
  // injected clock) for the active runs to end, woken by the last one's
  // end, then ends those left as ShutdownAll does. Returns how many it
  // ended so.
  int Drain(absl::Duration grace);
  int active_runs() const;
  const policy::ContainerPolicy& policy() const { return policy_; }

 private:
  // Run, without counting its end.
  absl::StatusOr<crucible::v1::TaskResult> RunUncounted(
      const crucible::v1::RunRequest& request, RunSink& sink,
      std::shared_ptr<RunControl> control);

  docker::Engine& engine_;
  const policy::ContainerPolicy& policy_;
  const common::Clock& clock_;
  const RunnerOptions options_;
  RunnerMetrics metrics_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<RunControl>> active_
      ABSL_GUARDED_BY(mu_);
  bool accepting_ ABSL_GUARDED_BY(mu_) = true;
};

}  // namespace runner

#endif  // CRUCIBLE_EXECUTOR_RUNNER_RUNNER_H_
