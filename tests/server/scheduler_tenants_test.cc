// Tenants through the scheduler: a task is visible only to its own tenant
// (and to an admin's scope), whether active or ended; request_ids are per
// tenant.
#include <algorithm>
#include <string>
#include <vector>

#include "tests/server/scheduler_fixture.h"

namespace server {
namespace {

// Subscriptions here must fail: nothing to listen to.
class NoListener : public TaskListener {
 public:
  void OnEvent(const crucible::v1::TaskEvent&) override {}
  void OnOutput(const crucible::v1::OutputChunk&) override {}
};

const TenantScope kA{.tenant = "a"};
const TenantScope kB{.tenant = "b"};
const TenantScope kAdmin{.tenant = "ops", .all_tenants = true};

void ExpectHidden(Scheduler& scheduler, const TenantScope& scope,
                  const std::string& id) {
  EXPECT_EQ(scheduler.GetTask(scope, id).status().code(),
            absl::StatusCode::kNotFound);
  NoListener events;
  EXPECT_EQ(scheduler.Subscribe(scope, id, &events).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(scheduler
                .ReadOutput(scope, id, 1, 0,
                            crucible::v1::OUTPUT_STREAM_UNSPECIFIED, 1 << 20)
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  auto page = scheduler.ListTasks(scope, {});
  ASSERT_TRUE(page.ok()) << page.status();
  for (const crucible::v1::Task& t : page->tasks) EXPECT_NE(t.id(), id);
  EXPECT_EQ(scheduler.CancelTask(scope, id, "").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SchedulerTest, AnotherTenantsTaskIsNotFoundActiveOrEnded) {
  auto queued = scheduler_->CreateTask(kA, Spec(), "");
  ASSERT_TRUE(queued.ok()) << queued.status();
  EXPECT_EQ(queued->tenant(), "a");
  ExpectHidden(*scheduler_, kB, queued->id());
  // B's attempts changed nothing.
  EXPECT_EQ(scheduler_->GetTask(kA, queued->id())->state(),
            crucible::v1::TASK_STATE_QUEUED);

  auto ended = scheduler_->CreateTask(kA, Spec(), "");
  ASSERT_TRUE(ended.ok());
  ASSERT_TRUE(scheduler_->CancelTask(kA, ended->id(), "").ok());
  ExpectHidden(*scheduler_, kB, ended->id());
  Restart();  // from the store only
  ExpectHidden(*scheduler_, kB, ended->id());
  ExpectHidden(*scheduler_, kB, queued->id());
  EXPECT_TRUE(scheduler_->GetTask(kA, ended->id()).ok());
}

TEST_F(SchedulerTest, EachTenantListsOnlyItsOwnTasks) {
  std::vector<std::string> a, b;
  for (int i = 0; i < 3; ++i) {
    a.push_back(scheduler_->CreateTask(kA, Spec(), "")->id());
    b.push_back(scheduler_->CreateTask(kB, Spec(), "")->id());
  }
  auto listed = [&](const TenantScope& scope) {
    std::vector<std::string> ids;
    auto page = scheduler_->ListTasks(scope, {});
    EXPECT_TRUE(page.ok()) << page.status();
    if (page.ok()) {
      for (const crucible::v1::Task& t : page->tasks) ids.push_back(t.id());
    }
    std::sort(ids.begin(), ids.end());
    return ids;
  };
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  EXPECT_EQ(listed(kA), a);
  EXPECT_EQ(listed(kB), b);
  std::vector<std::string> all = a;
  all.insert(all.end(), b.begin(), b.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(listed(kAdmin), all);
  // An admin's scope lists only its own tenant unless it sees them all.
  EXPECT_TRUE(listed({.tenant = "ops"}).empty());
}

TEST_F(SchedulerTest, AnAdminScopeSeesAndCancelsAnyTenantsTask) {
  auto task = scheduler_->CreateTask(kA, Spec(), "");
  ASSERT_TRUE(task.ok());
  EXPECT_TRUE(scheduler_->GetTask(kAdmin, task->id()).ok());
  auto cancelled = scheduler_->CancelTask(kAdmin, task->id(), "by ops");
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state(), crucible::v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(cancelled->tenant(), "a");
}

TEST_F(SchedulerTest, RequestIdsArePerTenant) {
  auto a = scheduler_->CreateTask(kA, Spec(), "nightly-1");
  auto b = scheduler_->CreateTask(kB, Spec(), "nightly-1");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->id(), b->id());
  EXPECT_EQ(b->tenant(), "b");
  // A repeat answers each tenant its own task, also once ended and from
  // the store.
  ASSERT_TRUE(scheduler_->CancelTask(kA, a->id(), "").ok());
  Restart();
  EXPECT_EQ(scheduler_->CreateTask(kA, Spec(), "nightly-1")->id(), a->id());
  EXPECT_EQ(scheduler_->CreateTask(kB, Spec(), "nightly-1")->id(), b->id());
}

}  // namespace
}  // namespace server
