#include "worker/executor_client.h"

#include <utility>

#include "common/grpc_status.h"
#include "glog/logging.h"

namespace worker {

void RunCall::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  // TryCancel does not block; holding the lock keeps ctx_ alive meanwhile.
  if (ctx_ != nullptr) ctx_->TryCancel();
}

bool RunCall::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

bool RunCall::Attach(grpc::ClientContext* ctx) {
  absl::MutexLock lock(&mu_);
  if (cancelled_) return false;
  ctx_ = ctx;
  return true;
}

void RunCall::Detach() {
  absl::MutexLock lock(&mu_);
  ctx_ = nullptr;
}

ExecutorClient::~ExecutorClient() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* pending) { return *pending == 0; }, &pending_cancels_));
}

crucible::v1::ExecutorService::Stub* ExecutorClient::StubFor(
    const std::string& address) {
  absl::MutexLock lock(&mu_);
  auto& stub = stubs_[address];
  if (stub == nullptr) {
    stub = crucible::v1::ExecutorService::NewStub(
        MakeWorkerChannel(address, options_.channel));
  }
  return stub.get();
}

absl::Status ExecutorClient::Run(
    const std::string& address, const crucible::v1::RunRequest& request,
    absl::Duration deadline, RunCall& call,
    const std::function<void(const crucible::v1::RunResponse&)>& on_event) {
  crucible::v1::ExecutorService::Stub* stub = StubFor(address);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  if (!call.Attach(&ctx))
    return absl::CancelledError("run cancelled before it started");
  std::unique_ptr<grpc::ClientReader<crucible::v1::RunResponse>> reader =
      stub->Run(&ctx, request);
  crucible::v1::RunResponse event;
  while (reader->Read(&event)) on_event(event);
  grpc::Status status = reader->Finish();
  call.Detach();
  return common::FromGrpcStatus(status);
}

void ExecutorClient::CancelAsync(const std::string& address,
                                 const std::string& run_id,
                                 std::function<void(absl::Status)> done) {
  crucible::v1::ExecutorService::Stub* stub = StubFor(address);
  // Lives until the callback; the destructor waits for every callback.
  struct Pending {
    grpc::ClientContext ctx;
    crucible::v1::CancelRequest request;
    crucible::v1::CancelResponse response;
  };
  auto* pending = new Pending;
  pending->ctx.set_deadline(
      absl::ToChronoTime(absl::Now() + options_.cancel_deadline));
  pending->request.set_run_id(run_id);
  {
    absl::MutexLock lock(&mu_);
    ++pending_cancels_;
  }
  stub->async()->Cancel(
      &pending->ctx, &pending->request, &pending->response,
      [this, pending, done = std::move(done)](grpc::Status status) {
        delete pending;
        done(common::FromGrpcStatus(status));
        absl::MutexLock lock(&mu_);
        --pending_cancels_;
      });
}

}  // namespace worker
