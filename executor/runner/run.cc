#include "executor/runner/run.h"

#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/executor_status.h"
#include "common/proto_time.h"
#include "executor/docker/demux.h"
#include "executor/docker/engine.h"
#include "executor/policy/scratch.h"
#include "executor/runner/scratch_area.h"
#include "glog/logging.h"

namespace runner {
namespace {

using crucible::v1::TaskResult;
using crucible::v1::TerminationReason;
using Kill = RunControl::Kill;

// The engine's answer to starting a container whose argv[0] does not exist
// or cannot be executed (runc's messages, relayed by Docker and Podman).
bool IsMissingExecutable(const absl::Status& s) {
  if (s.code() != absl::StatusCode::kInternal &&
      s.code() != absl::StatusCode::kNotFound &&
      s.code() != absl::StatusCode::kInvalidArgument) {
    return false;
  }
  return absl::StrContains(s.message(), "executable file not found") ||
         absl::StrContains(s.message(), "no such file or directory") ||
         absl::StrContains(s.message(), "permission denied");
}

// One container's life after the policy and the slot. Confined to the
// thread that calls Run, plus the waiter and watchdog threads it starts and
// joins; fields they share are atomics or behind RunControl.
class Execution {
 public:
  Execution(docker::Engine& engine, const common::Clock& clock,
            const RunnerOptions& options,
            const crucible::v1::RunRequest& request,
            const policy::ContainerPlan& plan, RunSink& sink,
            RunControl& control, RunnerMetrics& metrics)
      : engine_(engine),
        clock_(clock),
        options_(options),
        request_(request),
        plan_(plan),
        sink_(sink),
        control_(control),
        metrics_(metrics) {}

  absl::StatusOr<TaskResult> Run() {
    if (control_.shutting_down()) return ShutdownError();
    if (control_.cancelled())
      return Ended(TerminationReason::TERMINATION_REASON_CANCELLED,
                   "cancelled before the container was created");
    // A run with files or artifacts: its scratch volume first, removed
    // after its container (on every path but a lost engine, whose orphans
    // the reaper removes).
    const bool scratch = !plan_.scratch_volume.empty();
    if (scratch) {
      if (absl::Status s = engine_.CreateVolume(plan_.scratch_volume,
                                                plan_.scratch_volume_body);
          !s.ok()) {
        return s;
      }
    }
    const std::string holder =
        absl::StrCat(plan_.name, policy::kScratchHolderSuffix);
    absl::Cleanup remove_volume = [&] {
      if (!scratch || engine_lost_.load()) return;
      if (absl::Status s = engine_.Remove(holder); !s.ok()) {
        LOG(ERROR) << RunTag(request_) << ": could not remove container "
                   << holder << ": " << s;
      }
      if (absl::Status s = engine_.RemoveVolume(plan_.scratch_volume);
          !s.ok()) {
        LOG(ERROR) << RunTag(request_) << ": could not remove volume "
                   << plan_.scratch_volume << ": " << s;
      }
    };
    if (scratch) {
      absl::Status held =
          engine_.CreateContainer(holder, plan_.create_body).status();
      if (held.ok()) held = engine_.InitContainer(holder);
      if (!held.ok()) return held;
    }
    absl::StatusOr<std::string> id = Create();
    if (!id.ok()) return id.status();
    id_ = *id;
    const absl::Status filled =
        scratch ? FillScratch(engine_, plan_, request_.spec())
                : absl::OkStatus();
    absl::StatusOr<TaskResult> result =
        filled.ok() ? RunContainer() : absl::StatusOr<TaskResult>(filled);
    if (engine_lost_.load()) {
      LOG(WARNING)
          << RunTag(request_) << ": container " << name_
          << " left to the orphan reaper: the engine stopped answering";
      return result;
    }
    // Always remove, on every path, once the container exists.
    if (absl::Status s = engine_.Remove(name_); !s.ok()) {
      LOG(ERROR) << RunTag(request_) << ": could not remove container " << name_
                 << " (label crucible.run=" << request_.run_id() << "): " << s;
    }
    return result;
  }

