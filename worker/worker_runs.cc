// Assignments: placing them on executors, running them, cancels, refusals
// and the credits that follow the free slots.
#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "glog/logging.h"
#include "worker/worker.h"

namespace worker {

using crucible::v1::ConnectRequest;

void Worker::StartRun(const crucible::v1::Assignment& assignment) {
  const std::string& lease = assignment.lease_id();
  VLOG(1) << "assignment: task " << assignment.task().id() << " attempt " << assignment.attempt()
          << " lease " << lease;
  absl::MutexLock lock(&mu_);
  outstanding_credits_ = std::max(0, outstanding_credits_ - 1);
  if (runs_.contains(lease)) {
    LOG(WARNING) << "duplicate assignment of lease " << lease << " ignored";
    return;
  }
  std::optional<absl::Status> refusal;
  if (draining_) {
    // Credits granted before the drain cannot be taken back; give the
    // attempt back at once so the server runs it elsewhere.
    refusal = absl::UnavailableError("worker is draining");
  } else if (options_.max_tasks > 0 && static_cast<int>(runs_.size()) >= options_.max_tasks) {
    refusal = absl::ResourceExhaustedError("worker has no free slot");
  }
  if (refusal.has_value()) {
    LOG(WARNING) << "refusing lease " << lease << ": " << *refusal;
    PushLocked(MakeCompletion(lease, *refusal, std::nullopt, StopCause::kNone, ""));
    return;
  }
  auto run = std::make_shared<ActiveRun>();
  run->assignment = assignment;
  run->lease_id = lease;
  runs_[lease] = run;
  unplaced_.push_back(lease);
  // Started under the lock so that the run's final step, which takes it,
  // sees run->thread assigned.
  run->thread = std::thread([this, run] { RunOne(run); });
}

bool Worker::Place(ActiveRun& run) {
  const absl::Time deadline = absl::Now() + options_.placement_timeout;
  bool waited = false;
  absl::MutexLock lock(&mu_);
  while (true) {
    const bool ended = run.silenced || run.cause != StopCause::kNone;
    // First come, first placed: the server sent them in priority order.
    if (!ended && unplaced_.front() == run.lease_id) {
      absl::StatusOr<std::string> executor = fleet_.pool().Acquire();
      if (executor.ok()) {
        run.executor = *executor;
        unplaced_.pop_front();
        ++capacity_generation_;  // the next in line may go
        if (waited) LOG(INFO) << "lease " << run.lease_id << " placed after waiting";
        return true;
      }
    }
    if (ended || absl::Now() >= deadline) {
      unplaced_.erase(std::find(unplaced_.begin(), unplaced_.end(), run.lease_id));
      ++capacity_generation_;
      absl::Status why = ended ? absl::CancelledError("stopped before it reached an executor")
                               : absl::UnavailableError(absl::StrCat(
                                     "no executor had a free slot within ",
                                     absl::FormatDuration(options_.placement_timeout)));
      LOG_IF(WARNING, !ended) << "lease " << run.lease_id << ": " << why;
      EndRunLocked(run,
                   MakeCompletion(run.lease_id, why, std::nullopt, run.cause, run.cancel_reason));
      return false;
    }
    // Wait for a slot to free up, an executor to come back, or an end.
    waited = true;
    const uint64_t generation = capacity_generation_;
    auto changed = [this, &run, generation]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return capacity_generation_ != generation || run.silenced || run.cause != StopCause::kNone;
    };
    // Executors marked full come back by time alone: look again then.
    mu_.AwaitWithDeadline(absl::Condition(&changed),
                          std::min(deadline, absl::Now() + options_.fleet.pool.full_backoff));
  }
}

void Worker::RunOne(std::shared_ptr<ActiveRun> run) {
  const crucible::v1::RunRequest request = MakeRunRequest(run->assignment);
  std::optional<crucible::v1::TaskResult> result;
  absl::Status status;
  while (true) {
    if (!Place(*run)) return;
    bool any_event = false;
    status = executors_.Run(run->executor, request, RunDeadline(request.spec()), run->call,
                            [&](const crucible::v1::RunResponse& event) {
                              any_event = true;
                              if (event.has_finished()) {
                                result = event.finished();
                                return;
                              }
                              std::optional<ConnectRequest> report =
                                  RelayRunEvent(run->lease_id, event);
                              if (!report.has_value()) return;
                              {
                                absl::MutexLock lock(&mu_);
                                if (run->silenced) return;
                              }
                              Enqueue(*std::move(report), /*may_block=*/true);
                            });
    if (status.code() != absl::StatusCode::kResourceExhausted || any_event) break;
    // The executor is full (another worker fills it too): try another one
    // rather than spend the task's attempt.
    fleet_.pool().Release(run->executor, /*reached=*/true);
    fleet_.pool().MarkFull(run->executor);
    absl::MutexLock lock(&mu_);
    VLOG(1) << "lease " << run->lease_id << ": executor " << run->executor
            << " is full; placing it again";
    run->executor.clear();
    unplaced_.push_front(run->lease_id);  // it was first before
  }
  // UNAVAILABLE: the executor could not be reached, died mid-run, or is
  // shutting down. Either way the attempt is reported at once as retryable
  // and the executor counts a failure (enough of them take it out).
  const bool reached = status.code() != absl::StatusCode::kUnavailable;
  fleet_.pool().Release(run->executor, reached);
  if (!reached && !result.has_value()) {
    LOG(WARNING) << "lease " << run->lease_id << ": executor " << run->executor
                 << " lost: " << status;
    status = absl::UnavailableError(
        absl::StrCat("executor ", run->executor, " lost: ", status.message()));
  }
  {
    absl::MutexLock lock(&mu_);
    VLOG(1) << "run of lease " << run->lease_id << " on " << run->executor << " ended: " << status;
    EndRunLocked(*run,
                 MakeCompletion(run->lease_id, status, result, run->cause, run->cancel_reason));
  }
  UpdateReadiness();  // failed runs may have taken the executor out of rotation
}

