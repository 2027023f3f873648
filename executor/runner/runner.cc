#include "executor/runner/runner.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/executor_status.h"
#include "common/trace.h"
#include "executor/docker/engine.h"
#include "executor/runner/run.h"
#include "glog/logging.h"

namespace runner {

std::string RunTag(const crucible::v1::RunRequest& request) {
  return absl::StrCat("run ", request.run_id(), " (",
                      common::TaskTag(request.task_id(), request.trace_id()),
                      ")");
}

void RunControl::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  if (requested_ == Kill::kNone) requested_ = Kill::kCancelled;
}

void RunControl::Shutdown() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  shutdown_ = true;
  if (requested_ == Kill::kNone) requested_ = Kill::kShutdown;
}

bool RunControl::shutting_down() const {
  absl::MutexLock lock(&mu_);
  return shutdown_;
}

bool RunControl::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

void RunControl::RequestKill(Kill why) {
  absl::MutexLock lock(&mu_);
  if (requested_ == Kill::kNone) requested_ = why;
}

RunControl::Kill RunControl::killed_for() const {
  absl::MutexLock lock(&mu_);
  return killed_for_;
}

void RunControl::MarkKilled(Kill why) {
  absl::MutexLock lock(&mu_);
  if (killed_for_ == Kill::kNone) killed_for_ = why;
}

void RunControl::MarkDone() {
  absl::MutexLock lock(&mu_);
  done_ = true;
}

bool RunControl::done() const {
  absl::MutexLock lock(&mu_);
  return done_;
}

bool RunControl::WaitDone(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&done_), timeout);
}

RunControl::Kill RunControl::WaitForEvent(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return done_ || requested_ != Kill::kNone;
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  return requested_;
}

Runner::Runner(docker::Engine& engine, const policy::ContainerPolicy& policy,
               const common::Clock& clock, RunnerOptions options)
    : engine_(engine),
      policy_(policy),
      clock_(clock),
      options_(std::move(options)),
      metrics_(options_.metrics != nullptr ? *options_.metrics
                                           : common::DefaultMetricsRegistry(),
               options_.slots) {}

namespace {

// Counts the output bytes a run relays, then passes everything on.
class CountingSink final : public RunSink {
 public:
  CountingSink(RunSink& sink, RunnerMetrics& metrics)
      : sink_(sink), metrics_(metrics) {}
  void OnStarted(const crucible::v1::RunStarted& started) override {
    sink_.OnStarted(started);
  }
  void OnOutput(crucible::v1::OutputChunk chunk) override {
    metrics_.Output(chunk.stream(), chunk.data().size());
    sink_.OnOutput(std::move(chunk));
  }
  void OnArtifact(crucible::v1::ArtifactChunk chunk) override {
    sink_.OnArtifact(std::move(chunk));
  }

 private:
  RunSink& sink_;
  RunnerMetrics& metrics_;
};

}  // namespace

absl::StatusOr<crucible::v1::TaskResult> Runner::Run(
    const crucible::v1::RunRequest& request, RunSink& sink,
    std::shared_ptr<RunControl> control) {
  CountingSink counting(sink, metrics_);
  absl::StatusOr<crucible::v1::TaskResult> result =
      RunUncounted(request, counting, std::move(control));
  metrics_.Ended(result);
  return result;
}

absl::StatusOr<crucible::v1::TaskResult> Runner::RunUncounted(
    const crucible::v1::RunRequest& request, RunSink& sink,
    std::shared_ptr<RunControl> control) {
  // The policy refuses before any engine call and before taking a slot.
  absl::StatusOr<policy::ContainerPlan> plan = policy_.Plan(request);
  if (!plan.ok()) {
    VLOG(1) << RunTag(request) << " refused: " << plan.status();
    return plan.status();
  }
  if (control == nullptr) control = std::make_shared<RunControl>();
  {
    absl::MutexLock lock(&mu_);
    if (!accepting_) {
      return absl::UnavailableError(absl::StrCat(common::kExecutorShuttingDown,
                                                 " and takes no new runs"));
    }
    if (active_.count(request.run_id()) > 0) {
      return absl::AlreadyExistsError(
          absl::StrCat("run ", request.run_id(), " is already running"));
    }
    if (static_cast<int>(active_.size()) >= options_.slots) {
      return absl::ResourceExhaustedError(
          absl::StrCat("all ", options_.slots, " executor slots are busy"));
    }
    active_[request.run_id()] = control;
  }
  metrics_.SlotBusy(1);
  VLOG(1) << RunTag(request) << " attempt " << request.attempt() << " starting";
  absl::StatusOr<crucible::v1::TaskResult> result = ExecuteRun(
      engine_, clock_, options_, request, *plan, sink, *control, metrics_);
  {
    absl::MutexLock lock(&mu_);
    active_.erase(request.run_id());
  }
  metrics_.SlotBusy(-1);
  if (result.ok()) {
    VLOG(1) << RunTag(request) << " finished: "
            << crucible::v1::TerminationReason_Name(result->reason())
            << " exit " << result->exit_code();
  } else {
    LOG(WARNING) << RunTag(request) << " failed: " << result.status();
  }
  return result;
}

