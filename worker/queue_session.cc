#include "worker/queue_session.h"

#include <optional>
#include <utility>

#include "common/grpc_status.h"
#include "common/proto_time.h"
#include "glog/logging.h"

namespace worker {

using crucible::v1::ConnectRequest;
using crucible::v1::ConnectResponse;

// One assignment being run. Fields other than the constants are guarded by
// the session's mu_.
struct QueueSession::ActiveRun {
  crucible::v1::Assignment assignment;
  std::string lease_id;
  std::string executor;  // address it runs on
  RunCall call;          // thread-safe by itself
  StopCause cause = StopCause::kNone;
  std::string cancel_reason;
  bool silenced = false;   // the server rejected a report: no more reports
  bool completed = false;  // completion queued: no more heartbeats
  std::thread thread;
};

QueueSession::QueueSession(SessionOptions options, crucible::v1::QueueService::Stub& stub,
                           ExecutorClient& executors, ExecutorPool& pool)
    : options_(std::move(options)), stub_(stub), executors_(executors), pool_(pool) {}

QueueSession::~QueueSession() {
  // Run() joins everything; this only covers a session that never ran.
  if (writer_.joinable()) writer_.join();
}

absl::Status QueueSession::Run() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || started_) return absl::CancelledError("session stopped");
    started_ = true;
    PushLocked(MakeHello(options_.worker_id, options_.slots));
  }
  stream_ = stub_.Connect(&ctx_);
  writer_ = std::thread([this] { WriterLoop(); });

  ConnectResponse msg;
  while (stream_->Read(&msg)) {
    Handle(msg);
    ReapFinished();
  }
  {
    absl::MutexLock lock(&mu_);
    reader_done_ = true;
  }
  // The stream is over: nothing of ours can be reported any more.
  StopAllRuns();
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](std::map<std::string, std::shared_ptr<ActiveRun>>* runs) { return runs->empty(); },
        &runs_));
    writer_stop_ = true;
  }
  ReapFinished();
  writer_.join();
  return common::FromGrpcStatus(stream_->Finish());
}

void QueueSession::Stop() {
  bool started;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    started = started_;
  }
  if (!started) return;  // Run() will see stopping_ and return at once
  StopAllRuns();
  {
    // The writer half-closes once the runs are gone and their reports are
    // written; the server then ends the stream.
    absl::MutexLock lock(&mu_);
    auto closed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return writer_closed_ || reader_done_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&closed), options_.stop_grace);
    auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return reader_done_; };
    mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(2));
  }
  ctx_.TryCancel();  // in case the server keeps the stream open
}

void QueueSession::WriterLoop() {
  absl::Time next_heartbeat = absl::Now() + options_.heartbeat_interval;
  bool half_close = false;
  while (true) {
    ConnectRequest msg;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !outbound_.empty() || writer_stop_ || (stopping_ && runs_.empty());
      };
      mu_.AwaitWithDeadline(absl::Condition(&ready), next_heartbeat);
      if (writer_stop_) break;
      if (outbound_.empty() && stopping_ && runs_.empty()) {
        half_close = true;
        break;
      }
      if (absl::Now() >= next_heartbeat) {
        next_heartbeat = absl::Now() + options_.heartbeat_interval;
        std::vector<std::string> leases = HeartbeatLeasesLocked();
        // Ahead of queued output: heartbeats keep the leases alive.
        if (!leases.empty()) outbound_.push_front(MakeHeartbeat(leases));
      }
      if (outbound_.empty()) continue;
      msg = std::move(outbound_.front());
      outbound_.pop_front();
      outbound_bytes_ -= std::min(outbound_bytes_, msg.ByteSizeLong());
    }
    if (!stream_->Write(msg)) {
      ctx_.TryCancel();  // the stream is broken; make sure the reader wakes
      break;
    }
  }
  if (half_close) stream_->WritesDone();
  absl::MutexLock lock(&mu_);
  writer_closed_ = true;
  outbound_.clear();
  outbound_bytes_ = 0;
}

void QueueSession::Handle(const ConnectResponse& msg) {
  switch (msg.kind_case()) {
    case ConnectResponse::kAssignment:
      StartRun(msg.assignment());
      break;
    case ConnectResponse::kCancel:
      CancelFromServer(msg.cancel());
      break;
    case ConnectResponse::kRejected:
      OnRejected(msg.rejected());
      break;
    default:
      LOG(WARNING) << "ignoring an empty message from the server";
  }
}