 private:
  // Creates the container. The image is not inspected first, which would
  // cost every run a round trip: only a create the engine refuses as
  // FAILED_PRECONDITION (its 404, no such image) is followed by the
  // inspection, which tells a missing image (and names it) from another
  // refusal, and, where the policy pulls, by a pull and a second create.
  absl::StatusOr<std::string> Create() {
    create_time_ = clock_.Now();
    absl::StatusOr<std::string> id =
        engine_.CreateContainer(plan_.name, plan_.create_body);
    if (id.ok() || id.status().code() != absl::StatusCode::kFailedPrecondition)
      return id;
    absl::Status present = engine_.InspectImage(request_.spec().image());
    if (present.ok()) return id;
    if (present.code() != absl::StatusCode::kFailedPrecondition ||
        !plan_.pull_image) {
      return present;
    }
    // Only images the policy allowed get here.
    LOG(INFO) << RunTag(request_) << ": pulling " << request_.spec().image();
    if (absl::Status pulled = engine_.PullImage(request_.spec().image());
        !pulled.ok()) {
      return pulled;
    }
    create_time_ = clock_.Now();
    return engine_.CreateContainer(plan_.name, plan_.create_body);
  }

  absl::Status ShutdownError() const {
    return absl::UnavailableError(
        absl::StrCat(common::kExecutorShuttingDown,
                     "; the run was stopped and its container removed"));
  }

  absl::Status EngineLostError() const {
    return absl::UnavailableError(absl::StrCat(
        "the container engine stopped answering during the run (",
        options_.engine_failures_to_give_up, " inspections of container ",
        name_, " failed in a row); the run was abandoned"));
  }

  // What the sink hears at the start: the container and the run's limits.
  crucible::v1::RunStarted Started() const {
    crucible::v1::RunStarted started;
    started.set_container_id(id_);
    *started.mutable_start_time() = common::ToProtoTime(start_time_);
    crucible::v1::RunLimits* limits = started.mutable_limits();
    *limits->mutable_timeout() = common::ToProtoDuration(plan_.timeout);
    *limits->mutable_resources() = plan_.resources;
    limits->set_max_output_bytes(plan_.max_output_bytes);
    limits->set_max_artifact_bytes(plan_.max_artifact_bytes);
    return started;
  }

  TaskResult Ended(TerminationReason reason, std::string message) {
    TaskResult r;
    r.set_reason(reason);
    r.set_error_message(std::move(message));
    if (start_time_ != absl::InfinitePast()) {
      *r.mutable_start_time() = common::ToProtoTime(start_time_);
    }
    *r.mutable_finish_time() = common::ToProtoTime(clock_.Now());
    return r;
  }