absl::Status Runner::Cancel(const std::string& run_id) {
  std::shared_ptr<RunControl> control;
  {
    absl::MutexLock lock(&mu_);
    auto it = active_.find(run_id);
    if (it == active_.end()) {
      return absl::NotFoundError(absl::StrCat("no active run ", run_id));
    }
    control = it->second;
  }
  control->Cancel();
  return absl::OkStatus();
}

void Runner::StopAccepting() {
  absl::MutexLock lock(&mu_);
  accepting_ = false;
}

absl::StatusOr<int> Runner::ReapOrphans() {
  const std::string& executor_id = policy_.options().executor_id;
  absl::StatusOr<std::vector<docker::ContainerSummary>> listed =
      engine_.ListContainers(policy::kExecutorLabel, executor_id);
  if (!listed.ok()) return listed.status();
  std::vector<docker::ContainerSummary> orphans;
  {
    absl::MutexLock lock(&mu_);
    for (docker::ContainerSummary& c : *listed) {
      auto run = c.labels.find(policy::kRunLabel);
      if (run != c.labels.end() && active_.count(run->second) > 0) continue;
      absl::string_view name_run = c.name;
      if (absl::ConsumePrefix(&name_run, policy::kContainerNamePrefix) &&
          active_.count(std::string(name_run)) > 0) {
        continue;
      }
      orphans.push_back(std::move(c));
    }
  }
  int removed = 0;
  absl::Status first_error;
  for (const docker::ContainerSummary& c : orphans) {
    const std::string run = c.labels.count(policy::kRunLabel) > 0
                                ? c.labels.at(policy::kRunLabel)
                                : "?";
    // Only containers named crucible-*: the docker-proxy refuses every call
    // on other names and on hex ids, and such a container is not one this
    // executor created (another workload's, carrying our label, or one from
    // a version that did not name its containers).
    if (!absl::StartsWith(c.name, policy::kContainerNamePrefix)) {
      LOG(WARNING) << "left container " << c.id << " (name \"" << c.name
                   << "\", " << policy::kRunLabel << "=" << run
                   << ") alone: it carries " << policy::kExecutorLabel << "="
                   << executor_id << " but its name lacks the "
                   << policy::kContainerNamePrefix
                   << " prefix of the containers Crucible creates; remove it "
                      "on the engine itself if it is a leftover";
      continue;
    }
    // Engine calls outside the lock: Remove may take seconds.
    if (absl::Status s = engine_.Remove(c.name); !s.ok()) {
      LOG(WARNING) << "could not reap orphan container " << c.name << ": " << s;
      if (first_error.ok()) first_error = s;
      continue;
    }
    // Its scratch volume, if it had one (named as the container); an
    // engine without volumes, or none by that name, is fine.
    if (absl::Status s = engine_.RemoveVolume(c.name);
        !s.ok() && s.code() != absl::StatusCode::kUnimplemented) {
      LOG(WARNING) << "could not remove the volume of orphan " << c.name << ": "
                   << s;
    }
    LOG(INFO) << "reaped orphan container " << c.name << " (id " << c.id
              << ", state " << c.state << ", " << policy::kRunLabel << "="
              << run << ") that no run of executor " << executor_id << " owns";
    ++removed;
  }
  metrics_.Reaped(removed);
  if (removed == 0 && !first_error.ok()) return first_error;
  return removed;
}

void Runner::ShutdownAll() {
  absl::MutexLock lock(&mu_);
  for (auto& [id, control] : active_) control->Shutdown();
}

int Runner::Drain(absl::Duration grace) {
  const absl::Time cancel_at = clock_.Now() + grace;
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return active_.empty();
  };
  while (!active_.empty()) {
    const absl::Duration left = cancel_at - clock_.Now();
    if (left <= absl::ZeroDuration()) break;
    // The last run's end wakes this at once; the bound only lets the
    // injected clock's time be seen (a fake clock moves without waking us).
    mu_.AwaitWithTimeout(absl::Condition(&idle),
                         std::min(left, options_.poll_interval));
  }
  for (auto& [id, control] : active_) control->Shutdown();
  return static_cast<int>(active_.size());
}

int Runner::active_runs() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(active_.size());
}

}  // namespace runner
