#include "server/queue_service.h"

#include <atomic>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "common/proto_time.h"
#include "common/stream_write_queue.h"
#include "glog/logging.h"

namespace server {
namespace {

using crucible::v1::ConnectRequest;
using crucible::v1::ConnectResponse;

// One worker's stream. Reads one message at a time and applies it to the
// scheduler; the scheduler queues assignments and cancels through Send()
// and sends them with Flush() once per commit.
// One write in flight, the rest queued. Owns itself (see ReactorJobs): its
// cleanup closes the worker session, so Send is never called after delete.
// A stream that ends cancelled (the worker died or the network broke) rather
// than by the worker's half-close tells the scheduler the worker is lost.
class WorkerStream final
    : public grpc::ServerBidiReactor<ConnectRequest, ConnectResponse>,
      public WorkerSink {
 public:
  WorkerStream(Scheduler& scheduler, FleetAdmission* fleet, BlockingPool& pool,
               grpc::CallbackServerContext* ctx)
      : scheduler_(scheduler), fleet_(fleet), ctx_(ctx), jobs_(pool, [this] {
          EndSession();
          if (session_ != 0 && lost_.load()) scheduler_.WorkerLost(worker_id_);
          delete this;
        }) {
    StartRead(&request_);
  }

  // From the scheduler: queued until Flush, so that the assignments of one
  // commit can go out as one batch.
  void Send(ConnectResponse message) override {
    absl::MutexLock lock(&mu_);
    out_.Push(
        std::move(message));  // dropped once finishing: the lease will lapse
  }
  void Flush() override {
    absl::MutexLock lock(&mu_);
    WriteLocked();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the worker closed its side, or the stream broke
      jobs_.Run([this] { EndSession(); });
      FinishOnce(grpc::Status::OK);
      return;
    }
    // Applied right here: the scheduler does no disk I/O under its lock
    // (writes are queued to the outbox's writer), so this never waits for
    // more than an in-memory decision, and saves a thread hop per message.
    absl::Status s = Handle(request_);
    if (!s.ok()) {
      LOG(WARNING) << "worker stream " << worker_id_ << ": " << s;
      jobs_.Run([this] { EndSession(); });
      FinishOnce(common::ToGrpcStatus(s));
      return;
    }
    // Under mu_: once finished (say, by OnCancel) no new read may start.
    absl::MutexLock lock(&mu_);
    if (!out_.finishing()) StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    if (out_.OnWriteDone(ok, /*write_next=*/false)) WriteLocked();  // batches
  }