  absl::StatusOr<TaskResult> RunContainer() {
    // Post wait(next-exit) before start, as docker run does: Podman answers
    // a wait posted after the exit only after polling, or, for next-exit,
    // never. If it still loses the race, WaitForExit falls back to inspect.
    absl::Notification wait_sent, wait_done;
    absl::StatusOr<int64_t> wait_result = absl::UnknownError("wait not done");
    std::atomic<bool> stop_wait{false};
    std::thread waiter([&] {
      absl::StatusOr<int64_t> r = engine_.Wait(
          name_, "next-exit",
          [&] { return stop_wait.load() || abort_streams_.load(); },
          [&] { wait_sent.Notify(); });
      if (r.ok()) {
        exit_seen_ = true;
        exit_recorded_ = true;  // the engine answers once it has the exit
      }
      wait_result = std::move(r);
      // Done before sent: a wait that failed before it was sent is seen as
      // failed by the check right after wait_sent, and nothing is started.
      wait_done.Notify();
      if (!wait_sent.HasBeenNotified()) wait_sent.Notify();
    });
    absl::Cleanup join_waiter = [&] {
      stop_wait = true;
      waiter.join();
    };
    wait_sent.WaitForNotificationWithTimeout(options_.wait_post_timeout);
    if (wait_done.HasBeenNotified() && !wait_result.ok())
      return wait_result.status();
    if (control_.shutting_down()) return ShutdownError();
    if (control_.cancelled()) {
      return Ended(TerminationReason::TERMINATION_REASON_CANCELLED,
                   "cancelled before start");
    }
    if (absl::Status s = engine_.Start(name_); !s.ok()) {
      if (!IsMissingExecutable(s)) return s;
      TaskResult r =
          Ended(TerminationReason::TERMINATION_REASON_REJECTED,
                absl::StrCat("the container could not start: ", s.message()));
      r.set_exit_code(127);
      return r;
    }
    start_time_ = clock_.Now();
    metrics_.CreatedToStarted(start_time_ - create_time_);
    sink_.OnStarted(Started());
    std::thread watchdog([this] { Watchdog(start_time_); });
    absl::Cleanup join_watchdog = [&] {
      control_.MarkDone();
      watchdog.join();
    };
    // stdin is fed on its own thread: the process may read it slowly, or
    // not at all, while its output must keep flowing.
    std::atomic<bool> stop_stdin{false};
    std::thread feeder;
    if (!request_.spec().stdin().empty()) {
      feeder = std::thread([&] {
        absl::Status s = engine_.WriteStdin(
            name_, request_.spec().stdin(),
            [&] { return stop_stdin.load() || abort_streams_.load(); });
        if (!s.ok() && s.code() != absl::StatusCode::kCancelled) {
          LOG(WARNING) << RunTag(request_) << ": stdin: " << s;
        }
      });
    }
    absl::Cleanup join_feeder = [&] {
      stop_stdin = true;
      if (feeder.joinable()) feeder.join();
    };

    absl::Status logs = FollowLogs();
    if (engine_lost_.load()) return EngineLostError();
    if (!logs.ok()) {
      (void)engine_.Kill(name_);
      return logs;
    }
    absl::StatusOr<docker::ContainerState> state =
        WaitForExit(wait_done, wait_result, stop_wait);
    if (!state.ok()) return state.status();
    if (control_.killed_for() == Kill::kShutdown) return ShutdownError();
    TaskResult result = Result(*state);
    if (!plan_.scratch_volume.empty()) {
      CollectArtifacts(engine_, plan_, request_.spec(), sink_, result);
    }
    return result;
  }

  // Streams the output. Podman's log follow sometimes neither ends when the
  // container exits nor delivers the last bytes, or ends with an error
  // object inside a 200 answer; then the stream is abandoned (by the
  // watchdog, logs_grace after the exit) or dropped, and the output is read
  // again from the start without follow, skipping what was already sent.
  absl::Status FollowLogs() {
    auto abort = [this] {
      return abort_streams_.load() || logs_stop_.load() || ReadRestNow();
    };
    absl::Status logs = engine_.Logs(
        name_, /*follow=*/true,
        [this](absl::string_view b) { return OnLogBytes(b, demux_, 0); },
        abort);
    if (limit_hit_ || abort_streams_.load()) return absl::OkStatus();
    if (logs.ok() && !demux_.failed()) return absl::OkStatus();
    if (!demux_.failed() && !logs_stop_.load() && ReadRestNow()) {
      // The usual end of a short run: Podman ends a follow only after
      // polling its events and log files, a few hundred ms past the exit.
      VLOG(1) << RunTag(request_) << ": exit recorded; reading the rest of "
              << "the output without follow";
    } else {
      LOG(WARNING) << RunTag(request_) << ": log stream "
                   << (demux_.failed()
                           ? absl::StrCat("broken: ",
                                          absl::CHexEscape(bad_log_bytes_))
                           : std::string(logs_stop_.load()
                                             ? "stalled after the exit"
                                             : logs.ToString()))
                   << "; reading the output again";
    }
    bool follow = !exit_seen_.load();  // still running: follow again
    docker::Demuxer again;
    const int64_t skip = offset_;
    // The watchdog keeps setting logs_stop_ after the exit; a read without
    // follow ends by itself and must not be cut short by it.
    logs_stop_ = false;
    docker::AbortFn abort_again = [this, follow] {
      return abort_streams_.load() || (follow && logs_stop_.load());
    };
    logs = engine_.Logs(
        name_, follow,
        [&](absl::string_view b) { return OnLogBytes(b, again, skip); },
        abort_again);
    if (again.failed()) {
      return absl::InternalError(
          absl::StrCat("engine log stream broken twice: ", again.error(),
                       " in: ", absl::CHexEscape(bad_log_bytes_)));
    }
    if (!logs.ok() && !limit_hit_ && !abort_streams_.load() &&
        !logs_stop_.load()) {
      return logs;
    }
    return absl::OkStatus();
  }

