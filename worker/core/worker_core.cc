// The worker core's stream side: hello, what is written and when
// (heartbeats, reports, half-close), back-pressure, drain, stop and
// readiness. Assignments and runs are in core_runs.cc.
#include "worker/core/worker_core.h"

#include <algorithm>
#include <utility>

#include "glog/logging.h"

namespace worker {

using crucible::v1::ConnectRequest;

namespace {

// Credits, heartbeats and executor updates belong to one stream (the next
// hello replaces them); reports survive it.
bool PerStream(const ConnectRequest& msg) {
  return msg.has_credit() || msg.has_heartbeat() || msg.has_executors();
}

}  // namespace

WorkerCore::WorkerCore(CoreOptions options, const common::Clock& clock,
                       ExecutorPool& pool, RunLauncher& launcher,
                       ReadinessCallback on_readiness)
    : options_(std::move(options)),
      clock_(clock),
      pool_(pool),
      launcher_(launcher),
      on_readiness_(std::move(on_readiness)),
      metrics_(options_.metrics != nullptr ? *options_.metrics
                                           : common::DefaultMetricsRegistry()) {
}

ConnectRequest WorkerCore::BeginStream(
    std::vector<crucible::v1::ExecutorAccepts> accepts, uint64_t& stream) {
  absl::MutexLock lock(&mu_);
  // A new stream: the server knows only what the hello says, so drop the
  // old stream's credits and heartbeats and offer the free slots afresh.
  for (auto it = outbound_.begin(); it != outbound_.end();) {
    if (!PerStream(*it)) {
      ++it;
      continue;
    }
    outbound_bytes_ -= std::min(outbound_bytes_, it->ByteSizeLong());
    it = outbound_.erase(it);
  }
  outstanding_credits_ = DesiredCreditsLocked();
  published_executors_ = std::move(accepts);
  stream = ++stream_;
  connected_ = false;
  going_away_ = false;
  return MakeHello(options_.worker_id, outstanding_credits_,
                   published_executors_);
}

void WorkerCore::StreamConnected(uint64_t stream) {
  absl::MutexLock lock(&mu_);
  if (stream != stream_) return;
  connected_ = true;
  RegrantLocked();  // slots that freed up since the hello was made
}

std::optional<ConnectRequest> WorkerCore::HelloWritten(uint64_t stream) {
  std::vector<crucible::v1::HeldLease> held;
  {
    absl::MutexLock lock(&mu_);
    if (StreamDoneLocked(stream)) return std::nullopt;
    next_heartbeat_ = clock_.Now() + options_.heartbeat_interval;
    held = HeldLeasesLocked();
    // Under the same lock as the check: EndStream cannot slip in between.
    readiness_.SetStreamUp(true);
  }
  UpdateReadiness();
  // Resuming: name at once the leases this worker still holds, with their
  // task and attempt, so they are extended, taken back by a restarted
  // server, or refused as lapsed, before any report under them.
  if (held.empty()) return std::nullopt;
  LOG(INFO) << "resuming " << held.size() << " running tasks on the new stream";
  return MakeResumeHeartbeat(held);
}

bool WorkerCore::StreamDoneLocked(uint64_t stream) const {
  return stop_ || stream != stream_ || !connected_;
}

WriteStep WorkerCore::NextWrite(uint64_t stream, absl::Duration max_wait) {
  absl::MutexLock lock(&mu_);
  auto ready = [this, stream]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !outbound_.empty() || StreamDoneLocked(stream) || going_away_ ||
           (stopping_ && runs_.empty()) || clock_.Now() >= next_heartbeat_;
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready),
                       std::min(max_wait, next_heartbeat_ - clock_.Now()));
  WriteStep step;
  if (StreamDoneLocked(stream)) {
    step.kind = WriteStep::Kind::kEnd;
    return step;
  }
  // Going away: nothing more for this server; what is queued goes to the
  // next. Stopping: half-close once every run is reported.
  if (going_away_ || (outbound_.empty() && stopping_ && runs_.empty())) {
    step.kind = WriteStep::Kind::kHalfClose;
    return step;
  }
  if (const absl::Time now = clock_.Now(); now >= next_heartbeat_) {
    next_heartbeat_ = now + options_.heartbeat_interval;
    std::vector<std::string> leases = LiveLeasesLocked();
    // Ahead of queued output: heartbeats keep the leases alive.
    if (!leases.empty()) outbound_.push_front(MakeHeartbeat(leases));
  }
  if (outbound_.empty()) return step;  // kIdle
  step.kind = WriteStep::Kind::kWrite;
  step.msg = std::move(outbound_.front());
  outbound_.pop_front();
  outbound_bytes_ -= std::min(outbound_bytes_, step.msg.ByteSizeLong());
  return step;
}

void WorkerCore::Written(ConnectRequest msg, bool ok) {
  absl::MutexLock lock(&mu_);
  if (ok) {
    if (msg.has_completion()) ended_unsent_.erase(msg.completion().lease_id());
    return;
  }
  // Not sent: a report goes out again on the next stream.
  if (PerStream(msg)) return;
  outbound_bytes_ += msg.ByteSizeLong();
  outbound_.push_front(std::move(msg));
}

