// Quotas and fair share through the real scheduler on SQLite: weighted fair
// dispatch across tenants (the issue's backlog scenario included), running
// caps, admission quotas that store nothing, reloads, counts rebuilt at a
// restart.
#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "server/tenancy/tenants_config.h"
#include "tests/server/scheduler_fixture.h"

namespace server {
namespace {

using crucible::v1::Assignment;

const TenantScope kA{.tenant = "a"};
const TenantScope kB{.tenant = "b"};

std::shared_ptr<const TenantsConfig> Tenants(const std::string& json) {
  absl::StatusOr<TenantsConfig> c = ParseTenantsConfig(json);
  EXPECT_TRUE(c.ok()) << c.status();
  return std::make_shared<const TenantsConfig>(c.ok() ? *c : TenantsConfig{});
}

class SchedulerQuotaTest : public SchedulerTest {
 protected:
  std::string CreateIn(const TenantScope& scope, int priority = 0) {
    auto task = scheduler_->CreateTask(scope, Spec(priority), "");
    EXPECT_TRUE(task.ok()) << task.status();
    return task.ok() ? task->id() : "";
  }
  // Creates `n` tasks of `scope` at once (many creates share a commit).
  void CreateMany(const TenantScope& scope, int n) {
    // Shared with the callbacks, which may outlive a wait that timed out.
    struct Creates {
      explicit Creates(int n) : left(n) {}
      std::atomic<int> left;
      std::atomic<int> failed{0};
      absl::Notification done;
    };
    auto creates = std::make_shared<Creates>(n);
    for (int i = 0; i < n; ++i) {
      scheduler_->CreateTaskAsync(
          scope, Spec(), "", [creates](absl::StatusOr<crucible::v1::Task> t) {
            if (!t.ok()) ++creates->failed;
            if (--creates->left == 0) creates->done.Notify();
          });
    }
    ASSERT_TRUE(creates->done.WaitForNotificationWithTimeout(absl::Minutes(2)))
        << creates->left.load() << " of " << n << " creates never answered";
    EXPECT_EQ(creates->failed.load(), 0);
  }
  // The tenants of the assignments received so far, in order.
  std::vector<std::string> TakeTenants(FakeSink& sink) {
    std::vector<std::string> tenants;
    for (const Assignment& a : sink.TakeAssignments()) {
      tenants.push_back(a.task().tenant());
      leases_.push_back(a.lease_id());
    }
    return tenants;
  }
  void Complete(const std::string& lease) {
    ASSERT_TRUE(scheduler_->ReportCompletion(Exited(lease, 0)).ok());
  }
  int Listed(const TenantScope& scope) {
    auto page = scheduler_->ListTasks(scope, {.tenant = scope.tenant});
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? static_cast<int>(page->tasks.size()) : -1;
  }