void QueueSession::StartRun(const crucible::v1::Assignment& assignment) {
  const std::string& lease = assignment.lease_id();
  VLOG(1) << "assignment: task " << assignment.task().id() << " attempt "
          << assignment.attempt() << " lease " << lease;
  std::optional<ConnectRequest> refusal;
  {
    absl::MutexLock lock(&mu_);
    if (runs_.contains(lease)) {
      LOG(WARNING) << "duplicate assignment of lease " << lease << " ignored";
      return;
    }
    if (stopping_ || static_cast<int>(runs_.size()) >= options_.slots) {
      // The server sent more than the credits allow (or we are stopping):
      // give the attempt back as retryable.
      refusal = MakeCompletion(lease, absl::ResourceExhaustedError("worker has no free slot"),
                               std::nullopt, StopCause::kNone, "");
    }
  }
  absl::StatusOr<std::string> executor = pool_.Acquire();
  if (!refusal.has_value() && !executor.ok()) {
    refusal = MakeCompletion(lease, executor.status(), std::nullopt, StopCause::kNone, "");
  }
  if (refusal.has_value()) {
    if (executor.ok()) pool_.Release(*executor);
    LOG(WARNING) << "refusing lease " << lease;
    Enqueue(*std::move(refusal), /*may_block=*/false);
    return;
  }
  auto run = std::make_shared<ActiveRun>();
  run->assignment = assignment;
  run->lease_id = lease;
  run->executor = *executor;
  absl::MutexLock lock(&mu_);
  runs_[lease] = run;
  // Started under the lock so that RunOne's final step, which takes it,
  // sees run->thread assigned.
  run->thread = std::thread([this, run] { RunOne(run); });
}

void QueueSession::RunOne(std::shared_ptr<ActiveRun> run) {
  const crucible::v1::RunRequest request = MakeRunRequest(run->assignment);
  std::optional<crucible::v1::TaskResult> result;
  absl::Status status = executors_.Run(
      run->executor, request, RunDeadline(request.spec()), run->call,
      [&](const crucible::v1::RunResponse& event) {
        if (event.has_finished()) {
          result = event.finished();
          return;
        }
        std::optional<ConnectRequest> report = RelayRunEvent(run->lease_id, event);
        if (!report.has_value()) return;
        {
          absl::MutexLock lock(&mu_);
          if (run->silenced) return;
        }
        Enqueue(*std::move(report), /*may_block=*/true);
      });
  pool_.Release(run->executor);
  absl::MutexLock lock(&mu_);
  VLOG(1) << "run of lease " << run->lease_id << " ended: " << status;
  if (!run->silenced) {
    PushLocked(MakeCompletion(run->lease_id, status, result, run->cause, run->cancel_reason));
  }
  run->completed = true;
  PushLocked(MakeCredit(1));  // the slot is free again
  runs_.erase(run->lease_id);
  finished_.push_back(std::move(run->thread));
}

void QueueSession::CancelFromServer(const crucible::v1::AssignmentCancel& cancel) {
  std::shared_ptr<ActiveRun> run;
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
  }
  LOG(INFO) << "server cancelled lease " << run->lease_id << ": " << cancel.reason();
  // The executor kills the container and ends Run with finished{CANCELLED}.
  // If it cannot (not reachable, run not registered yet), cancelling our
  // Run call kills the container too.
  executors_.CancelAsync(run->executor, run->lease_id, [run](absl::Status s) {
    if (s.ok()) return;
    LOG(WARNING) << "executor Cancel of " << run->lease_id << ": " << s
                 << "; cancelling the Run call instead";
    run->call.Cancel();
  });
}

void QueueSession::OnRejected(const crucible::v1::ReportRejected& rejected) {
  LOG(WARNING) << "server rejected a report on lease " << rejected.lease_id() << " ("
               << absl::StatusCodeToString(static_cast<absl::StatusCode>(rejected.code()))
               << ": " << rejected.message() << "); abandoning that run";
  std::shared_ptr<ActiveRun> run;
  {
    absl::MutexLock lock(&mu_);
    auto it = runs_.find(rejected.lease_id());
    if (it == runs_.end()) return;
    run = it->second;
    run->silenced = true;
  }
  run->call.Cancel();
}

void QueueSession::StopAllRuns() {
  std::vector<std::shared_ptr<ActiveRun>> runs;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [lease, run] : runs_) {
      if (run->cause == StopCause::kNone) run->cause = StopCause::kShutdown;
      runs.push_back(run);
    }
  }
  for (auto& run : runs) run->call.Cancel();
}

void QueueSession::ReapFinished() {
  std::vector<std::thread> finished;
  {
    absl::MutexLock lock(&mu_);
    finished.swap(finished_);
  }
  for (std::thread& t : finished) t.join();
}

void QueueSession::Enqueue(ConnectRequest msg, bool may_block) {
  absl::MutexLock lock(&mu_);
  if (may_block) {
    auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return writer_closed_ || outbound_bytes_ < options_.max_outbound_bytes;
    };
    mu_.Await(absl::Condition(&room));
  }
  PushLocked(std::move(msg));
}

void QueueSession::PushLocked(ConnectRequest msg) {
  if (writer_closed_) return;
  outbound_bytes_ += msg.ByteSizeLong();
  outbound_.push_back(std::move(msg));
}

std::vector<std::string> QueueSession::HeartbeatLeasesLocked() const {
  std::vector<std::string> leases;
  for (const auto& [lease, run] : runs_) {
    if (!run->silenced && !run->completed) leases.push_back(lease);
  }
  return leases;
}

absl::Duration QueueSession::RunDeadline(const crucible::v1::TaskSpec& spec) const {
  if (!spec.has_timeout()) return options_.run_deadline_without_timeout;
  return common::FromProtoDuration(spec.timeout()) + options_.run_deadline_margin;
}

}  // namespace worker
