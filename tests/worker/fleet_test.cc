// ExecutorFleet and ExecutorClient against fake executors on real gRPC
// servers (127.0.0.1, ephemeral ports), with discovery's DNS lookup
// injected: a hung lookup does not hold up health checks, and the channels
// of executors discovery no longer lists are dropped. Waits are on the
// fleet's callbacks, never sleeps.
#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/testing/http_get.h"
#include "tests/worker/fake_services.h"
#include "worker/executor_client.h"
#include "worker/executor_fleet.h"

namespace worker {
namespace {

// A fake executor on its own server, with the standard health service.
struct Executor {
  Executor() {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
    address = absl::StrCat("127.0.0.1:", port);
  }
  ~Executor() {
    server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  }
  void SetServing(bool serving) {
    server->GetHealthCheckService()->SetServingStatus(serving);
  }
  worker_test::FakeExecutor service;
  int port = 0;
  std::unique_ptr<grpc::Server> server;
  std::string address;
};

// Counts the fleet's callbacks and waits for a predicate to hold after
// one of them. Thread-safe.
class Changes {
 public:
  void Bump() {
    absl::MutexLock lock(&mu_);
    ++count_;
  }
  // Waits until `pred` holds, looking again at every callback.
  bool WaitUntil(const std::function<bool()>& pred,
                 absl::Duration timeout = absl::Seconds(10)) {
    const absl::Time deadline = absl::Now() + timeout;
    absl::MutexLock lock(&mu_);
    while (!pred()) {
      const int seen = count_;
      auto changed = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return count_ != seen;
      };
      if (!mu_.AwaitWithDeadline(absl::Condition(&changed), deadline)) {
        return pred();
      }
    }
    return true;
  }

 private:
  absl::Mutex mu_;
  int count_ ABSL_GUARDED_BY(mu_) = 0;
};

// A DNS name whose answer the test sets, and whose lookups can be held.
// Thread-safe.
class FakeDns {
 public:
  void Set(std::vector<std::string> addresses) {
    absl::MutexLock lock(&mu_);
    addresses_ = std::move(addresses);
  }
  // From now on lookups hang until Release (at most 30 s, then fail).
  void Hold() {
    absl::MutexLock lock(&mu_);
    hold_ = true;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    hold_ = false;
  }
  // Waits until a lookup is hanging.
  bool WaitForHeld(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&held_), timeout);
  }
  absl::StatusOr<std::vector<std::string>> Resolve(const std::string&) {
    absl::MutexLock lock(&mu_);
    if (hold_) {
      held_ = true;
      auto released = [this]()
                          ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !hold_; };
      // Bounded: a test that fails before its Release must not leave the
      // fleet's discovery thread (and the fleet's Stop) hanging forever.
      const bool was_released =
          mu_.AwaitWithTimeout(absl::Condition(&released), absl::Seconds(30));
      held_ = false;
      if (!was_released) {
        return absl::DeadlineExceededError("held lookup never released");
      }
    }
    return addresses_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> addresses_ ABSL_GUARDED_BY(mu_);
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
  bool held_ ABSL_GUARDED_BY(mu_) = false;
};

class FleetTest : public testing::Test {
 protected:
  FleetOptions Options() {
    FleetOptions o;
    o.discovery.dns_name = "executors.test:8082";
    o.discovery.resolve_host = [this](const std::string& name) {
      return dns_.Resolve(name);
    };
    o.resolve_interval = absl::Milliseconds(20);
    o.tick = absl::Milliseconds(10);
    o.pool.probe_interval = absl::Milliseconds(20);
    o.pool.retry_initial = absl::Milliseconds(20);
    o.pool.retry_max = absl::Milliseconds(20);
    o.pool.rejoin_window = absl::ZeroDuration();
    o.metrics = &registry_;
    return o;
  }
  std::unique_ptr<ExecutorFleet> MakeFleet() {
    return std::make_unique<ExecutorFleet>(
        Options(), ChannelOptions{}, [this] { changes_.Bump(); },
        [this](const std::set<std::string>& known) {
          {
            absl::MutexLock lock(&mu_);
            known_ = known;
          }
          changes_.Bump();
        });
  }

