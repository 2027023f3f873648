#include "worker/executor_client.h"

#include <utility>
#include <vector>

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

std::shared_ptr<ExecutorClient::Stub> ExecutorClient::StubFor(
    const std::string& address) {
  absl::MutexLock lock(&mu_);
  std::shared_ptr<Stub>& stub = stubs_[address];
  if (stub == nullptr) {
    stub = crucible::v1::ExecutorService::NewStub(
        MakeWorkerChannel(address, options_.channel));
  }
  return stub;
}

void ExecutorClient::Retain(const std::set<std::string>& addresses) {
  // Destroyed after the lock is released: closing a channel does I/O.
  std::vector<std::shared_ptr<Stub>> dropped;
  absl::MutexLock lock(&mu_);
  for (auto it = stubs_.begin(); it != stubs_.end();) {
    if (addresses.contains(it->first)) {
      ++it;
      continue;
    }
    VLOG(1) << "dropping the channel to executor " << it->first;
    dropped.push_back(std::move(it->second));
    it = stubs_.erase(it);
  }
}

std::set<std::string> ExecutorClient::ChannelsForTest() const {
  absl::MutexLock lock(&mu_);
  std::set<std::string> out;
  for (const auto& [address, stub] : stubs_) out.insert(address);
  return out;
}

absl::Status ExecutorClient::Run(
    const std::string& address, const crucible::v1::RunRequest& request,
    absl::Duration deadline, RunCall& call,
    const std::function<void(const crucible::v1::RunResponse&)>& on_event) {
  // Held for the call: Retain may drop the address's channel meanwhile.
  std::shared_ptr<Stub> stub = StubFor(address);
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
  std::shared_ptr<Stub> stub = StubFor(address);
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
      [this, pending, stub, done = std::move(done)](grpc::Status status) {
        delete pending;
        done(common::FromGrpcStatus(status));
        absl::MutexLock lock(&mu_);
        --pending_cancels_;
      });
}

}  // namespace worker
