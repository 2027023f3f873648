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
ExecutorFleet::ExecutorFleet(FleetOptions options, ChannelOptions channel,
                             std::function<void()> on_change)
    : options_(std::move(options)),
      channel_(channel),
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
    mu_.AwaitWithTimeout(
        absl::Condition(
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
        ForgetUnlisted();
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
  pending->ctx.set_deadline(
      absl::ToChronoTime(absl::Now() + options_.check_deadline));
  grpc::health::v1::Health::Stub* health;
  {
    absl::MutexLock lock(&mu_);
    health = StubsLocked(address).health.get();
    ++pending_checks_;
  }
  health->async()->Check(
      &pending->ctx, &pending->request, &pending->response,
      [this, pending, address](grpc::Status status) {
        const bool serving = status.ok() && pending->response.status() ==
                                                HealthCheckResponse::SERVING;
        if (!serving) {
          VLOG(1) << "executor " << address << " not serving: "
                  << (status.ok() ? HealthCheckResponse::ServingStatus_Name(
                                        pending->response.status())
                                  : status.error_message());
        }
        delete pending;
        const bool was_healthy = pool_.InRotation(address);
        const bool slots_changed = pool_.CheckResult(address, serving);
        // SERVING does not always mean in rotation: one coming back waits
        // out the pool's rejoin window first.
        const bool healthy = pool_.InRotation(address);
        if (slots_changed || was_healthy != healthy) {
          if (was_healthy != healthy) {
            LOG(INFO) << "executor " << address
                      << (healthy ? " in rotation" : " out of rotation");
          }
          on_change_();
        } else if (serving && !healthy) {
          VLOG(1) << "executor " << address
                  << " SERVING, back in rotation after the rejoin window";
        }
        // Entering rotation (perhaps restarted with another policy), or
        // never described: ask what it accepts.
        bool describe;
        {
          absl::MutexLock lock(&mu_);
          describe = healthy && (!was_healthy || !accepts_.contains(address));
        }
        if (describe) StartDescribe(address);
        absl::MutexLock lock(&mu_);
        --pending_checks_;
      });
}

void ExecutorFleet::StartDescribe(const std::string& address) {
  struct Pending {
    grpc::ClientContext ctx;
    crucible::v1::DescribeRequest request;
    crucible::v1::DescribeResponse response;
  };
  auto* pending = new Pending;
  pending->ctx.set_deadline(
      absl::ToChronoTime(absl::Now() + options_.check_deadline));
  crucible::v1::ExecutorService::Stub* executor;
  {
    absl::MutexLock lock(&mu_);
    executor = StubsLocked(address).executor.get();
    ++pending_checks_;
  }
  executor->async()->Describe(
      &pending->ctx, &pending->request, &pending->response,
      [this, pending, address](grpc::Status status) {
        bool changed = false;
        if (!status.ok()) {
          // Described again when it next enters rotation.
          LOG(WARNING) << "executor " << address
                       << " did not say what it accepts: "
                       << status.error_message();
        } else {
          absl::MutexLock lock(&mu_);
          crucible::v1::ExecutorAccepts& known = accepts_[address];
          changed = known.SerializeAsString() !=
                    pending->response.accepts().SerializeAsString();
          known = pending->response.accepts();
        }
        delete pending;
        if (changed) {
          LOG(INFO) << "executor " << address << " described what it accepts";
          on_change_();
        }
        absl::MutexLock lock(&mu_);
        --pending_checks_;
      });
}

ExecutorFleet::Stubs& ExecutorFleet::StubsLocked(const std::string& address) {
  Stubs& stubs = stubs_[address];
  if (stubs.health == nullptr) {
    std::shared_ptr<grpc::Channel> channel =
        MakeWorkerChannel(address, channel_);
    stubs.health = grpc::health::v1::Health::NewStub(channel);
    stubs.executor = crucible::v1::ExecutorService::NewStub(channel);
  }
  return stubs;
}

std::vector<crucible::v1::ExecutorAccepts> ExecutorFleet::Accepts() const {
  absl::MutexLock lock(&mu_);
  std::vector<crucible::v1::ExecutorAccepts> accepts;
  accepts.reserve(accepts_.size());
  for (const auto& [address, a] : accepts_) accepts.push_back(a);
  return accepts;
}

void ExecutorFleet::ForgetUnlisted() {
  std::set<std::string> listed;
  for (const ExecutorView& v : pool_.Snapshot()) {
    if (v.listed) listed.insert(v.address);
  }
  absl::MutexLock lock(&mu_);
  std::erase_if(accepts_, [&](const auto& entry) {
    return !listed.contains(entry.first);
  });
}

}  // namespace worker
