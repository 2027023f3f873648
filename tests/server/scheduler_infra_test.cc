// The system's faults are not the task's attempts: retries of attempts that
// ended for infrastructure reasons, their own backoff and horizon.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "tests/server/scheduler_fixture.h"

namespace server {
namespace {

using crucible::v1::Assignment;

class SchedulerInfraTest : public SchedulerTest {
 protected:
  void SetUp() override {
    SchedulerTest::SetUp();
    options_.default_max_attempts = 2;
    options_.infra_initial_backoff = absl::Seconds(1);
    options_.infra_max_backoff = absl::Seconds(8);
    options_.infra_horizon = absl::Minutes(10);
    Restart();
  }
  // The next assignment, after letting any backoff pass.
  Assignment Next(FakeSink& sink) {
    clock_.Advance(options_.infra_max_backoff);
    scheduler_->ExpireLeases();
    std::vector<Assignment> got = sink.TakeAssignments();
    EXPECT_EQ(got.size(), 1u);
    return got.empty() ? Assignment() : got[0];
  }
  void Fail(FakeSink& sink, int64_t session, const Assignment& a,
            absl::StatusCode code) {
    ASSERT_TRUE(scheduler_->ReportCompletion(Error(a.lease_id(), code)).ok());
    ASSERT_TRUE(scheduler_->AddCredits(session, 1).ok());
  }
};

TEST_F(SchedulerInfraTest, UnreachableExecutorsDoNotSpendTheTasksAttempts) {
  std::string id = Create(Spec());
  FakeSink sink;
  int64_t session = Connect(sink, 1);
  Assignment a = sink.TakeAssignments().at(0);
  // Five times more than max_attempts, each an infrastructure failure.
  for (int i = 1; i <= 10; ++i) {
    EXPECT_EQ(a.attempt(), i);
    Fail(sink, session, a, absl::StatusCode::kUnavailable);
    crucible::v1::Task t = Get(id);
    ASSERT_EQ(t.state(), crucible::v1::TASK_STATE_QUEUED) << i;
    EXPECT_EQ(t.infrastructure_failures(), i);
    EXPECT_TRUE(absl::StrContains(t.last_error(), "UNAVAILABLE"))
        << t.last_error();
    a = Next(sink);
  }
  ASSERT_TRUE(scheduler_->ReportCompletion(Exited(a.lease_id(), 0)).ok());
  crucible::v1::Task t = Get(id);
  EXPECT_EQ(t.state(), crucible::v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(t.attempt(), 11);
  EXPECT_EQ(t.infrastructure_failures(), 10);
}

TEST_F(SchedulerInfraTest, InfrastructureBackoffDoublesUpToItsCap) {
  std::string id = Create(Spec());
  FakeSink sink;
  int64_t session = Connect(sink, 1);
  Assignment a = sink.TakeAssignments().at(0);
  for (absl::Duration want :
       {absl::Seconds(1), absl::Seconds(2), absl::Seconds(4), absl::Seconds(8),
        absl::Seconds(8)}) {
    const absl::Time failed_at = clock_.Now();
    Fail(sink, session, a, absl::StatusCode::kUnavailable);
    EXPECT_EQ(common::FromProtoTime(Get(id).next_attempt_time()),
              failed_at + want);
    a = Next(sink);
  }
}

TEST_F(SchedulerInfraTest, TheTasksOwnFailuresStillSpendAttempts) {
  std::string id = Create(Spec());
  FakeSink sink;
  int64_t session = Connect(sink, 1);
  Assignment a = sink.TakeAssignments().at(0);
  Fail(sink, session, a, absl::StatusCode::kUnavailable);  // not counted
  a = Next(sink);
  Fail(sink, session, a, absl::StatusCode::kInternal);  // counted: 1 of 2
  EXPECT_EQ(Get(id).state(), crucible::v1::TASK_STATE_QUEUED);
  EXPECT_FALSE(Get(id).has_infrastructure_failing_since());
  a = Next(sink);
  Fail(sink, session, a, absl::StatusCode::kInternal);  // counted: 2 of 2
  crucible::v1::Task t = Get(id);
  EXPECT_EQ(t.state(), crucible::v1::TASK_STATE_FAILED);
  EXPECT_EQ(t.attempt(), 3);
  EXPECT_EQ(t.infrastructure_failures(), 1);
  EXPECT_TRUE(
      absl::StrContains(t.result().error_message(), "attempts exhausted (2)"));
}

TEST_F(SchedulerInfraTest, AWorkerLostMidTaskIsTheSystemsFault) {
  crucible::v1::TaskSpec once = Spec();
  once.mutable_retry_policy()->set_max_attempts(1);
  std::string id = Create(once);
  {
    FakeSink sink;
    Connect(sink, 1);
    ASSERT_EQ(sink.TakeAssignments().size(), 1u);
  }  // the worker is gone without a word; its lease lapses
  clock_.Advance(options_.lease_ttl);
  scheduler_->ExpireLeases();
  crucible::v1::Task t = Get(id);
  EXPECT_EQ(t.state(), crucible::v1::TASK_STATE_QUEUED);
  EXPECT_EQ(t.infrastructure_failures(), 1);
  FakeSink sink;
  Connect(sink, 1, "w2");
  Assignment a = Next(sink);
  EXPECT_EQ(a.attempt(), 2);
  ASSERT_TRUE(scheduler_->ReportCompletion(Exited(a.lease_id(), 0)).ok());
  EXPECT_EQ(Get(id).state(), crucible::v1::TASK_STATE_SUCCEEDED);
}

TEST_F(SchedulerInfraTest,
       InfrastructureThatKeepsFailingPastTheHorizonFailsTheTask) {
  std::string id = Create(Spec());
  FakeSink sink;
  int64_t session = Connect(sink, 1);
  Assignment a = sink.TakeAssignments().at(0);
  const absl::Time first = clock_.Now();
  for (int i = 0; i < 1000; ++i) {
    Fail(sink, session, a, absl::StatusCode::kUnavailable);
    if (clock_.Now() - first >= options_.infra_horizon) break;
    ASSERT_EQ(Get(id).state(), crucible::v1::TASK_STATE_QUEUED)
        << clock_.Now() - first;
    EXPECT_EQ(common::FromProtoTime(Get(id).infrastructure_failing_since()),
              first);
    a = Next(sink);
  }
  crucible::v1::Task t = Get(id);
  EXPECT_EQ(t.state(), crucible::v1::TASK_STATE_FAILED);
  EXPECT_EQ(t.result().reason(),
            crucible::v1::TERMINATION_REASON_INFRASTRUCTURE);
  EXPECT_TRUE(absl::StrContains(t.result().error_message(),
                                "the infrastructure kept failing"))
      << t.result().error_message();
  EXPECT_GT(t.infrastructure_failures(), options_.default_max_attempts);
}

TEST_F(SchedulerInfraTest, TheCountsSurviveARestart) {
  std::string id = Create(Spec());
  {
    FakeSink sink;
    int64_t session = Connect(sink, 1);
    Fail(sink, session, sink.TakeAssignments().at(0),
         absl::StatusCode::kUnavailable);
  }
  Restart();
  crucible::v1::Task t = Get(id);
  EXPECT_EQ(t.infrastructure_failures(), 1);
  EXPECT_TRUE(t.has_infrastructure_failing_since());
}

}  // namespace
}  // namespace server

namespace server {
namespace {

// Every code an executor or worker may report, read the one way
// (common::ClassifyAttemptFailure): the system's fault, maybe the task's,
// or final. Each code on a task of its own, first attempt.
TEST_F(SchedulerInfraTest, EachErrorCodeIsTheSystemsTheTasksOrFinal) {
  struct Case {
    absl::StatusCode code;
    crucible::v1::TaskState state;
    int infrastructure_failures;
  };
  const std::vector<Case> cases = {
      {absl::StatusCode::kUnavailable, crucible::v1::TASK_STATE_QUEUED, 1},
      {absl::StatusCode::kAborted, crucible::v1::TASK_STATE_QUEUED, 1},
      {absl::StatusCode::kResourceExhausted, crucible::v1::TASK_STATE_QUEUED,
       1},
      {absl::StatusCode::kDeadlineExceeded, crucible::v1::TASK_STATE_QUEUED, 0},
      {absl::StatusCode::kInternal, crucible::v1::TASK_STATE_QUEUED, 0},
      {absl::StatusCode::kUnknown, crucible::v1::TASK_STATE_QUEUED, 0},
      // A proxy's 403 arrives as PERMISSION_DENIED: configuration, not outage.
      {absl::StatusCode::kPermissionDenied, crucible::v1::TASK_STATE_FAILED, 0},
      {absl::StatusCode::kFailedPrecondition, crucible::v1::TASK_STATE_FAILED,
       0},
      {absl::StatusCode::kInvalidArgument, crucible::v1::TASK_STATE_FAILED, 0},
      {absl::StatusCode::kNotFound, crucible::v1::TASK_STATE_FAILED, 0},
      // And every other code: final too.
      {absl::StatusCode::kCancelled, crucible::v1::TASK_STATE_FAILED, 0},
      {absl::StatusCode::kAlreadyExists, crucible::v1::TASK_STATE_FAILED, 0},
      {absl::StatusCode::kOutOfRange, crucible::v1::TASK_STATE_FAILED, 0},
      {absl::StatusCode::kUnimplemented, crucible::v1::TASK_STATE_FAILED, 0},
      {absl::StatusCode::kDataLoss, crucible::v1::TASK_STATE_FAILED, 0},
      {absl::StatusCode::kUnauthenticated, crucible::v1::TASK_STATE_FAILED, 0},
  };
  FakeSink sink;
  int64_t session = Connect(sink, 1);
  for (const Case& c : cases) {
    const std::string id = Create(Spec());
    std::vector<Assignment> got = sink.TakeAssignments();
    ASSERT_EQ(got.size(), 1u) << absl::StatusCodeToString(c.code);
    Fail(sink, session, got[0], c.code);
    const crucible::v1::Task t = Get(id);
    EXPECT_EQ(t.state(), c.state) << absl::StatusCodeToString(c.code);
    EXPECT_EQ(t.infrastructure_failures(), c.infrastructure_failures)
        << absl::StatusCodeToString(c.code);
    if (c.state == crucible::v1::TASK_STATE_FAILED) {
      EXPECT_EQ(t.result().reason(), crucible::v1::TERMINATION_REASON_REJECTED)
          << absl::StatusCodeToString(c.code);
    } else {
      ASSERT_TRUE(scheduler_->CancelTask(kTenant, id, "")
                      .ok());  // out of the way of the next
    }
  }
}

}  // namespace
}  // namespace server
