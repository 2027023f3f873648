// Bounded starvation, persisted backoff, server-side timeout, cancel edge
// cases, idempotency across restarts, retention and configured maxima.
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "tests/server/scheduler_fixture.h"

namespace server {
namespace {

using crucible::v1::Assignment;

TEST_F(SchedulerTest, FairnessIntervalBoundsStarvationOfLowPriorities) {
  options_.fairness_interval = 3;
  Restart();
  std::string low = Create(Spec(0));
  std::vector<std::string> high;
  for (int i = 0; i < 5; ++i) high.push_back(Create(Spec(5)));
  FakeSink sink;
  Connect(sink, 3);
  std::vector<Assignment> got = sink.TakeAssignments();
  ASSERT_EQ(got.size(), 3u);
  // Two by priority, then the third dispatch goes to the oldest ready task.
  EXPECT_EQ(got[0].task().id(), high[0]);
  EXPECT_EQ(got[1].task().id(), high[1]);
  EXPECT_EQ(got[2].task().id(), low);
}

TEST_F(SchedulerTest, StrictPriorityWhenFairnessIsOff) {
  options_.fairness_interval = 0;
  Restart();
  std::string low = Create(Spec(0));
  for (int i = 0; i < 5; ++i) Create(Spec(5));
  FakeSink sink;
  Connect(sink, 5);
  for (const Assignment& a : sink.TakeAssignments()) {
    EXPECT_NE(a.task().id(), low);
  }
}

TEST_F(SchedulerTest, BackoffIsStoredAndHonouredAfterRestart) {
  crucible::v1::TaskSpec spec = Spec();
  *spec.mutable_retry_policy()->mutable_initial_backoff() =
      common::ToProtoDuration(absl::Seconds(100));
  *spec.mutable_retry_policy()->mutable_max_backoff() =
      common::ToProtoDuration(absl::Seconds(1000));
  std::string id = Create(spec);
  {
    FakeSink sink;
    Connect(sink, 1);
    std::string lease = sink.TakeAssignments().at(0).lease_id();
    ASSERT_TRUE(
        scheduler_->ReportCompletion(Error(lease, absl::StatusCode::kInternal))
            .ok());
  }
  crucible::v1::Task t = Get(id);
  ASSERT_EQ(t.state(), crucible::v1::TASK_STATE_QUEUED);
  ASSERT_TRUE(t.has_next_attempt_time());
  EXPECT_EQ(common::FromProtoTime(t.next_attempt_time()),
            clock_.Now() + absl::Seconds(100));
  Restart();
  FakeSink sink;
  Connect(sink, 1);
  clock_.Advance(absl::Seconds(99));
  scheduler_->ExpireLeases();
  EXPECT_TRUE(sink.TakeAssignments().empty());
  clock_.Advance(absl::Seconds(1));
  scheduler_->ExpireLeases();
  std::vector<Assignment> got = sink.TakeAssignments();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].attempt(), 2);
  EXPECT_FALSE(Get(id).has_next_attempt_time());
}

TEST_F(SchedulerTest, ServerEndsAnAttemptPastTimeoutPlusGrace) {
  options_.timeout_grace = absl::Seconds(5);
  options_.lease_ttl = absl::Minutes(10);
  Restart();
  crucible::v1::TaskSpec spec = Spec();
  *spec.mutable_timeout() = common::ToProtoDuration(absl::Seconds(10));
  std::string id = Create(spec);
  FakeSink sink;
  Connect(sink, 1);
  std::string lease = sink.TakeAssignments().at(0).lease_id();
  ASSERT_TRUE(scheduler_->ReportStarted(lease, clock_.Now()).ok());
  clock_.Advance(absl::Seconds(15) - absl::Milliseconds(1));
  EXPECT_EQ(scheduler_->ExpireLeases(), 0);
  EXPECT_EQ(Get(id).state(), crucible::v1::TASK_STATE_RUNNING);
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_EQ(scheduler_->ExpireLeases(), 1);
  crucible::v1::Task t = Get(id);
  EXPECT_EQ(t.state(), crucible::v1::TASK_STATE_TIMED_OUT);
  EXPECT_EQ(t.result().reason(), crucible::v1::TERMINATION_REASON_TIMEOUT);
  // The worker is told to stop, and its late result is refused.
  std::vector<crucible::v1::AssignmentCancel> cancels = sink.TakeCancels();
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].lease_id(), lease);
  EXPECT_EQ(scheduler_->ReportCompletion(Exited(lease, 0)).code(),
            absl::StatusCode::kFailedPrecondition);
}

// A spec without a timeout runs under its executor's default, which the
// executor reports at the start: the server's deadline counts from that.
TEST_F(SchedulerTest, ServerDeadlineUsesTheTimeoutTheExecutorReported) {
  options_.timeout_grace = absl::Seconds(5);
  options_.lease_ttl = absl::Hours(1);
  Restart();
  std::string id = Create(Spec());  // no timeout
  FakeSink sink;
  Connect(sink, 1);
  std::string lease = sink.TakeAssignments().at(0).lease_id();
  ASSERT_TRUE(
      scheduler_->ReportStarted(lease, clock_.Now(), absl::Minutes(10)).ok());
  clock_.Advance(absl::Minutes(10) + absl::Seconds(5) - absl::Milliseconds(1));
  EXPECT_EQ(scheduler_->ExpireLeases(), 0);
  EXPECT_EQ(Get(id).state(), crucible::v1::TASK_STATE_RUNNING);
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_EQ(scheduler_->ExpireLeases(), 1);
  EXPECT_EQ(Get(id).state(), crucible::v1::TASK_STATE_TIMED_OUT);
}

