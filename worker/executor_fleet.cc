#include "worker/executor_fleet.h"

#include <grpcpp/grpcpp.h>

#include <set>
#include <utility>

#include "absl/strings/str_join.h"
#include "glog/logging.h"

namespace worker {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

namespace {

common::MetricFamily<common::Counter>& RotationChanges(
    common::MetricsRegistry* registry) {
  return (registry != nullptr ? *registry : common::DefaultMetricsRegistry())
      .AddCounter("crucible_worker_executor_rotation_changes_total",
                  "Executors that entered (in) or left (out) rotation: "
                  "their health checks began or stopped passing.",
                  {"change"});
}

}  // namespace

// Checks run on gRPC's callback threads and report to the pool, which
// is why the fleet, not the pool, owns the stubs.
ExecutorFleet::ExecutorFleet(
    FleetOptions options, ChannelOptions channel,
    std::function<void()> on_change,
    std::function<void(const std::set<std::string>&)> on_known)
    : options_(std::move(options)),
      channel_(channel),
      on_change_(std::move(on_change)),
      on_known_(std::move(on_known)),
      rotation_in_(RotationChanges(options_.metrics).WithLabels({"in"})),
      rotation_out_(RotationChanges(options_.metrics).WithLabels({"out"})),
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
  resolver_ = std::thread([this] { ResolveLoop(); });
}

void ExecutorFleet::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
  if (resolver_.joinable()) resolver_.join();
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* pending) { return *pending == 0; }, &pending_checks_));
}

void ExecutorFleet::Loop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stop_), options_.tick)) return;
    }
    for (const std::string& address : pool_.DueChecks()) StartCheck(address);
  }
}

void ExecutorFleet::ResolveLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stop_),
                               options_.resolve_interval)) {
        return;
      }
    }
    const std::vector<std::string> addresses = discovery_.Resolve();
    if (pool_.SetListed(addresses)) {
      LOG(INFO) << "executors now: " << absl::StrJoin(addresses, ",");
      on_change_();
    }
    // Also when the list did not change: an executor that left it may
    // have finished its last run since.
    ForgetUnlisted();
    if (on_known_) on_known_(Known());
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
  // Held until the answer: ForgetUnlisted may drop the address meanwhile.
  std::shared_ptr<Stubs> stubs;
  {
    absl::MutexLock lock(&mu_);
    stubs = StubsLocked(address);
    ++pending_checks_;
  }
  stubs->health->async()->Check(
      &pending->ctx, &pending->request, &pending->response,
      [this, pending, address, stubs](grpc::Status status) {
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
            (healthy ? rotation_in_ : rotation_out_).Increment();
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
  std::shared_ptr<Stubs> stubs;
  {
    absl::MutexLock lock(&mu_);
    stubs = StubsLocked(address);
    ++pending_checks_;
  }
  stubs->executor->async()->Describe(
      &pending->ctx, &pending->request, &pending->response,
      [this, pending, address, stubs](grpc::Status status) {
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

std::shared_ptr<ExecutorFleet::Stubs> ExecutorFleet::StubsLocked(
    const std::string& address) {
  std::shared_ptr<Stubs>& stubs = stubs_[address];
  if (stubs == nullptr) {
    stubs = std::make_shared<Stubs>();
    std::shared_ptr<grpc::Channel> channel =
        MakeWorkerChannel(address, channel_);
    stubs->health = grpc::health::v1::Health::NewStub(channel);
    stubs->executor = crucible::v1::ExecutorService::NewStub(channel);
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

std::set<std::string> ExecutorFleet::Known() const {
  std::set<std::string> known;
  for (const ExecutorView& v : pool_.Snapshot()) known.insert(v.address);
  return known;
}

std::set<std::string> ExecutorFleet::ChannelsForTest() const {
  absl::MutexLock lock(&mu_);
  std::set<std::string> out;
  for (const auto& [address, stubs] : stubs_) out.insert(address);
  return out;
}

void ExecutorFleet::ForgetUnlisted() {
  std::set<std::string> listed;
  std::set<std::string> known;
  for (const ExecutorView& v : pool_.Snapshot()) {
    known.insert(v.address);
    if (v.listed) listed.insert(v.address);
  }
  // Destroyed after the lock is released: closing a channel does I/O.
  std::vector<std::shared_ptr<Stubs>> dropped;
  absl::MutexLock lock(&mu_);
  std::erase_if(accepts_, [&](const auto& entry) {
    return !listed.contains(entry.first);
  });
  for (auto it = stubs_.begin(); it != stubs_.end();) {
    if (known.contains(it->first)) {
      ++it;
      continue;
    }
    VLOG(1) << "dropping the channel to executor " << it->first;
    dropped.push_back(std::move(it->second));
    it = stubs_.erase(it);
  }
}

}  // namespace worker
