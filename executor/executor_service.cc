#include "executor/executor_service.h"

#include <memory>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "common/proto_time.h"
#include "common/stream_write_queue.h"
#include "common/trace.h"
#include "glog/logging.h"

namespace executor {
namespace {

using crucible::v1::RunRequest;
using crucible::v1::RunResponse;

// Output queued beyond this many bytes blocks the run's thread (flow
// control towards a slow caller).
constexpr size_t kMaxQueuedBytes = 4 << 20;

// One Run call. The run executes on thread_, which feeds messages into
// out_; reactions only start writes and Finish. Deleted in OnDone after
// joining thread_.
class RunReactor final : public grpc::ServerWriteReactor<RunResponse>,
                         public runner::RunSink {
 public:
  RunReactor(runner::Runner& runner, const RunRequest& request)
      : runner_(runner),
        request_(request),
        control_(std::make_shared<runner::RunControl>()) {
    thread_ = std::thread([this] { Body(); });
  }

  void OnStarted(const crucible::v1::RunStarted& started) override {
    RunResponse r;
    *r.mutable_started() = started;
    Enqueue(std::move(r));
  }

  void OnOutput(crucible::v1::OutputChunk chunk) override {
    RunResponse r;
    *r.mutable_output() = std::move(chunk);
    Enqueue(std::move(r));
  }

  void OnArtifact(crucible::v1::ArtifactChunk chunk) override {
    RunResponse r;
    *r.mutable_artifact() = std::move(chunk);
    Enqueue(std::move(r));
  }

  void OnWriteDone(bool ok) override {
    // The caller is gone: stop the run; nothing more is written, and the
    // stream finishes once the run has ended (Body).
    if (!ok) control_->Cancel();
    absl::MutexLock lock(&mu_);
    out_.OnWriteDone(ok);
  }

  void OnCancel() override {
    VLOG(1) << "run " << request_.run_id() << ": call cancelled by the caller";
    control_->Cancel();
    absl::MutexLock lock(&mu_);
    broken_ = true;
  }

  void OnDone() override {
    thread_.join();
    delete this;
  }

 private:
  void Body() {
    absl::StatusOr<crucible::v1::TaskResult> result =
        runner_.Run(request_, *this, control_);
    absl::MutexLock lock(&mu_);
    if (broken_) return out_.Finish(grpc::Status::CANCELLED);
    if (!result.ok())
      return out_.FinishAfterQueued(common::ToGrpcStatus(result.status()));
    RunResponse r;
    *r.mutable_finished() = *std::move(result);
    out_.Push(std::move(r));
    out_.FinishAfterQueued(grpc::Status::OK);
  }

  void Enqueue(RunResponse r) {
    absl::MutexLock lock(&mu_);
    auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return broken_ || out_.broken() || out_.queued_bytes() < kMaxQueuedBytes;
    };
    mu_.Await(absl::Condition(&room));
    if (broken_) return;
    const size_t bytes = r.ByteSizeLong();
    out_.Push(std::move(r), bytes);  // dropped after a failed write
    out_.Write();
  }

  runner::Runner& runner_;
  const RunRequest request_;
  const std::shared_ptr<runner::RunControl> control_;
  std::thread thread_;
  absl::Mutex mu_;
  // The stream finishes once the run has ended, even after a failed write.
  common::StreamWriteQueue<RunReactor, RunResponse> out_ ABSL_GUARDED_BY(mu_){
      this,
      {.on_failure = common::StreamWriteQueue<
           RunReactor, RunResponse>::OnWriteFailure::kWaitForFinish}};
  bool broken_ ABSL_GUARDED_BY(mu_) = false;  // the caller cancelled
};

}  // namespace

grpc::ServerWriteReactor<RunResponse>* ExecutorService::Run(
    grpc::CallbackServerContext* context, const RunRequest* request) {
  // One line per call with " task <id>" (every other line about the run
  // says "(task <id>"): the end-to-end tests count the calls by it.
  VLOG(1) << "Run " << request->run_id() << " "
          << common::TaskTag(request->task_id(), request->trace_id());
  if (grpc::Status refused = Admit(*context); !refused.ok()) {
    return new common::RefusedCall<grpc::ServerWriteReactor<RunResponse>>(
        refused);
  }
  return new RunReactor(runner_, *request);
}

grpc::ServerUnaryReactor* ExecutorService::Cancel(
    grpc::CallbackServerContext* context,
    const crucible::v1::CancelRequest* request,
    crucible::v1::CancelResponse* response) {
  VLOG(1) << "Cancel " << request->run_id();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (grpc::Status refused = Admit(*context); !refused.ok()) {
    reactor->Finish(refused);
    return reactor;
  }
  reactor->Finish(common::ToGrpcStatus(runner_.Cancel(request->run_id())));
  return reactor;
}

grpc::ServerUnaryReactor* ExecutorService::Describe(
    grpc::CallbackServerContext* context,
    const crucible::v1::DescribeRequest* request,
    crucible::v1::DescribeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (grpc::Status refused = Admit(*context); !refused.ok()) {
    reactor->Finish(refused);
    return reactor;
  }
  *response->mutable_accepts() = runner_.policy().Accepts();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::Status ExecutorService::Admit(
    const grpc::CallbackServerContext& context) const {
  if (clients_ == nullptr) return grpc::Status::OK;
  grpc::Status status = clients_->CheckCall(context);
  if (!status.ok()) {
    LOG(WARNING) << "refused " << context.peer() << ": "
                 << status.error_message();
  }
  return status;
}

}  // namespace executor