  double RotationChanges(const std::string& change) {
    return testing_util::ExposedValue(
        registry_.Expose(),
        "crucible_worker_executor_rotation_changes_total{change=\"" + change +
            "\"}");
  }

  common::MetricsRegistry registry_;  // outlives the fleets
  FakeDns dns_;
  Changes changes_;
  absl::Mutex mu_;
  std::set<std::string> known_ ABSL_GUARDED_BY(mu_);
};

TEST_F(FleetTest, AHungDnsLookupDoesNotHoldUpHealthChecks) {
  Executor executor;
  dns_.Set({executor.address});
  std::unique_ptr<ExecutorFleet> fleet = MakeFleet();
  fleet->Start();
  ASSERT_TRUE(changes_.WaitUntil(
      [&] { return fleet->pool().InRotation(executor.address); }));

  dns_.Hold();
  ASSERT_TRUE(dns_.WaitForHeld(absl::Seconds(10)));
  // While the lookup hangs, the executor stops serving (as on SIGTERM):
  // its next check takes it out of rotation all the same.
  executor.SetServing(false);
  EXPECT_TRUE(changes_.WaitUntil(
      [&] { return !fleet->pool().InRotation(executor.address); }));
  dns_.Release();
  fleet->Stop();
}

TEST_F(FleetTest, RotationChangesAreCounted) {
  Executor executor;
  dns_.Set({executor.address});
  std::unique_ptr<ExecutorFleet> fleet = MakeFleet();
  fleet->Start();
  ASSERT_TRUE(changes_.WaitUntil(
      [&] { return fleet->pool().InRotation(executor.address); }));
  EXPECT_EQ(RotationChanges("in"), 1);
  EXPECT_EQ(RotationChanges("out"), 0);

  executor.SetServing(false);
  ASSERT_TRUE(changes_.WaitUntil(
      [&] { return !fleet->pool().InRotation(executor.address); }));
  EXPECT_EQ(RotationChanges("out"), 1);
  executor.SetServing(true);
  ASSERT_TRUE(changes_.WaitUntil(
      [&] { return fleet->pool().InRotation(executor.address); }));
  EXPECT_EQ(RotationChanges("in"), 2);
  EXPECT_EQ(RotationChanges("out"), 1);
  fleet->Stop();
}

TEST_F(FleetTest, ChannelsOfExecutorsNoLongerListedAreDropped) {
  Executor a, b;
  dns_.Set({a.address, b.address});
  std::unique_ptr<ExecutorFleet> fleet = MakeFleet();
  fleet->Start();
  ASSERT_TRUE(changes_.WaitUntil([&] {
    return fleet->pool().InRotation(a.address) &&
           fleet->pool().InRotation(b.address);
  }));
  EXPECT_EQ(fleet->ChannelsForTest(),
            (std::set<std::string>{a.address, b.address}));

  dns_.Set({a.address});
  EXPECT_TRUE(changes_.WaitUntil([&] {
    return fleet->ChannelsForTest() == std::set<std::string>{a.address};
  }));
  EXPECT_TRUE(changes_.WaitUntil([&] {
    absl::MutexLock lock(&mu_);
    return known_ == std::set<std::string>{a.address};
  })) << "on_known tells the other holders of channels";
  fleet->Stop();
}

TEST(ExecutorClientTest, RetainDropsTheChannelsOfOtherAddresses) {
  Executor a, b;
  ExecutorClient client(ExecutorClient::Options{});
  for (const Executor* e : {&a, &b}) {
    absl::Notification done;
    client.CancelAsync(e->address, "no-such-run",
                       [&done](absl::Status) { done.Notify(); });
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  }
  EXPECT_EQ(client.ChannelsForTest(),
            (std::set<std::string>{a.address, b.address}));
  client.Retain({a.address});
  EXPECT_EQ(client.ChannelsForTest(), std::set<std::string>{a.address});
}

}  // namespace
}  // namespace worker