  std::vector<std::string> leases_;
};

using Order = std::vector<std::string>;

// The issue's scenario: tenant a has 100 000 tasks queued, tenant b submits
// one; b's is dispatched within about one dispatch per active tenant.
TEST_F(SchedulerQuotaTest, ANewcomerIsNotBehindABacklogOfAnotherTenant) {
  CreateMany(kA, 100000);
  FakeSink sink;
  int64_t session = Connect(sink, 10);
  EXPECT_EQ(TakeTenants(sink), Order(10, "a"));
  CreateIn(kB);
  ASSERT_TRUE(scheduler_->AddCredits(session, 2).ok());
  EXPECT_EQ(TakeTenants(sink), (Order{"a", "b"}));
  ASSERT_TRUE(scheduler_->AddCredits(session, 3).ok());
  EXPECT_EQ(TakeTenants(sink), Order(3, "a"));
}

TEST_F(SchedulerQuotaTest, WeightsFromTheTenantsFileShareDispatch) {
  options_.tenants = Tenants(R"({"tenants": {"a": {"weight": 3}}})");
  Restart();
  for (int i = 0; i < 20; ++i) {
    CreateIn(kA);
    CreateIn(kB);
  }
  FakeSink sink;
  Connect(sink, 8);
  EXPECT_EQ(TakeTenants(sink), (Order{"a", "a", "a", "b", "a", "a", "a", "b"}));
}

TEST_F(SchedulerQuotaTest, PriorityCountsWithinATenantNotAcrossTenants) {
  std::string a_low = CreateIn(kA, 0);
  std::string a_high = CreateIn(kA, 9);
  std::string b_low = CreateIn(kB, 0);
  FakeSink sink;
  Connect(sink, 3);
  std::vector<std::string> ids;
  for (const Assignment& a : sink.TakeAssignments()) {
    ids.push_back(a.task().id());
  }
  EXPECT_EQ(ids, (Order{a_high, b_low, a_low}));
}

TEST_F(SchedulerQuotaTest, ATenantAtItsRunningCapWaitsOthersGoOn) {
  options_.tenants = Tenants(R"({"tenants": {"a": {"max_running_tasks": 2}}})");
  Restart();
  for (int i = 0; i < 5; ++i) {
    CreateIn(kA);
    CreateIn(kB);
  }
  FakeSink sink;
  int64_t session = Connect(sink, 6);
  EXPECT_EQ(TakeTenants(sink), (Order{"a", "b", "a", "b", "b", "b"}));
  // Credits left, a still at its cap: nothing more for a.
  ASSERT_TRUE(scheduler_->AddCredits(session, 2).ok());
  EXPECT_EQ(TakeTenants(sink), (Order{"b"}));
  // One of a's runs ends: a goes again (the worker still has credits).
  Complete(leases_[0]);
  EXPECT_EQ(TakeTenants(sink), (Order{"a"}));
  // A start report does not change the count: LEASED and RUNNING both run.
  ASSERT_TRUE(scheduler_->ReportStarted(leases_[2], absl::InfinitePast()).ok());
  ASSERT_TRUE(scheduler_->AddCredits(session, 1).ok());
  EXPECT_TRUE(TakeTenants(sink).empty());
}

TEST_F(SchedulerQuotaTest, ARaisedRunningCapDispatchesAtOnce) {
  options_.tenants = Tenants(R"({"defaults": {"max_running_tasks": 1}})");
  Restart();
  for (int i = 0; i < 3; ++i) CreateIn(kA);
  FakeSink sink;
  Connect(sink, 5);
  EXPECT_EQ(TakeTenants(sink), Order{"a"});
  scheduler_->SetTenants(Tenants(R"({"defaults": {"max_running_tasks": 3}})"));
  EXPECT_EQ(TakeTenants(sink), (Order{"a", "a"}));
  // Lowered below what runs: nothing is stopped, nothing more goes.
  CreateIn(kA);
  scheduler_->SetTenants(Tenants(R"({"defaults": {"max_running_tasks": 1}})"));
  Complete(leases_[0]);
  EXPECT_TRUE(TakeTenants(sink).empty());
}

TEST_F(SchedulerQuotaTest, QuotasRefuseBeforeAnythingIsStored) {
  options_.tenants = Tenants(R"({"tenants": {"a": {
      "max_queued_tasks": 1, "max_task": {"memory_bytes": 1000}}}})");
  Restart();
  ASSERT_TRUE(scheduler_->CreateTask(kA, Spec(), "first").ok());
  auto refused = scheduler_->CreateTask(kA, Spec(), "second");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(
      absl::StrContains(refused.status().message(), "max_queued_tasks is 1"))
      << refused.status();
  crucible::v1::TaskSpec big = Spec();
  big.mutable_resources()->set_memory_bytes(1001);
  EXPECT_EQ(scheduler_->CreateTask(kA, big, "").status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Listed(kA), 1);
  // Another tenant's quota is the defaults' (none).
  EXPECT_TRUE(scheduler_->CreateTask(kB, big, "").ok());
  // A repeat of the accepted create answers its task, quota or not.
  EXPECT_TRUE(scheduler_->CreateTask(kA, Spec(), "first").ok());
  // The refused request_id was not taken: once a's task runs, it creates.
  FakeSink sink;
  Connect(sink, 1);
  ASSERT_EQ(TakeTenants(sink).size(), 1u);
  auto second = scheduler_->CreateTask(kA, Spec(), "second");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(Listed(kA), 2);
}

TEST_F(SchedulerQuotaTest, CreateRateOnTheSchedulersClock) {
  options_.tenants = Tenants(
      R"({"defaults": {"create_rate": {"per_second": 1, "burst": 2}}})");
  Restart();
  CreateIn(kA);
  CreateIn(kA);
  auto refused = scheduler_->CreateTask(kA, Spec(), "");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "retry in 1s"))
      << refused.status();
  CreateIn(kB);  // a bucket per tenant
  clock_.Advance(absl::Seconds(1));
  CreateIn(kA);
  EXPECT_EQ(Listed(kA), 3);
}

TEST_F(SchedulerQuotaTest, CountsAreRebuiltAtARestart) {
  options_.tenants = Tenants(R"({"tenants": {"a": {
      "max_queued_tasks": 2, "max_running_tasks": 1}}})");
  Restart();
  CreateIn(kA);
  CreateIn(kA);
  {
    FakeSink sink;
    Connect(sink, 1);
    ASSERT_EQ(TakeTenants(sink), Order{"a"});
    CreateIn(kA);
    Restart();  // the lease is kept for restart_grace: a runs one task
  }
  EXPECT_EQ(scheduler_->CreateTask(kA, Spec(), "").status().code(),
            absl::StatusCode::kResourceExhausted);  // 2 queued
  FakeSink sink;
  Connect(sink, 5);
  EXPECT_TRUE(TakeTenants(sink).empty());  // 1 running
}

}  // namespace
}  // namespace server
