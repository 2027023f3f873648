// The scheduler's and the outbox's metrics follow what happens to tasks,
// workers and commits (server/scheduler/scheduler_metrics.h), read from a
// registry of the test's own in the text format Prometheus scrapes.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "common/metrics.h"
#include "server/outbox/durable_outbox.h"
#include "tests/server/scheduler_fixture.h"
#include "tests/testing/http_get.h"

namespace server {
namespace {

class SchedulerMetricsTest : public SchedulerTest {
 protected:
  void SetUp() override {
    options_.metrics = &registry_;
    SchedulerTest::SetUp();
  }
  // The scheduler goes before the registry its series live in.
  void TearDown() override {
    scheduler_.reset();
    outbox_.reset();
  }
  double Value(const std::string& series) {
    return ::testing_util::ExposedValue(registry_.Expose(), series);
  }
  // The default tenant's tasks of priority 0.
  double Tasks(const std::string& state, const std::string& tenant = "default",
               const std::string& band = "normal") {
    return Value("crucible_server_tasks{state=\"" + state + "\",tenant=\"" +
                 tenant + "\",priority=\"" + band + "\"}");
  }
  double Ended(const std::string& state, const std::string& reason) {
    return Value("crucible_server_tasks_ended_total{state=\"" + state +
                 "\",reason=\"" + reason + "\"}");
  }

