#include "tests/worker/fake_services.h"

#include <algorithm>

namespace worker_test {

using crucible::v1::ConnectRequest;
using crucible::v1::ConnectResponse;

grpc::Status FakeQueue::Connect(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<ConnectResponse, ConnectRequest>* stream) {
  {
    absl::MutexLock lock(&mu_);
    ++connects_;
    ctx_ = ctx;
    stream_ = stream;
  }
  ConnectRequest req;
  while (stream->Read(&req)) {
    absl::MutexLock lock(&mu_);
    received_.push_back(req);
  }
  absl::MutexLock lock(&mu_);
  ctx_ = nullptr;
  stream_ = nullptr;
  ++stream_ends_;
  return grpc::Status::OK;
}

int FakeQueue::stream_ends() const {
  absl::MutexLock lock(&mu_);
  return stream_ends_;
}

bool FakeQueue::WaitForStreamEnds(int n, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stream_ends_ >= n;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
}

bool FakeQueue::Send(const ConnectResponse& msg) {
  absl::MutexLock lock(&mu_);  // a test fake: writing under the lock is fine
  return stream_ != nullptr && stream_->Write(msg);
}

void FakeQueue::Drop() {
  absl::MutexLock lock(&mu_);
  if (ctx_ != nullptr) ctx_->TryCancel();
}

bool FakeQueue::WaitFor(const std::function<bool(const Messages&)>& pred,
                        absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return pred(received_);
  };
  return mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
}

FakeQueue::Messages FakeQueue::Received() const {
  absl::MutexLock lock(&mu_);
  return received_;
}

int FakeQueue::connects() const {
  absl::MutexLock lock(&mu_);
  return connects_;
}

void FakeExecutor::set_mode(Mode mode, grpc::StatusCode error_code) {
  absl::MutexLock lock(&mu_);
  mode_ = mode;
  error_code_ = error_code;
}

grpc::Status FakeExecutor::Run(
    grpc::ServerContext* ctx, const crucible::v1::RunRequest* request,
    grpc::ServerWriter<crucible::v1::RunResponse>* writer) {
  Mode mode;
  grpc::StatusCode code;
  {
    absl::MutexLock lock(&mu_);
    runs_.push_back(*request);
    active_.insert(request->run_id());
    mode = mode_;
    code = error_code_;
  }
  if (mode == Mode::kError) {
    absl::MutexLock lock(&mu_);
    active_.erase(request->run_id());
    return grpc::Status(code, "scripted failure");
  }
  crucible::v1::RunResponse msg;
  msg.mutable_started()->set_container_id("c-" + request->run_id());
  msg.mutable_started()->mutable_start_time()->set_seconds(1'700'000'000);
  writer->Write(msg);
  crucible::v1::TaskResult result;
  if (mode == Mode::kScript) {
    int64_t offset = 0;
    for (auto [stream, data] :
         {std::pair{crucible::v1::OUTPUT_STREAM_STDOUT, "hello\n"},
          std::pair{crucible::v1::OUTPUT_STREAM_STDERR, "oops\n"}}) {
      msg.Clear();
      msg.mutable_output()->set_stream(stream);
      msg.mutable_output()->set_data(data);
      msg.mutable_output()->set_offset(offset);
      msg.mutable_output()->set_attempt(request->attempt());
      offset += std::string(data).size();
      writer->Write(msg);
    }
    result.set_reason(crucible::v1::TERMINATION_REASON_EXITED);
    result.set_exit_code(3);
  } else {
    // Until Cancel(run_id) or the client cancels the call.
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !active_.contains(request->run_id()) || ctx->IsCancelled() ||
             finish_.contains(request->run_id());
    };
    while (
        !mu_.AwaitWithTimeout(absl::Condition(&done), absl::Milliseconds(20))) {
    }
    if (ctx->IsCancelled()) {
      call_cancelled_.push_back(request->run_id());
      active_.erase(request->run_id());
      return grpc::Status::CANCELLED;
    }
    if (finish_.contains(request->run_id())) {
      result.set_reason(crucible::v1::TERMINATION_REASON_EXITED);
      result.set_exit_code(0);
    } else {
      result.set_reason(crucible::v1::TERMINATION_REASON_CANCELLED);
    }
  }
  {
    absl::MutexLock lock(&mu_);
    active_.erase(request->run_id());
  }
  msg.Clear();
  *msg.mutable_finished() = result;
  writer->Write(msg);
  return grpc::Status::OK;
}

grpc::Status FakeExecutor::Cancel(grpc::ServerContext* ctx,
                                  const crucible::v1::CancelRequest* request,
                                  crucible::v1::CancelResponse* response) {
  absl::MutexLock lock(&mu_);
  cancels_.push_back(request->run_id());
  if (active_.erase(request->run_id()) == 0)
    return grpc::Status(grpc::NOT_FOUND, "no such run");
  return grpc::Status::OK;
}

grpc::Status FakeExecutor::Describe(
    grpc::ServerContext* ctx, const crucible::v1::DescribeRequest* request,
    crucible::v1::DescribeResponse* response) {
  absl::MutexLock lock(&mu_);
  response->mutable_accepts()->set_executor_id(executor_id_);
  response->mutable_accepts()->add_image_prefixes("localhost/crucible/");
  return grpc::Status::OK;
}

void FakeExecutor::set_executor_id(const std::string& id) {
  absl::MutexLock lock(&mu_);
  executor_id_ = id;
}

void FakeExecutor::Finish(const std::string& run_id) {
  absl::MutexLock lock(&mu_);
  finish_.insert(run_id);
}

std::vector<crucible::v1::RunRequest> FakeExecutor::runs() const {
  absl::MutexLock lock(&mu_);
  return runs_;
}

std::vector<std::string> FakeExecutor::cancels() const {
  absl::MutexLock lock(&mu_);
  return cancels_;
}

std::vector<std::string> FakeExecutor::call_cancelled() const {
  absl::MutexLock lock(&mu_);
  return call_cancelled_;
}

bool FakeExecutor::WaitForRuns(size_t n, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return runs_.size() >= n;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
}

bool FakeExecutor::WaitForCallCancelled(const std::string& run_id,
                                        absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return std::find(call_cancelled_.begin(), call_cancelled_.end(), run_id) !=
           call_cancelled_.end();
  };
  return mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
}

}  // namespace worker_test
