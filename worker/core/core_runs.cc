// The worker core's runs: taking assignments, placing them on executors,
// relaying their events, ending them, cancels, refusals and the credits
// that follow the free slots.
#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/executor_status.h"
#include "common/proto_time.h"
#include "glog/logging.h"
#include "worker/core/worker_core.h"
#include "worker/protocol.h"

namespace worker {

using crucible::v1::ConnectRequest;

void WorkerCore::OnAssignment(const crucible::v1::Assignment& assignment) {
  const std::string& lease = assignment.lease_id();
  VLOG(1) << "assignment: " << LeaseTag(assignment) << " attempt "
          << assignment.attempt();
  Effects fx;
  {
    absl::MutexLock lock(&mu_);
    outstanding_credits_ = std::max(0, outstanding_credits_ - 1);
    if (runs_.contains(lease)) {
      LOG(WARNING) << "duplicate assignment of " << LeaseTag(assignment)
                   << " ignored";
      return;
    }
    std::optional<absl::Status> refusal;
    if (draining_) {
      // Credits granted before the drain cannot be taken back; give the
      // attempt back at once so the server runs it elsewhere.
      refusal = absl::UnavailableError("worker is draining");
    } else if (options_.max_tasks > 0 &&
               static_cast<int>(runs_.size()) >= options_.max_tasks) {
      refusal = absl::ResourceExhaustedError("worker has no free slot");
    }
    if (refusal.has_value()) {
      LOG(WARNING) << "refusing " << LeaseTag(assignment) << ": " << *refusal;
      PushLocked(
          MakeCompletion(lease, *refusal, std::nullopt, StopCause::kNone, ""));
      return;
    }
    Run& run = runs_[lease];
    metrics_.SetRunsHeld(static_cast<int>(runs_.size()));
    run.assignment = assignment;
    run.placement_deadline = clock_.Now() + options_.placement_timeout;
    unplaced_.push_back(lease);
    PlaceLocked(fx);
    // Still unplaced (first come, first placed: it is the last): it waits.
    if (!unplaced_.empty() && unplaced_.back() == lease) {
      metrics_.PlacementWaited();
    }
  }
  Apply(fx);
}

void WorkerCore::PlaceLocked(Effects& fx) {
  // First come, first placed: the server sent them in priority order.
  while (!unplaced_.empty()) {
    Run& run = runs_.at(unplaced_.front());
    absl::StatusOr<std::string> executor = pool_.Acquire();
    if (!executor.ok()) return;
    unplaced_.pop_front();
    run.executor = *executor;
    run.any_event = false;
    run.result.reset();
    run.overdue = false;
    run.timeout.reset();
    crucible::v1::RunRequest request = MakeRunRequest(run.assignment);
    const absl::Duration deadline = RunDeadline(request.spec());
    run.run_deadline = clock_.Now() + deadline;
    // Without a timeout in the spec the run's limit is the executor's
    // default, known at the start: the core enforces it from then (Tick),
    // so the call itself gets none.
    const absl::Duration call_deadline =
        request.spec().has_timeout() ? deadline : absl::InfiniteDuration();
    fx.launches.push_back({*executor, std::move(request), call_deadline});
  }
}

void WorkerCore::ExpirePlacementsLocked() {
  const absl::Time now = clock_.Now();
  std::vector<std::string> expired;
  for (const std::string& lease : unplaced_) {
    if (runs_.at(lease).placement_deadline <= now) expired.push_back(lease);
  }
  for (const std::string& lease : expired) {
    EndUnplacedLocked(runs_.at(lease),
                      absl::UnavailableError(absl::StrCat(
                          "no executor had a free slot within ",
                          absl::FormatDuration(options_.placement_timeout))));
  }
}

void WorkerCore::ExpireRunsLocked(Effects& fx) {
  const absl::Time now = clock_.Now();
  for (auto& [lease, run] : runs_) {
    if (run.executor.empty() || run.overdue || run.run_deadline > now) {
      continue;
    }
    run.overdue = true;
    LOG(WARNING) << LeaseTag(run.assignment) << ": no result from executor "
                 << run.executor << " by the run's deadline; stopping it";
    fx.cancel_calls.push_back(lease);
  }
}

void WorkerCore::StartedLocked(Run& run,
                               const crucible::v1::RunStarted& started) {
  if (!started.has_limits() || !started.limits().has_timeout()) return;
  run.timeout = common::FromProtoDuration(started.limits().timeout());
  run.run_deadline = clock_.Now() + *run.timeout + options_.run_deadline_margin;
}

crucible::v1::HeldLease WorkerCore::HeldLeaseOfRun(const Run& run) {
  crucible::v1::HeldLease held = HeldLeaseOf(run.assignment);
  if (run.timeout.has_value()) {
    *held.mutable_timeout() = common::ToProtoDuration(*run.timeout);
  }
  return held;
}

void WorkerCore::Tick() {
  Effects fx;
  {
    absl::MutexLock lock(&mu_);
    // Executors marked full come back by time alone: look again.
    PlaceLocked(fx);
    ExpirePlacementsLocked();
    ExpireRunsLocked(fx);
  }
  Apply(fx);
}

void WorkerCore::Apply(Effects& fx) {
  for (Effects::Launch& l : fx.launches)
    launcher_.Launch(l.executor, l.request, l.deadline);
  for (const std::string& lease : fx.cancel_calls) launcher_.CancelCall(lease);
}

void WorkerCore::EndUnplacedLocked(Run& run, absl::Status why) {
  const std::string lease = run.assignment.lease_id();
  unplaced_.erase(std::remove(unplaced_.begin(), unplaced_.end(), lease),
                  unplaced_.end());
  const bool ended = run.silenced || run.cause != StopCause::kNone;
  LOG_IF(WARNING, !ended) << "lease " << lease << ": " << why;
  EndRunLocked(run, MakeCompletion(lease, why, std::nullopt, run.cause,
                                   run.cancel_reason));
}

void WorkerCore::EndRunLocked(Run& run, ConnectRequest completion) {
  const std::string lease = run.assignment.lease_id();
  if (!run.silenced && !stop_) {
    PushLocked(std::move(completion));
    ended_unsent_[lease] = HeldLeaseOfRun(run);
  }
  runs_.erase(lease);  // `run` is gone from here
  metrics_.SetRunsHeld(static_cast<int>(runs_.size()));
  RegrantLocked();  // the slot is free again
}

void WorkerCore::OnRunEvent(const std::string& lease,
                            const crucible::v1::RunResponse& event) {
  std::optional<ConnectRequest> report;
  {
    absl::MutexLock lock(&mu_);
    auto it = runs_.find(lease);
    if (it == runs_.end()) return;
    it->second.any_event = true;
    if (event.has_started()) StartedLocked(it->second, event.started());
    if (event.has_finished()) {
      it->second.result = event.finished();
      return;
    }
    if (it->second.silenced) return;
    report = RelayRunEvent(lease, event);
  }
  if (report.has_value()) EnqueueBlocking(*std::move(report));
}

void WorkerCore::RequeueFullLocked(Run& run, Effects& fx) {
  // The executor is full (another worker fills it too): try another one
  // rather than spend the task's attempt.
  pool_.Release(run.executor, /*reached=*/true);
  pool_.MarkFull(run.executor);
  VLOG(1) << LeaseTag(run.assignment) << ": executor " << run.executor
          << " is full; placing it again";
  run.executor.clear();
  run.placement_deadline = clock_.Now() + options_.placement_timeout;
  unplaced_.push_front(run.assignment.lease_id());  // it was first before
  if (run.silenced || run.cause != StopCause::kNone) {
    EndUnplacedLocked(
        run, absl::CancelledError("stopped before it reached an executor"));
    return;
  }
  PlaceLocked(fx);
}

void WorkerCore::OnRunEnded(const std::string& lease, absl::Status status) {
  Effects fx;
  {
    absl::MutexLock lock(&mu_);
    auto it = runs_.find(lease);
    if (it == runs_.end()) return;
    Run& run = it->second;
    if (status.code() == absl::StatusCode::kResourceExhausted &&
        !run.any_event) {
      RequeueFullLocked(run, fx);
    } else {
      // UNAVAILABLE: the executor could not be reached, died mid-run, or is
      // shutting down. Either way the attempt is reported at once as
      // retryable and the executor counts a failure (enough of them take it
      // out; one that says it is shutting down is out at once).
      if (run.overdue && !run.result.has_value()) {
        status = absl::DeadlineExceededError(
            absl::StrCat("no result from executor ", run.executor,
                         " within the run's timeout plus ",
                         absl::FormatDuration(options_.run_deadline_margin)));
      }
      const bool reached = status.code() != absl::StatusCode::kUnavailable;
      pool_.Release(run.executor, reached);
      if (common::IsExecutorShuttingDown(status)) {
        // No run more for it, without waiting for its next health check.
        LOG(INFO) << "executor " << run.executor
                  << " is shutting down: out of rotation";
        pool_.TakeOut(run.executor);
      }
      if (!reached && !run.result.has_value()) {
        LOG(WARNING) << LeaseTag(run.assignment) << ": executor "
                     << run.executor << " lost: " << status;
        status = absl::UnavailableError(absl::StrCat(
            "executor ", run.executor, " lost: ", status.message()));
      }
      VLOG(1) << "run of " << LeaseTag(run.assignment) << " on " << run.executor
              << " ended: " << status;
      EndRunLocked(run, MakeCompletion(lease, status, run.result, run.cause,
                                       run.cancel_reason));
      PlaceLocked(fx);  // the next in line may have the slot
    }
  }
  Apply(fx);
  UpdateReadiness();  // failed runs may have taken the executor out of rotation
}

void WorkerCore::OnServerCancel(const crucible::v1::AssignmentCancel& cancel) {
  std::string executor;
  {
    absl::MutexLock lock(&mu_);
    auto it = runs_.find(cancel.lease_id());
    if (it == runs_.end()) {
      LOG(INFO) << "cancel of unknown lease " << cancel.lease_id()
                << " ignored";
      return;
    }
    Run& run = it->second;
    if (run.cause == StopCause::kNone) {
      run.cause = StopCause::kServerCancel;
      run.cancel_reason = cancel.reason();
    }
    LOG(INFO) << "server cancelled " << LeaseTag(run.assignment) << ": "
              << cancel.reason();
    executor = run.executor;
    if (executor.empty()) {
      EndUnplacedLocked(
          run, absl::CancelledError("stopped before it reached an executor"));
      return;
    }
  }
  // The executor kills the container and ends Run with finished{CANCELLED}.
  // If it cannot (not reachable, run not registered yet), cancelling our
  // Run call kills the container too.
  launcher_.CancelOnExecutor(executor, cancel.lease_id());
}

void WorkerCore::OnRejected(const crucible::v1::ReportRejected& rejected) {
  LOG(WARNING) << "server rejected a report on lease " << rejected.lease_id()
               << " ("
               << absl::StatusCodeToString(
                      static_cast<absl::StatusCode>(rejected.code()))
               << ": " << rejected.message() << "); abandoning that run";
  {
    absl::MutexLock lock(&mu_);
    auto it = runs_.find(rejected.lease_id());
    if (it == runs_.end()) return;
    it->second.silenced = true;
    if (it->second.executor.empty()) {
      EndUnplacedLocked(
          it->second,
          absl::CancelledError("stopped before it reached an executor"));
      return;
    }
  }
  launcher_.CancelCall(rejected.lease_id());
}

void WorkerCore::OnCapacityChange(
    std::vector<crucible::v1::ExecutorAccepts> accepts) {
  Effects fx;
  {
    absl::MutexLock lock(&mu_);
    RegrantLocked();
    PublishExecutorsLocked(std::move(accepts));
    PlaceLocked(fx);
  }
  Apply(fx);
  UpdateReadiness();
}

void WorkerCore::PublishExecutorsLocked(
    std::vector<crucible::v1::ExecutorAccepts> executors) {
  auto same = [](const crucible::v1::ExecutorAccepts& a,
                 const crucible::v1::ExecutorAccepts& b) {
    return a.SerializeAsString() == b.SerializeAsString();
  };
  if (std::equal(executors.begin(), executors.end(),
                 published_executors_.begin(), published_executors_.end(),
                 same)) {
    return;
  }
  published_executors_ = std::move(executors);
  // Without a stream the next hello carries them.
  if (connected_) PushLocked(MakeExecutorsUpdate(published_executors_));
}

int WorkerCore::DesiredCreditsLocked() const {
  if (draining_) return 0;
  int free = pool_.FreeSlots() - static_cast<int>(unplaced_.size());
  if (options_.max_tasks > 0) {
    free = std::min(free, options_.max_tasks - static_cast<int>(runs_.size()));
  }
  return std::max(0, free);
}

void WorkerCore::RegrantLocked() {
  if (!connected_) return;  // the next hello carries them
  const int grant = DesiredCreditsLocked() - outstanding_credits_;
  if (grant <= 0) return;
  outstanding_credits_ += grant;
  PushLocked(MakeCredit(grant));
}

absl::Duration WorkerCore::RunDeadline(
    const crucible::v1::TaskSpec& spec) const {
  if (!spec.has_timeout()) return options_.run_deadline_without_timeout;
  return common::FromProtoDuration(spec.timeout()) +
         options_.run_deadline_margin;
}

}  // namespace worker