  common::MetricsRegistry registry_;
};

TEST_F(SchedulerMetricsTest, ATaskFromCreateToSuccessMovesEverySeries) {
  EXPECT_EQ(Value("crucible_server_tasks_created_total"), 0);
  // The ends that can happen are there from the start.
  EXPECT_EQ(Ended("SUCCEEDED", "exited"), 0);
  EXPECT_EQ(Ended("FAILED", "oom_killed"), 0);
  EXPECT_EQ(Ended("TIMED_OUT", "timeout"), 0);
  Create(Spec());
  Create(Spec());
  EXPECT_EQ(Value("crucible_server_tasks_created_total"), 2);
  EXPECT_EQ(Tasks("QUEUED"), 2);
  EXPECT_EQ(Tasks("LEASED"), 0);

  clock_.Advance(absl::Seconds(3));  // queued for 3 s before a worker comes
  FakeSink sink;
  int64_t session = Connect(sink, 1);
  EXPECT_EQ(Value("crucible_server_workers_connected"), 1);
  auto assignments = sink.TakeAssignments();
  ASSERT_EQ(assignments.size(), 1u);
  const std::string lease = assignments[0].lease_id();
  EXPECT_EQ(Tasks("QUEUED"), 1);
  EXPECT_EQ(Tasks("LEASED"), 1);
  EXPECT_EQ(Value("crucible_server_queue_wait_seconds_count"), 1);
  EXPECT_EQ(Value("crucible_server_queue_wait_seconds_sum"), 3);
  EXPECT_EQ(Value("crucible_server_queue_wait_seconds_bucket{le=\"2.5\"}"), 0);
  EXPECT_EQ(Value("crucible_server_queue_wait_seconds_bucket{le=\"5\"}"), 1);

  ASSERT_TRUE(scheduler_->ReportStarted(lease, clock_.Now()).ok());
  EXPECT_EQ(Tasks("LEASED"), 0);
  EXPECT_EQ(Tasks("RUNNING"), 1);
  ASSERT_TRUE(scheduler_->ReportCompletion(Exited(lease, 0)).ok());
  EXPECT_EQ(Tasks("RUNNING"), 0);
  EXPECT_EQ(Ended("SUCCEEDED", "exited"), 1);
  EXPECT_EQ(Value("crucible_server_reports_refused_total"), 0);

  // The same lease again: fenced.
  EXPECT_FALSE(scheduler_->ReportCompletion(Exited(lease, 0)).ok());
  EXPECT_EQ(Value("crucible_server_reports_refused_total"), 1);
  EXPECT_EQ(Ended("SUCCEEDED", "exited"), 1);

  scheduler_->DisconnectWorker(session);
  EXPECT_EQ(Value("crucible_server_workers_connected"), 0);
}

TEST_F(SchedulerMetricsTest, LeaseToStartIsTimedOnTheServersClock) {
  Create(Spec());
  FakeSink sink;
  Connect(sink, 1);
  auto assignments = sink.TakeAssignments();
  ASSERT_EQ(assignments.size(), 1u);
  clock_.Advance(absl::Seconds(2));
  // The worker's own start time (far in the past here) does not count.
  ASSERT_TRUE(scheduler_
                  ->ReportStarted(assignments[0].lease_id(),
                                  clock_.Now() - absl::Hours(1))
                  .ok());
  EXPECT_EQ(Value("crucible_server_lease_to_start_seconds_count"), 1);
  EXPECT_EQ(Value("crucible_server_lease_to_start_seconds_sum"), 2);
  // A repeated start report is not timed again.
  ASSERT_TRUE(
      scheduler_->ReportStarted(assignments[0].lease_id(), clock_.Now()).ok());
  EXPECT_EQ(Value("crucible_server_lease_to_start_seconds_count"), 1);
}

TEST_F(SchedulerMetricsTest, ARepeatedRequestIdIsNotCreatedTwice) {
  ASSERT_TRUE(scheduler_->CreateTask(kTenant, Spec(), "req-1").ok());
  ASSERT_TRUE(scheduler_->CreateTask(kTenant, Spec(), "req-1").ok());
  EXPECT_EQ(Value("crucible_server_tasks_created_total"), 1);
  EXPECT_EQ(Tasks("QUEUED"), 1);
}

TEST_F(SchedulerMetricsTest, ABatchCountsEachTaskItCreates) {
  crucible::v1::TaskSpec bad = Spec();
  bad.clear_image();
  auto results =
      scheduler_->CreateTasks(kTenant, {{.spec = Spec(), .request_id = "b-1"},
                                        {.spec = bad},
                                        {.spec = Spec(), .request_id = "b-1"},
                                        {.spec = Spec()}});
  ASSERT_TRUE(results.ok()) << results.status();
  // Two tasks: the refused spec and the repeated request_id make none.
  EXPECT_EQ(Value("crucible_server_tasks_created_total"), 2);
  EXPECT_EQ(Tasks("QUEUED"), 2);
}

TEST_F(SchedulerMetricsTest, RetriesByBlameAndEndsByState) {
  const std::string a = Create(Spec());
  FakeSink sink;
  Connect(sink, 1);
  auto assignments = sink.TakeAssignments();
  ASSERT_EQ(assignments.size(), 1u);
  // The engine was unreachable: the system's fault, retried.
  ASSERT_TRUE(scheduler_
                  ->ReportCompletion(Error(assignments[0].lease_id(),
                                           absl::StatusCode::kUnavailable))
                  .ok());
  EXPECT_EQ(Value("crucible_server_task_retries_total{blame=\"system\"}"), 1);
  EXPECT_EQ(Value("crucible_server_task_retries_total{blame=\"task\"}"), 0);
  EXPECT_EQ(Tasks("QUEUED"), 1);
  EXPECT_EQ(Tasks("LEASED"), 0);
  EXPECT_EQ(Ended("FAILED", "infrastructure"), 0);

  ASSERT_TRUE(scheduler_->CancelTask(kTenant, a, "no longer needed").ok());
  EXPECT_EQ(Ended("CANCELLED", "cancelled"), 1);
  EXPECT_EQ(Tasks("QUEUED"), 0);
}

TEST_F(SchedulerMetricsTest, ALapsedLeaseIsCounted) {
  Create(Spec());
  FakeSink sink;
  Connect(sink, 1);
  ASSERT_EQ(sink.TakeAssignments().size(), 1u);
  EXPECT_EQ(Value("crucible_server_lease_expiries_total"), 0);
  clock_.Advance(options_.lease_ttl + absl::Seconds(1));
  EXPECT_EQ(scheduler_->ExpireLeases(), 1);
  EXPECT_EQ(Value("crucible_server_lease_expiries_total"), 1);
  // Requeued, then leased again to the same worker's next credit if any:
  // here the worker has none left, so it waits.
  EXPECT_EQ(Tasks("LEASED"), 0);
  EXPECT_EQ(Tasks("QUEUED"), 1);
}

TEST_F(SchedulerMetricsTest, AGoneSchedulerLeavesTheGaugesAtZero) {
  Create(Spec());
  Create(Spec());
  FakeSink sink;
  Connect(sink, 1);
  EXPECT_EQ(Tasks("QUEUED"), 1);
  EXPECT_EQ(Tasks("LEASED"), 1);
  scheduler_.reset();
  EXPECT_EQ(Tasks("QUEUED"), 0);
  EXPECT_EQ(Tasks("LEASED"), 0);
  EXPECT_EQ(Value("crucible_server_workers_connected"), 0);
  // Counters stay: they count what happened in the process.
  EXPECT_EQ(Value("crucible_server_tasks_created_total"), 2);
}

TEST_F(SchedulerMetricsTest, QueueDepthIsByTenantAndPriorityBand) {
  const TenantScope other{.tenant = "team-b"};
  crucible::v1::TaskSpec urgent = Spec();
  urgent.set_priority(5);
  crucible::v1::TaskSpec later = Spec();
  later.set_priority(-1);
  Create(Spec());
  Create(urgent);
  Create(urgent);
  ASSERT_TRUE(scheduler_->CreateTask(other, later, "").ok());
  EXPECT_EQ(Tasks("QUEUED"), 1);
  EXPECT_EQ(Tasks("QUEUED", "default", "high"), 2);
  EXPECT_EQ(Tasks("QUEUED", "team-b", "low"), 1);
  // A tenant's other states are there at 0 once it has a task.
  EXPECT_EQ(Tasks("RUNNING", "team-b", "low"), 0);

  FakeSink sink;
  Connect(sink, 1);  // the default tenant's high band goes first
  ASSERT_EQ(sink.TakeAssignments().size(), 1u);
  EXPECT_EQ(Tasks("QUEUED", "default", "high"), 1);
  EXPECT_EQ(Tasks("LEASED", "default", "high"), 1);
  EXPECT_EQ(Tasks("QUEUED"), 1);
}

TEST_F(SchedulerMetricsTest, EndsAreByTheirReason) {
  Create(Spec());
  Create(Spec());
  FakeSink sink;
  Connect(sink, 2);
  auto assignments = sink.TakeAssignments();
  ASSERT_EQ(assignments.size(), 2u);
  ASSERT_TRUE(
      scheduler_->ReportCompletion(Exited(assignments[0].lease_id(), 3)).ok());
  crucible::v1::AttemptCompletion oom = Exited(assignments[1].lease_id(), 137);
  oom.mutable_result()->set_reason(crucible::v1::TERMINATION_REASON_OOM_KILLED);
  ASSERT_TRUE(scheduler_->ReportCompletion(oom).ok());
  EXPECT_EQ(Ended("FAILED", "exited"), 1);
  EXPECT_EQ(Ended("FAILED", "oom_killed"), 1);
  EXPECT_EQ(Ended("SUCCEEDED", "exited"), 0);
}

TEST_F(SchedulerMetricsTest, CreditsOutstandingFollowSessionsAndAssignments) {
  FakeSink sink;
  const int64_t session = Connect(sink, 3);
  EXPECT_EQ(Value("crucible_server_worker_credits"), 3);
  Create(Spec());
  ASSERT_EQ(sink.TakeAssignments().size(), 1u);
  EXPECT_EQ(Value("crucible_server_worker_credits"), 2);
  ASSERT_TRUE(scheduler_->AddCredits(session, 4).ok());
  EXPECT_EQ(Value("crucible_server_worker_credits"), 6);
  // The same worker again: its old session's credits go with it.
  FakeSink again;
  const int64_t second = Connect(again, 1);
  EXPECT_EQ(Value("crucible_server_worker_credits"), 1);
  scheduler_->DisconnectWorker(second);
  EXPECT_EQ(Value("crucible_server_worker_credits"), 0);
}

class IgnoringListener : public TaskListener {
 public:
  void OnEvent(const crucible::v1::TaskEvent&) override {}
  void OnOutput(const crucible::v1::OutputChunk&) override {}
};

TEST_F(SchedulerMetricsTest, SubscribersAreCountedWhileTheyFollow) {
  const std::string a = Create(Spec());
  IgnoringListener one, two;
  auto first = scheduler_->Subscribe(kTenant, a, &one);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = scheduler_->Subscribe(kTenant, a, &two);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(Value("crucible_server_stream_subscribers"), 2);
  scheduler_->Unsubscribe(first->id);
  scheduler_->Unsubscribe(first->id);  // twice counts once
  EXPECT_EQ(Value("crucible_server_stream_subscribers"), 1);
  scheduler_.reset();  // the rest leave with the scheduler
  EXPECT_EQ(Value("crucible_server_stream_subscribers"), 0);
}

TEST(DurableOutboxMetricsTest, CommitsAreTimedAndTheirBatchesSized) {
  common::MetricsRegistry registry;
  auto store =
      SqliteTaskStore::Open({.path = testing_util::FreshDir() + "/tasks.db"});
  ASSERT_TRUE(store.ok()) << store.status();
  {
    DurableOutbox outbox(**store, {.metrics = &registry});
    for (int i = 0; i < 5; ++i) {
      crucible::v1::Task task;
      task.set_id("task-" + std::to_string(i));
      task.set_tenant("default");
      task.set_state(crucible::v1::TASK_STATE_QUEUED);
      outbox.Submit(TaskWrite::Insert(task));
    }
    outbox.DrainCallbacks();
  }
  const std::string text = registry.Expose();
  const auto batches = ::testing_util::SampleValue(
      text, "crucible_server_store_commit_batch_size_count");
  ASSERT_TRUE(batches.has_value()) << text;
  EXPECT_GE(*batches, 1);
  // Every write was in exactly one committed batch.
  EXPECT_EQ(::testing_util::SampleValue(
                text, "crucible_server_store_commit_batch_size_sum"),
            5);
  // One timed commit per batch, none failed.
  EXPECT_EQ(::testing_util::SampleValue(
                text, "crucible_server_store_commit_seconds_count"),
            *batches);
  EXPECT_EQ(::testing_util::SampleValue(
                text, "crucible_server_store_commit_failures_total"),
            0);
}

}  // namespace
}  // namespace server