bool WorkerCore::EndStream(uint64_t stream) {
  bool going_away;
  {
    absl::MutexLock lock(&mu_);
    if (stream != stream_) return false;
    connected_ = false;
    outstanding_credits_ = 0;
    going_away = going_away_;
    readiness_.SetStreamUp(false);
  }
  UpdateReadiness();
  return going_away;
}

void WorkerCore::StreamFailed(const absl::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    // OK: the server ended the stream (a graceful stop, a going-away).
    readiness_.SetStreamError(status.ok() ? "the server ended it"
                                          : status.ToString());
  }
  UpdateReadiness();
}

void WorkerCore::GoingAway() {
  absl::MutexLock lock(&mu_);
  if (connected_) going_away_ = true;
}

bool WorkerCore::stopping() const {
  absl::MutexLock lock(&mu_);
  return stop_ || stopping_;
}

void WorkerCore::StartDrain() {
  int running;
  {
    absl::MutexLock lock(&mu_);
    draining_ = true;
    running = static_cast<int>(runs_.size());
  }
  LOG(INFO) << "draining: no more credits; " << running << " running tasks";
}

bool WorkerCore::AwaitDraining(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&draining_), timeout);
}

bool WorkerCore::AwaitNoRuns(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return runs_.empty(); };
  return mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
}

void WorkerCore::BeginStop() {
  Effects fx;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    draining_ = true;
    std::vector<std::string> leases;
    for (auto& [lease, run] : runs_) leases.push_back(lease);
    for (const std::string& lease : leases) {
      Run& run = runs_.at(lease);
      if (run.cause == StopCause::kNone) run.cause = StopCause::kShutdown;
      if (run.executor.empty()) {
        EndUnplacedLocked(
            run, absl::CancelledError("stopped before it reached an executor"));
      } else {
        fx.cancel_calls.push_back(lease);
      }
    }
  }
  Apply(fx);
}

void WorkerCore::AwaitReported(absl::Duration timeout,
                               absl::Duration close_timeout) {
  // The writer half-closes once the runs are gone and their reports are
  // written; the server then ends the stream.
  absl::MutexLock lock(&mu_);
  auto reported = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return runs_.empty() && (outbound_.empty() || !connected_);
  };
  mu_.AwaitWithTimeout(absl::Condition(&reported), timeout);
  auto closed = [this]()
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !connected_; };
  mu_.AwaitWithTimeout(absl::Condition(&closed), close_timeout);
}

void WorkerCore::Stopped() {
  absl::MutexLock lock(&mu_);
  stop_ = true;
}

int WorkerCore::runs() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(runs_.size());
}

bool WorkerCore::holds(const std::string& lease) const {
  absl::MutexLock lock(&mu_);
  return runs_.contains(lease);
}

bool WorkerCore::draining() const {
  absl::MutexLock lock(&mu_);
  return draining_;
}

bool WorkerCore::ready(std::string* reason) const {
  absl::MutexLock lock(&mu_);
  if (reason != nullptr) *reason = readiness_.Reason();
  return readiness_.ready();
}

void WorkerCore::UpdateReadiness() {
  bool ready;
  std::string reason;
  {
    absl::MutexLock lock(&mu_);
    readiness_.SetExecutorsInRotation(pool_.InRotationCount());
    metrics_.SetExecutorsInRotation(pool_.InRotationCount());
    if (!readiness_.StartPublishing()) return;
    ready = readiness_.ready();
    reason = readiness_.Reason();
  }
  // Published without the lock; a change meanwhile is published next, by
  // this thread, so the health service ends with the current state.
  while (true) {
    LOG(INFO) << (ready ? "ready (SERVING): " : "not ready (NOT_SERVING): ")
              << reason;
    if (on_readiness_) on_readiness_(ready, reason);
    absl::MutexLock lock(&mu_);
    if (!readiness_.PublishedOne()) return;
    ready = readiness_.ready();
    reason = readiness_.Reason();
  }
}

bool WorkerCore::AwaitBlockedReportsForTest(int n, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto blocked = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return blocked_reports_ >= n;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&blocked), timeout);
}

void WorkerCore::EnqueueBlocking(ConnectRequest msg) {
  absl::MutexLock lock(&mu_);
  auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stop_ || outbound_bytes_ < options_.max_outbound_bytes;
  };
  if (!room()) {
    ++blocked_reports_;
    mu_.Await(absl::Condition(&room));
    --blocked_reports_;
  }
  PushLocked(std::move(msg));
}

void WorkerCore::PushLocked(ConnectRequest msg) {
  if (stop_) return;
  outbound_bytes_ += msg.ByteSizeLong();
  outbound_.push_back(std::move(msg));
}

std::vector<crucible::v1::HeldLease> WorkerCore::HeldLeasesLocked() const {
  std::vector<crucible::v1::HeldLease> held;
  for (const auto& [lease, run] : runs_) {
    if (!run.silenced) held.push_back(HeldLeaseOfRun(run));
  }
  for (const auto& [lease, h] : ended_unsent_) held.push_back(h);
  return held;
}

std::vector<std::string> WorkerCore::LiveLeasesLocked() const {
  std::vector<std::string> leases;
  for (const auto& [lease, run] : runs_) {
    if (!run.silenced) leases.push_back(lease);
  }
  return leases;
}

}  // namespace worker
