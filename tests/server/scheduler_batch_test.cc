// Scheduler::CreateTasks (BatchCreateTasks): per-item answers in order,
// request_ids repeated within a batch and across a restart, quotas per
// item, the batch limit, trace ids and dispatch of a batch.
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/scheduler/request_validation.h"
#include "server/tenancy/tenants_config.h"
#include "tests/server/scheduler_fixture.h"

namespace server {
namespace {

using crucible::v1::Task;
using Results = std::vector<absl::StatusOr<Task>>;

Scheduler::CreateRequest Item(crucible::v1::TaskSpec spec,
                              std::string request_id = "") {
  return {.spec = std::move(spec), .request_id = std::move(request_id)};
}

class SchedulerBatchTest : public SchedulerTest {
 protected:
  Results Batch(std::vector<Scheduler::CreateRequest> items,
                const TenantScope& scope = kTenant, std::string trace_id = "") {
    auto results =
        scheduler_->CreateTasks(scope, std::move(items), std::move(trace_id));
    EXPECT_TRUE(results.ok()) << results.status();
    return results.ok() ? *std::move(results) : Results{};
  }
};

TEST_F(SchedulerBatchTest,
       EachItemIsAnsweredInOrderAndABadOneRefusesOnlyItself) {
  crucible::v1::TaskSpec bad = Spec();
  bad.clear_image();
  Results r = Batch({Item(Spec(1)), Item(bad), Item(Spec(2))});
  ASSERT_EQ(r.size(), 3u);
  ASSERT_TRUE(r[0].ok()) << r[0].status();
  EXPECT_EQ(r[1].status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(r[2].ok()) << r[2].status();
  EXPECT_EQ(r[0]->spec().priority(), 1);
  EXPECT_EQ(r[2]->spec().priority(), 2);
  EXPECT_NE(r[0]->id(), r[2]->id());
  // Answered once durable: both are in the store, and nothing else is.
  Restart();
  EXPECT_EQ(Get(r[0]->id()).state(), crucible::v1::TASK_STATE_QUEUED);
  EXPECT_EQ(Get(r[2]->id()).state(), crucible::v1::TASK_STATE_QUEUED);
  auto page = scheduler_->ListTasks(kTenant, {});
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->tasks.size(), 2u);
}

TEST_F(SchedulerBatchTest, ARepeatedRequestIdAnswersAsARetryWould) {
  crucible::v1::TaskSpec other = Spec();
  other.add_command("else");
  auto before = scheduler_->CreateTask(kTenant, Spec(), "earlier");
  ASSERT_TRUE(before.ok()) << before.status();
  Results r = Batch({Item(Spec(), "x"), Item(Spec(), "x"), Item(other, "x"),
                     Item(Spec(), "earlier"), Item(other, "earlier")});
  ASSERT_EQ(r.size(), 5u);
  ASSERT_TRUE(r[0].ok()) << r[0].status();
  ASSERT_TRUE(r[1].ok()) << r[1].status();
  EXPECT_EQ(r[1]->id(), r[0]->id());
  EXPECT_EQ(r[2].status().code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(r[3].ok()) << r[3].status();
  EXPECT_EQ(r[3]->id(), before->id());
  EXPECT_EQ(r[4].status().code(), absl::StatusCode::kAlreadyExists);
  // The same batch again, after a restart and after the task of "x" ended
  // (so only the store knows it): the same answers, nothing new.
  auto cancelled = scheduler_->CancelTask(kTenant, r[0]->id(), "");
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  Restart();
  Results again = Batch({Item(Spec(), "x"), Item(other, "x")});
  ASSERT_TRUE(again[0].ok()) << again[0].status();
  EXPECT_EQ(again[0]->id(), r[0]->id());
  EXPECT_EQ(again[1].status().code(), absl::StatusCode::kAlreadyExists);
  auto page = scheduler_->ListTasks(kTenant, {});
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->tasks.size(), 2u);
}

TEST_F(SchedulerBatchTest, QuotasApplyToEachItemInOrder) {
  auto tenants =
      ParseTenantsConfig(R"({"tenants": {"a": {"max_queued_tasks": 2}}})");
  ASSERT_TRUE(tenants.ok()) << tenants.status();
  options_.tenants = std::make_shared<const TenantsConfig>(*tenants);
  Restart();
  const TenantScope a{.tenant = "a"};
  crucible::v1::TaskSpec bad = Spec();
  bad.clear_image();
  Results r = Batch({Item(Spec()), Item(bad), Item(Spec(), "second"),
                     Item(Spec(), "third"), Item(Spec())},
                    a);
  ASSERT_EQ(r.size(), 5u);
  EXPECT_TRUE(r[0].ok()) << r[0].status();
  EXPECT_EQ(r[1].status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(r[2].ok()) << r[2].status();
  EXPECT_EQ(r[3].status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(r[4].status().code(), absl::StatusCode::kResourceExhausted);
  // A refused item leaves its request_id free, as a refused CreateTask
  // does: once there is room, the same request creates its task.
  ASSERT_TRUE(scheduler_->CancelTask(a, r[0]->id(), "").ok());
  Results later = Batch({Item(Spec(), "third")}, a);
  ASSERT_TRUE(later[0].ok()) << later[0].status();
  // Another tenant is not held by a's quota.
  EXPECT_TRUE(Batch({Item(Spec()), Item(Spec()), Item(Spec())})[2].ok());
}

TEST_F(SchedulerBatchTest, TheBatchLimitRefusesTheWholeCallAndEmptyIsFine) {
  std::vector<Scheduler::CreateRequest> too_many(kMaxBatchCreateRequests + 1,
                                                 Item(Spec()));
  auto refused = scheduler_->CreateTasks(kTenant, too_many);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "1000"));
  too_many.pop_back();
  Results full = Batch(too_many);
  ASSERT_EQ(full.size(), kMaxBatchCreateRequests);
  std::set<std::string> ids;
  for (const auto& t : full) {
    ASSERT_TRUE(t.ok()) << t.status();
    ids.insert(t->id());
  }
  EXPECT_EQ(ids.size(), kMaxBatchCreateRequests);
  EXPECT_TRUE(Batch({}).empty());
}

TEST_F(SchedulerBatchTest, TraceIdsAreTheCallersForAllOrNewForEach) {
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  Results traced = Batch({Item(Spec()), Item(Spec())}, kTenant, trace);
  EXPECT_EQ(traced[0]->trace_id(), trace);
  EXPECT_EQ(traced[1]->trace_id(), trace);
  Results fresh = Batch({Item(Spec()), Item(Spec())});
  EXPECT_FALSE(fresh[0]->trace_id().empty());
  EXPECT_NE(fresh[0]->trace_id(), fresh[1]->trace_id());
}

TEST_F(SchedulerBatchTest, ABatchIsHandedOutToWaitingWorkers) {
  FakeSink sink;
  Connect(sink, 3);
  Results r = Batch({Item(Spec()), Item(Spec()), Item(Spec()), Item(Spec())});
  ASSERT_EQ(r.size(), 4u);
  std::vector<crucible::v1::Assignment> got = sink.TakeAssignments();
  ASSERT_EQ(got.size(), 3u);
  // FIFO among equal priorities: the batch's first three, in order.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(got[i].task().id(), r[i]->id());
}

}  // namespace
}  // namespace server
