#include "worker/worker.h"

#include <grpcpp/grpcpp.h>

#include "absl/random/random.h"
#include "glog/logging.h"

namespace worker {

Worker::Worker(WorkerOptions options)
    : options_(std::move(options)),
      stub_(crucible::v1::QueueService::NewStub(
          grpc::CreateChannel(options_.server_address, grpc::InsecureChannelCredentials()))),
      executors_(ExecutorClient::Options{options_.cancel_deadline}),
      pool_(options_.executors) {}

Worker::~Worker() { Stop(); }

void Worker::Start() {
  loop_ = std::thread([this] { Loop(); });
}

void Worker::Stop() {
  std::shared_ptr<QueueSession> session;
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    session = session_;
  }
  if (session != nullptr) session->Stop();
  if (loop_.joinable()) loop_.join();
}

void Worker::Loop() {
  absl::BitGen gen;
  Backoff backoff(options_.reconnect_backoff, gen);
  while (true) {
    auto session = std::make_shared<QueueSession>(options_.session, *stub_, executors_, pool_);
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return;
      session_ = session;
    }
    LOG(INFO) << "connecting to " << options_.server_address << " as "
              << options_.session.worker_id << " with " << options_.session.slots
              << " slots";
    const absl::Time start = absl::Now();
    absl::Status status = session->Run();
    {
      absl::MutexLock lock(&mu_);
      session_.reset();
      if (stop_) return;
    }
    if (absl::Now() - start >= options_.backoff_reset_after) backoff.Reset();
    const absl::Duration delay = backoff.Next();
    LOG(WARNING) << "server stream ended (" << status
                 << "); its runs were cancelled; reconnecting in " << delay;
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stop_), delay);
    if (stop_) return;
  }
}

}  // namespace worker