  // True once the engine has recorded the exit, so that its log holds all
  // the output, and so little was relayed that reading it all again costs
  // less than waiting for the follow to end.
  bool ReadRestNow() const {
    return exit_recorded_.load() &&
           relayed_.load() <= options_.logs_reread_bytes;
  }

  std::optional<docker::ContainerState> RecordedState() {
    absl::MutexLock lock(&state_mu_);
    return recorded_state_;
  }

  // The container's final state: the one the watchdog inspected once the
  // engine had recorded the exit, else from wait if it answers in time
  // after the logs ended, else by polling inspect until the container is
  // not running.
  absl::StatusOr<docker::ContainerState> WaitForExit(
      absl::Notification& wait_done, const absl::StatusOr<int64_t>& wait_result,
      std::atomic<bool>& stop_wait) {
    if (std::optional<docker::ContainerState> st = RecordedState()) {
      stop_wait = true;
      return *std::move(st);
    }
    bool waited = wait_done.WaitForNotificationWithTimeout(options_.wait_grace);
    while (true) {
      absl::StatusOr<docker::ContainerState> state =
          engine_.InspectContainer(name_);
      if (!state.ok()) return state.status();
      if ((waited && wait_result.ok()) ||
          (!state->running && state->status != "created")) {
        stop_wait = true;
        return state;
      }
      if (abort_streams_.load()) {
        return absl::UnavailableError(absl::StrCat(
            "container ", name_, " did not stop after being killed"));
      }
      waited = wait_done.WaitForNotificationWithTimeout(
          std::max(options_.poll_interval, absl::Milliseconds(500)));
    }
  }

  // The exit code comes from inspect: the wait call may still be pending
  // when the fallback found the container stopped.
  TaskResult Result(const docker::ContainerState& state) {
    TaskResult r;
    switch (control_.killed_for()) {
      case Kill::kCancelled:
        r = Ended(TerminationReason::TERMINATION_REASON_CANCELLED,
                  "cancelled; the container was killed");
        break;
      case Kill::kTimeout:
        r = Ended(TerminationReason::TERMINATION_REASON_TIMEOUT,
                  absl::StrCat("timed out after ",
                               absl::FormatDuration(plan_.timeout),
                               "; the container was killed"));
        break;
      case Kill::kOutputLimit:
        r = Ended(TerminationReason::TERMINATION_REASON_OUTPUT_LIMIT,
                  absl::StrCat("output exceeded ", plan_.max_output_bytes,
                               " bytes; the container was killed"));
        break;
      case Kill::kShutdown:  // handled by the caller
      case Kill::kNone:
        if (state.oom_killed) {
          r = Ended(TerminationReason::TERMINATION_REASON_OOM_KILLED,
                    "the container ran out of memory and was killed");
        } else if (state.exit_code == 137) {
          // SIGKILL that the runner did not send. Podman 4.3 on cgroup v1
          // (hybrid) reports OOMKilled=false for a memory-cgroup kill, so
          // this is the only trace of it; a process SIGKILLing itself is
          // the rare false positive.
          r = Ended(TerminationReason::TERMINATION_REASON_OOM_KILLED,
                    "the process was killed by SIGKILL (exit 137) that the "
                    "executor did not send: most likely the memory limit "
                    "(the engine did not report OOMKilled)");
        } else {
          r = Ended(TerminationReason::TERMINATION_REASON_EXITED, "");
        }
        break;
    }
    r.set_exit_code(static_cast<int32_t>(state.exit_code));
    r.set_output_truncated(limit_hit_);
    return r;
  }