// From an older worker or executor (no reported timeout) a spec without a
// timeout has no server-side deadline, as before.
TEST_F(SchedulerTest, NoServerDeadlineWithoutATimeoutFromSpecOrExecutor) {
  options_.timeout_grace = absl::Seconds(5);
  options_.lease_ttl = absl::Hours(100);
  Restart();
  std::string id = Create(Spec());
  FakeSink sink;
  Connect(sink, 1);
  std::string lease = sink.TakeAssignments().at(0).lease_id();
  ASSERT_TRUE(scheduler_->ReportStarted(lease, clock_.Now()).ok());
  clock_.Advance(absl::Hours(48));
  EXPECT_EQ(scheduler_->ExpireLeases(), 0);
  EXPECT_EQ(Get(id).state(), crucible::v1::TASK_STATE_RUNNING);
}

TEST_F(SchedulerTest, CancelOfAnEndedOrUnknownTask) {
  std::string id = Create(Spec());
  ASSERT_TRUE(scheduler_->CancelTask(kTenant, id, "").ok());
  EXPECT_EQ(scheduler_->CancelTask(kTenant, id, "").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(scheduler_->CancelTask(kTenant, "nope", "").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SchedulerTest, CancelOfALeasedTaskEndsOnTheWorkersReport) {
  std::string id = Create(Spec());
  FakeSink sink;
  Connect(sink, 1);
  std::string lease = sink.TakeAssignments().at(0).lease_id();
  auto cancelled = scheduler_->CancelTask(kTenant, id, "stop");
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state(), crucible::v1::TASK_STATE_LEASED);
  ASSERT_EQ(sink.TakeCancels().size(), 1u);
  crucible::v1::AttemptCompletion c;
  c.set_lease_id(lease);
  c.mutable_result()->set_reason(crucible::v1::TERMINATION_REASON_CANCELLED);
  ASSERT_TRUE(scheduler_->ReportCompletion(c).ok());
  EXPECT_EQ(Get(id).state(), crucible::v1::TASK_STATE_CANCELLED);
}

TEST_F(SchedulerTest, RequestIdStaysIdempotentAfterTheTaskEndedAndARestart) {
  auto first = scheduler_->CreateTask(kTenant, Spec(), "req-9");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(scheduler_->CancelTask(kTenant, first->id(), "").ok());
  Restart();
  auto again = scheduler_->CreateTask(kTenant, Spec(), "req-9");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id(), first->id());
  EXPECT_EQ(again->state(), crucible::v1::TASK_STATE_CANCELLED);
}

TEST_F(SchedulerTest, ConcurrentCreatesWithOneRequestIdMakeOneTask) {
  std::vector<std::string> ids(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto t = scheduler_->CreateTask(kTenant, Spec(), "same");
      if (t.ok()) ids[i] = t->id();
    });
  }
  for (std::thread& t : threads) t.join();
  for (const std::string& id : ids) EXPECT_EQ(id, ids[0]);
  auto page = scheduler_->ListTasks(kTenant, {});
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->tasks.size(), 1u);
}

TEST_F(SchedulerTest, EndedTasksArePurgedAfterRetention) {
  options_.retention = absl::Hours(1);
  Restart();
  std::string ended = Create(Spec());
  std::string queued = Create(Spec());
  ASSERT_TRUE(scheduler_->CancelTask(kTenant, ended, "").ok());
  clock_.Advance(absl::Minutes(59));
  auto purged = scheduler_->PurgeExpired();
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(*purged, 0);
  clock_.Advance(absl::Minutes(2));
  purged = scheduler_->PurgeExpired();
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(*purged, 1);
  EXPECT_EQ(scheduler_->GetTask(kTenant, ended).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Get(queued).state(), crucible::v1::TASK_STATE_QUEUED);
}

TEST_F(SchedulerTest, SpecsAboveTheConfiguredMaximaAreRefused) {
  options_.limits.max_memory_bytes = 1 << 20;
  options_.limits.max_timeout = absl::Minutes(1);
  Restart();
  crucible::v1::TaskSpec spec = Spec();
  spec.mutable_resources()->set_memory_bytes(2 << 20);
  absl::Status s = scheduler_->CreateTask(kTenant, spec, "").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "spec.resources.memory_bytes"))
      << s;
  spec = Spec();
  *spec.mutable_timeout() = common::ToProtoDuration(absl::Minutes(2));
  s = scheduler_->CreateTask(kTenant, spec, "").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "spec.timeout")) << s;
  spec.mutable_resources()->set_memory_bytes(1 << 20);
  *spec.mutable_timeout() = common::ToProtoDuration(absl::Minutes(1));
  EXPECT_TRUE(scheduler_->CreateTask(kTenant, spec, "").ok());
}

}  // namespace
}  // namespace server