void Worker::EndRunLocked(ActiveRun& run, ConnectRequest completion) {
  if (!run.silenced && !stop_) {
    PushLocked(std::move(completion));
    ended_unsent_[run.lease_id] = HeldLeaseOf(run.assignment);
  }
  run.completed = true;
  finished_.push_back(std::move(run.thread));
  ++capacity_generation_;
  // Keeps `run` alive until here: runs_ holds the last reference but one.
  std::shared_ptr<ActiveRun> keep = runs_[run.lease_id];
  runs_.erase(run.lease_id);
  RegrantLocked();  // the slot is free again
}

void Worker::CancelFromServer(const crucible::v1::AssignmentCancel& cancel) {
  std::shared_ptr<ActiveRun> run;
  std::string executor;
  {
    absl::MutexLock lock(&mu_);
    auto it = runs_.find(cancel.lease_id());
    if (it == runs_.end()) {
      LOG(INFO) << "cancel of unknown lease " << cancel.lease_id() << " ignored";
      return;
    }
    run = it->second;
    if (run->cause == StopCause::kNone) {
      run->cause = StopCause::kServerCancel;
      run->cancel_reason = cancel.reason();
    }
    executor = run->executor;
    ++capacity_generation_;  // wakes it if it waits for an executor
  }
  LOG(INFO) << "server cancelled lease " << run->lease_id << ": " << cancel.reason();
  if (executor.empty()) return;  // not placed yet: Place ends it
  // The executor kills the container and ends Run with finished{CANCELLED}.
  // If it cannot (not reachable, run not registered yet), cancelling our
  // Run call kills the container too.
  executors_.CancelAsync(executor, run->lease_id, [run](absl::Status s) {
    if (s.ok()) return;
    LOG(WARNING) << "executor Cancel of " << run->lease_id << ": " << s
                 << "; cancelling the Run call instead";
    run->call.Cancel();
  });
}

void Worker::OnRejected(const crucible::v1::ReportRejected& rejected) {
  LOG(WARNING) << "server rejected a report on lease " << rejected.lease_id() << " ("
               << absl::StatusCodeToString(static_cast<absl::StatusCode>(rejected.code())) << ": "
               << rejected.message() << "); abandoning that run";
  std::shared_ptr<ActiveRun> run;
  {
    absl::MutexLock lock(&mu_);
    auto it = runs_.find(rejected.lease_id());
    if (it == runs_.end()) return;
    run = it->second;
    run->silenced = true;
    ++capacity_generation_;
  }
  run->call.Cancel();
}

void Worker::CancelAllRuns() {
  std::vector<std::shared_ptr<ActiveRun>> runs;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [lease, run] : runs_) {
      if (run->cause == StopCause::kNone) run->cause = StopCause::kShutdown;
      runs.push_back(run);
    }
    ++capacity_generation_;
  }
  for (auto& run : runs) run->call.Cancel();
}

void Worker::OnCapacityChange() {
  std::vector<crucible::v1::ExecutorAccepts> executors = fleet_.Accepts();
  {
    absl::MutexLock lock(&mu_);
    ++capacity_generation_;
    RegrantLocked();
    PublishExecutorsLocked(std::move(executors));
  }
  UpdateReadiness();
}

void Worker::PublishExecutorsLocked(std::vector<crucible::v1::ExecutorAccepts> executors) {
  auto same = [](const crucible::v1::ExecutorAccepts& a, const crucible::v1::ExecutorAccepts& b) {
    return a.SerializeAsString() == b.SerializeAsString();
  };
  if (std::equal(executors.begin(), executors.end(), published_executors_.begin(),
                 published_executors_.end(), same)) {
    return;
  }
  published_executors_ = std::move(executors);
  // Without a stream the next hello carries them.
  if (conn_ != nullptr) PushLocked(MakeExecutorsUpdate(published_executors_));
}

int Worker::DesiredCreditsLocked() const {
  if (draining_) return 0;
  int free = fleet_.pool().FreeSlots() - static_cast<int>(unplaced_.size());
  if (options_.max_tasks > 0) {
    free = std::min(free, options_.max_tasks - static_cast<int>(runs_.size()));
  }
  return std::max(0, free);
}

void Worker::RegrantLocked() {
  if (conn_ == nullptr) return;  // the next hello carries them
  const int grant = DesiredCreditsLocked() - outstanding_credits_;
  if (grant <= 0) return;
  outstanding_credits_ += grant;
  PushLocked(MakeCredit(grant));
}

absl::Duration Worker::RunDeadline(const crucible::v1::TaskSpec& spec) const {
  if (!spec.has_timeout()) return options_.run_deadline_without_timeout;
  return common::FromProtoDuration(spec.timeout()) + options_.run_deadline_margin;
}

}  // namespace worker