  void OnCancel() override {
    lost_ = true;
    jobs_.Run([this] { EndSession(); });
    FinishOnce(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    // Only now is it certain whether the worker got our status (a clean
    // end) or the call broke; the context is gone after this returns.
    if (ctx_->IsCancelled()) lost_ = true;
    jobs_.Done();
  }

 private:
  // Applies one worker message. A non-OK status ends the stream; refused
  // reports are answered with `rejected` and keep it open.
  absl::Status Handle(const ConnectRequest& req) {
    if (session_ == 0 && req.kind_case() != ConnectRequest::kHello) {
      return absl::InvalidArgumentError("first message must be hello");
    }
    switch (req.kind_case()) {
      case ConnectRequest::kHello: {
        if (session_ != 0) return absl::InvalidArgumentError("second hello");
        worker_id_ = req.hello().worker_id();
        {
          absl::MutexLock lock(&mu_);
          batches_ = req.hello().accepts_assignment_batches();
        }
        absl::StatusOr<int64_t> session =
            scheduler_.ConnectWorker(worker_id_, req.hello().credits(), this);
        if (!session.ok()) return session.status();
        session_ = *session;
        if (fleet_ != nullptr) {
          if (req.hello().publishes_executors()) {
            fleet_->Publish(worker_id_, session_,
                            {req.hello().executors().begin(),
                             req.hello().executors().end()});
          } else {
            fleet_->PublishUnknown(worker_id_, session_);
          }
        }
        return absl::OkStatus();
      }
      case ConnectRequest::kExecutors:
        if (fleet_ != nullptr) {
          fleet_->Publish(worker_id_, session_,
                          {req.executors().executors().begin(),
                           req.executors().executors().end()});
        }
        return absl::OkStatus();
      case ConnectRequest::kCredit:
        return scheduler_.AddCredits(session_, req.credit().credits());
      case ConnectRequest::kHeartbeat: {
        std::vector<std::string> ids(req.heartbeat().lease_ids().begin(),
                                     req.heartbeat().lease_ids().end());
        std::vector<crucible::v1::HeldLease> held(
            req.heartbeat().held_leases().begin(),
            req.heartbeat().held_leases().end());
        for (const std::string& stale :
             scheduler_.Heartbeat(session_, ids, held)) {
          Reject(stale, absl::FailedPreconditionError("lease is not live"));
        }
        return absl::OkStatus();
      }
      case ConnectRequest::kStarted:
        Reject(
            req.started().lease_id(),
            scheduler_.ReportStarted(
                req.started().lease_id(),
                req.started().has_start_time()
                    ? common::FromProtoTime(req.started().start_time())
                    : absl::InfinitePast(),
                req.started().limits().has_timeout()
                    ? std::optional<absl::Duration>(common::FromProtoDuration(
                          req.started().limits().timeout()))
                    : std::nullopt));
        return absl::OkStatus();
      case ConnectRequest::kOutput:
        Reject(req.output().lease_id(),
               scheduler_.ReportOutput(req.output().lease_id(),
                                       req.output().chunk()));
        return absl::OkStatus();
      case ConnectRequest::kCompletion:
        Reject(req.completion().lease_id(),
               scheduler_.ReportCompletion(req.completion()));
        return absl::OkStatus();
      case ConnectRequest::kCompletions:
        for (const crucible::v1::AttemptCompletion& c :
             req.completions().completions()) {
          Reject(c.lease_id(), scheduler_.ReportCompletion(c));
        }
        return absl::OkStatus();
      case ConnectRequest::kArtifact:
        Reject(req.artifact().lease_id(),
               scheduler_.ReportArtifact(req.artifact().lease_id(),
                                         req.artifact().chunk()));
        return absl::OkStatus();
      case ConnectRequest::KIND_NOT_SET:
        return absl::InvalidArgumentError("empty message");
    }
    return absl::InvalidArgumentError("unknown message");
  }

  // Answers a refused report with `rejected`; nothing if `s` is OK.
  void Reject(const std::string& lease_id, const absl::Status& s) {
    if (s.ok()) return;
    VLOG(1) << "worker " << worker_id_ << ": report for lease " << lease_id
            << " refused: " << s;
    ConnectResponse msg;
    msg.mutable_rejected()->set_lease_id(lease_id);
    msg.mutable_rejected()->set_code(static_cast<int>(s.code()));
    msg.mutable_rejected()->set_message(std::string(s.message()));
    Send(std::move(msg));
    Flush();  // at once: no commit to wait for
  }

  // Closes the worker session once; its leases run until their deadlines.
  void EndSession() {
    if (session_ != 0 && !ended_.exchange(true)) {
      if (fleet_ != nullptr) fleet_->Disconnected(worker_id_, session_);
      scheduler_.DisconnectWorker(session_);
    }
  }

  void WriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto& pending = out_.pending();
    if (out_.writing() || out_.finishing() || pending.empty()) return;
    // Assignments that queued up while the stream was busy go out as one
    // message to a worker that takes batches: one write and one read per
    // batch instead of per task.
    if (!batches_ || !pending.front().message.has_assignment() ||
        pending.size() < 2 || !pending[1].message.has_assignment()) {
      out_.Write();
      return;
    }
    ConnectResponse message;
    crucible::v1::AssignmentBatch& batch = *message.mutable_assignments();
    size_t bytes = 0;
    while (!pending.empty() && pending.front().message.has_assignment() &&
           batch.assignments_size() < kMaxBatch) {
      bytes += pending.front().message.assignment().ByteSizeLong();
      if (batch.assignments_size() > 0 && bytes > kMaxBatchBytes) break;
      *batch.add_assignments() =
          std::move(*pending.front().message.mutable_assignment());
      pending.pop_front();
    }
    out_.WriteThis(std::move(message));
  }
  void FinishOnce(grpc::Status status) {
    absl::MutexLock lock(&mu_);
    out_.Finish(std::move(status));
  }

  // Bounds of one AssignmentBatch: well under gRPC's 4 MiB message limit.
  static constexpr int kMaxBatch = 256;
  static constexpr size_t kMaxBatchBytes = 1 << 20;

  Scheduler& scheduler_;
  FleetAdmission* const fleet_;             // may be null
  grpc::CallbackServerContext* const ctx_;  // valid until OnDone returns
  std::atomic<bool> lost_{false};           // ended cancelled: no clean goodbye
  ConnectRequest request_;                  // touched only by the read side
  std::string worker_id_;                   // idem
  std::atomic<int64_t> session_{0};
  std::atomic<bool> ended_{false};
  absl::Mutex mu_;
  // More queued: gRPC may coalesce them into one send; the last of a run
  // goes without the hint, which flushes.
  common::StreamWriteQueue<WorkerStream, ConnectResponse> out_
      ABSL_GUARDED_BY(mu_){this, {.buffer_hint_while_queued = true}};
  bool batches_ ABSL_GUARDED_BY(mu_) =
      false;          // the worker takes AssignmentBatch
  ReactorJobs jobs_;  // last: its cleanup uses the fields above
};

}  // namespace

grpc::ServerBidiReactor<ConnectRequest, ConnectResponse>* QueueService::Connect(
    grpc::CallbackServerContext* ctx) {
  if (workers_ != nullptr) {
    if (grpc::Status refused = workers_->CheckCall(*ctx); !refused.ok()) {
      LOG(WARNING) << "QueueService: refused " << ctx->peer() << ": "
                   << refused.error_message();
      return new common::RefusedCall<
          grpc::ServerBidiReactor<ConnectRequest, ConnectResponse>>(refused);
    }
  }
  return new WorkerStream(scheduler_, fleet_, pool_, ctx);
}

}  // namespace server