  // Kills the container at the deadline or on a kill request; notices the
  // exit even if the wait call misses it, and often before it answers
  // (inspect first_inspect after the start, then at twice the gap each
  // time, up to every inspect_interval);
  // stops a log stream that outlives the exit by logs_grace; abandons the
  // streams if the run does not end within kill_grace after a kill.
  void Watchdog(absl::Time start) {
    const absl::Time deadline = start + plan_.timeout;
    bool killed = false;
    absl::Time killed_at = absl::InfiniteFuture();
    absl::Time exit_at = absl::InfiniteFuture();
    // From the start, not from when this thread got going: a clock that
    // moved meanwhile does not push the first inspection back.
    absl::Duration inspect_gap =
        std::min(options_.first_inspect, options_.inspect_interval);
    absl::Time next_inspect = start + inspect_gap;
    int engine_failures = 0;
    while (true) {
      Kill why = Kill::kNone;
      // Woken for the next inspection, if it comes before the next tick.
      const absl::Duration tick =
          exit_seen_.load()
              ? options_.poll_interval
              : std::clamp(next_inspect - clock_.Now(), absl::ZeroDuration(),
                           options_.poll_interval);
      if (killed) {
        control_.WaitDone(tick);
      } else {
        why = control_.WaitForEvent(tick);
      }
      if (control_.done()) return;
      absl::Time now = clock_.Now();
      if (!killed && why == Kill::kNone && now >= deadline)
        why = Kill::kTimeout;
      if (!killed && why != Kill::kNone) {
        killed = true;
        killed_at = now;
        control_.MarkKilled(why);
        VLOG(1) << RunTag(request_) << ": killing container " << name_;
        if (absl::Status s = engine_.Kill(name_); !s.ok()) {
          LOG(WARNING) << RunTag(request_) << ": kill " << name_ << ": " << s;
        }
      }
      if (exit_at == absl::InfiniteFuture()) {
        if (!exit_seen_.load() && now >= next_inspect) {
          inspect_gap = std::min(inspect_gap * 2, options_.inspect_interval);
          next_inspect = now + inspect_gap;
          absl::StatusOr<docker::ContainerState> st =
              engine_.InspectContainer(name_);
          if (st.ok() && st->finished) {
            absl::MutexLock lock(&state_mu_);
            recorded_state_ = *st;
          }
          if (st.ok() && !st->running && st->status != "created") {
            exit_seen_ = true;
            if (st->finished) exit_recorded_ = true;
          }
          engine_failures = st.status().code() == absl::StatusCode::kUnavailable
                                ? engine_failures + 1
                                : 0;
          if (engine_failures >= options_.engine_failures_to_give_up) {
            LOG(WARNING) << RunTag(request_)
                         << ": engine lost: " << st.status();
            engine_lost_ = true;
            abort_streams_ = true;
            return;
          }
        }
        if (exit_seen_.load()) exit_at = now;
      }
      if (now >= exit_at + options_.logs_grace) logs_stop_ = true;
      if (now >= killed_at + options_.kill_grace) abort_streams_ = true;
    }
  }

