#include "worker/executor_fleet.h"

#include <grpcpp/grpcpp.h>

#include <set>
#include <utility>

#include "absl/strings/str_join.h"
#include "glog/logging.h"

namespace worker {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// Checks run on gRPC's callback threads and report to the pool, which
// is why the fleet, not the pool, owns the stubs.
ExecutorFleet::ExecutorFleet(FleetOptions options, std::function<void()> on_change)
    : options_(std::move(options)),
      on_change_(std::move(on_change)),
      pool_(options_.pool, common::Clock::Real(), gen_),
      discovery_(options_.discovery) {}

ExecutorFleet::~ExecutorFleet() { Stop(); }

void ExecutorFleet::Start() {
  const std::vector<std::string> addresses = discovery_.Resolve();
  LOG(INFO) << "executors: " << absl::StrJoin(addresses, ",");
  pool_.SetListed(addresses);
  // A first round of checks, so the first hello already offers the slots.
  for (const std::string& address : pool_.DueChecks()) StartCheck(address);
  {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(
                             +[](int* pending) { return *pending == 0; }, &pending_checks_),
                         options_.check_deadline + absl::Milliseconds(500));
  }
  thread_ = std::thread([this] { Loop(); });
}

void ExecutorFleet::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* pending) { return *pending == 0; }, &pending_checks_));
}

void ExecutorFleet::Loop() {
  absl::Time next_resolve = absl::Now() + options_.resolve_interval;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stop_), options_.tick)) return;
    }
    if (absl::Now() >= next_resolve) {
      next_resolve = absl::Now() + options_.resolve_interval;
      const std::vector<std::string> addresses = discovery_.Resolve();
      if (pool_.SetListed(addresses)) {
        LOG(INFO) << "executors now: " << absl::StrJoin(addresses, ",");
        on_change_();
      }
    }
    for (const std::string& address : pool_.DueChecks()) StartCheck(address);
  }
}

void ExecutorFleet::StartCheck(const std::string& address) {
  struct Pending {
    grpc::ClientContext ctx;
    HealthCheckRequest request;  // service "": the whole executor
    HealthCheckResponse response;
  };
  auto* pending = new Pending;
  pending->ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.check_deadline));
  grpc::health::v1::Health::Stub* stub;
  {
    absl::MutexLock lock(&mu_);
    auto& s = stubs_[address];
    if (s == nullptr) {
      s = grpc::health::v1::Health::NewStub(
          grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    }
    stub = s.get();
    ++pending_checks_;
  }
  stub->async()->Check(
      &pending->ctx, &pending->request, &pending->response,
      [this, pending, address](grpc::Status status) {
        const bool serving =
            status.ok() && pending->response.status() == HealthCheckResponse::SERVING;
        if (!serving) {
          VLOG(1) << "executor " << address << " not serving: "
                  << (status.ok()
                          ? HealthCheckResponse::ServingStatus_Name(pending->response.status())
                          : status.error_message());
        }
        delete pending;
        const bool was_healthy = [&] {
          for (const ExecutorView& v : pool_.Snapshot()) {
            if (v.address == address) return v.healthy;
          }
          return false;
        }();
        if (pool_.CheckResult(address, serving) || was_healthy != serving) {
          if (was_healthy != serving) {
            LOG(INFO) << "executor " << address << (serving ? " in rotation" : " out of rotation");
          }
          on_change_();
        }
        absl::MutexLock lock(&mu_);
        --pending_checks_;
      });
}

}  // namespace worker