  // Demultiplexes log bytes into numbered chunks, up to max_output_bytes.
  // The first `skip` payload bytes were sent already (a re-read).
  bool OnLogBytes(absl::string_view bytes, docker::Demuxer& demux,
                  int64_t skip) {
    std::vector<docker::Frame> frames;
    if (!demux.Feed(bytes, frames)) {
      bad_log_bytes_ = std::string(bytes.substr(0, 500));
      return false;
    }
    for (docker::Frame& f : frames) {
      if (f.stream == docker::StreamId::kStdin) continue;
      if (skipped_ < skip) {
        size_t drop = std::min<size_t>(static_cast<size_t>(skip - skipped_),
                                       f.data.size());
        skipped_ += static_cast<int64_t>(drop);
        f.data.erase(0, drop);
        if (f.data.empty()) continue;
      }
      int64_t room = plan_.max_output_bytes - offset_;
      const size_t size = f.data.size();
      size_t n = std::min<size_t>(
          static_cast<size_t>(std::max<int64_t>(room, 0)), size);
      if (n > 0) {
        crucible::v1::OutputChunk chunk;
        chunk.set_stream(f.stream == docker::StreamId::kStdout
                             ? crucible::v1::OUTPUT_STREAM_STDOUT
                             : crucible::v1::OUTPUT_STREAM_STDERR);
        f.data.resize(n);
        chunk.set_data(std::move(f.data));
        chunk.set_offset(offset_);
        chunk.set_attempt(request_.attempt());
        offset_ += static_cast<int64_t>(n);
        relayed_ = offset_;
        sink_.OnOutput(std::move(chunk));
      }
      if (n < size) {
        limit_hit_ = true;
        control_.RequestKill(Kill::kOutputLimit);
        return false;
      }
    }
    return true;
  }

  docker::Engine& engine_;
  const common::Clock& clock_;
  const RunnerOptions& options_;
  const crucible::v1::RunRequest& request_;
  const policy::ContainerPlan& plan_;
  RunSink& sink_;
  RunControl& control_;
  RunnerMetrics& metrics_;
  // The container's name (plan_.name): every engine call on the container
  // uses it, as the docker-proxy refuses the engine's hex ids.
  const std::string& name_ = plan_.name;
  std::string id_;  // the engine's id, reported to the sink only
  absl::Time create_time_ = absl::InfinitePast();
  absl::Time start_time_ = absl::InfinitePast();
  std::atomic<bool> abort_streams_{false};
  std::atomic<bool> logs_stop_{false};    // abandon the current log stream
  std::atomic<bool> exit_seen_{false};    // wait answered or inspect saw it
  std::atomic<bool> engine_lost_{false};  // the watchdog gave up on the engine
  // The engine has recorded the exit (wait answered, or an inspection saw
  // it finished): the container's log holds all of its output.
  std::atomic<bool> exit_recorded_{false};
  std::atomic<int64_t> relayed_{0};  // offset_, for the other threads
  absl::Mutex state_mu_;
  // The inspection that saw the exit recorded, if the watchdog made one.
  std::optional<docker::ContainerState> recorded_state_
      ABSL_GUARDED_BY(state_mu_);
  // Used on the logs thread (the Run thread) only.
  docker::Demuxer demux_;
  int64_t offset_ = 0;
  int64_t skipped_ = 0;  // payload bytes dropped by a re-read
  std::string bad_log_bytes_;
  bool limit_hit_ = false;
};

}  // namespace

absl::StatusOr<TaskResult> ExecuteRun(docker::Engine& engine,
                                      const common::Clock& clock,
                                      const RunnerOptions& options,
                                      const crucible::v1::RunRequest& request,
                                      const policy::ContainerPlan& plan,
                                      RunSink& sink, RunControl& control,
                                      RunnerMetrics& metrics) {
  return Execution(engine, clock, options, request, plan, sink, control,
                   metrics)
      .Run();
}

}  // namespace runner
