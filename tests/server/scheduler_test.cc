// Dispatch, credits, leases, cancel, idempotency and restart.
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "tests/server/scheduler_fixture.h"

namespace server {
namespace {

using crucible::v1::Assignment;

std::vector<std::string> TaskIds(const std::vector<Assignment>& as) {
  std::vector<std::string> ids;
  for (const Assignment& a : as) ids.push_back(a.task().id());
  return ids;
}

TEST_F(SchedulerTest, HigherPriorityFirstThenFifo) {
  std::string a = Create(Spec(0));
  std::string b = Create(Spec(5));
  std::string c = Create(Spec(0));
  std::string d = Create(Spec(5));
  FakeSink sink;
  Connect(sink, 4);
  EXPECT_EQ(TaskIds(sink.TakeAssignments()),
            (std::vector<std::string>{b, d, a, c}));
}

TEST_F(SchedulerTest, AssignsOnlyWhileCreditsLast) {
  std::string a = Create(Spec());
  std::string b = Create(Spec());
  std::string c = Create(Spec());
  FakeSink sink;
  int64_t session = Connect(sink, 1);
  std::vector<Assignment> got = sink.TakeAssignments();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].task().id(), a);
  EXPECT_EQ(got[0].attempt(), 1);
  EXPECT_EQ(Get(a).state(), crucible::v1::TASK_STATE_LEASED);
  EXPECT_EQ(Get(b).state(), crucible::v1::TASK_STATE_QUEUED);
  EXPECT_TRUE(sink.TakeAssignments().empty());

  ASSERT_TRUE(scheduler_->AddCredits(session, 1).ok());
  got = sink.TakeAssignments();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].task().id(), b);
  EXPECT_EQ(Get(c).state(), crucible::v1::TASK_STATE_QUEUED);
  EXPECT_EQ(scheduler_->AddCredits(session, 0).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SchedulerTest, NotBeforeIsRespected) {
  crucible::v1::TaskSpec spec = Spec();
  *spec.mutable_not_before() =
      common::ToProtoTime(clock_.Now() + absl::Seconds(10));
  std::string id = Create(spec);
  FakeSink sink;
  Connect(sink, 1);
  EXPECT_TRUE(sink.TakeAssignments().empty());
  clock_.Advance(absl::Seconds(11));
  scheduler_->ExpireLeases();
  std::vector<Assignment> got = sink.TakeAssignments();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].task().id(), id);
}

TEST_F(SchedulerTest, LeaseIdsAreUniqueAndCarryADeadline) {
  Create(Spec());
  Create(Spec());
  FakeSink sink;
  Connect(sink, 2);
  std::vector<Assignment> got = sink.TakeAssignments();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_NE(got[0].lease_id(), got[1].lease_id());
  EXPECT_EQ(got[0].lease_id().size(), 32u);
  EXPECT_EQ(common::FromProtoTime(got[0].lease_deadline()),
            clock_.Now() + options_.lease_ttl);
}

TEST_F(SchedulerTest, TaskIdsAreUniqueHexAndSortByCreationTime) {
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(Create(Spec()));
    ids.push_back(Create(Spec()));  // same millisecond: still unique
    clock_.Advance(absl::Milliseconds(1));
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(ids[i].size(), 32u);
    EXPECT_EQ(ids[i].find_first_not_of("0123456789abcdef"), std::string::npos)
        << ids[i];
    if (i > 0) EXPECT_NE(ids[i], ids[i - 1]);
    // Ids of later milliseconds sort after earlier ones.
    if (i >= 2) EXPECT_LT(ids[i - 2], ids[i]);
  }
  // The first 12 hex digits are the creation time in milliseconds.
  EXPECT_EQ(
      ids.back().substr(0, 12),
      absl::StrFormat(
          "%012x", absl::ToUnixMillis(clock_.Now() - absl::Milliseconds(1))));
}

TEST_F(SchedulerTest, StaleLeaseIsRefused) {
  std::string id = Create(Spec());
  FakeSink sink;
  Connect(sink, 1);
  std::vector<Assignment> got = sink.TakeAssignments();
  ASSERT_EQ(got.size(), 1u);
  const std::string lease = got[0].lease_id();
  EXPECT_EQ(scheduler_->ReportStarted("not-a-lease", clock_.Now()).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(scheduler_->ReportCompletion(Exited(lease, 0)).ok());
  EXPECT_EQ(Get(id).state(), crucible::v1::TASK_STATE_SUCCEEDED);
  // The same lease again: the task completes at most once.
  EXPECT_EQ(scheduler_->ReportCompletion(Exited(lease, 1)).code(),
            absl::StatusCode::kFailedPrecondition);
  crucible::v1::OutputChunk chunk;
  chunk.set_data("late");
  EXPECT_EQ(scheduler_->ReportOutput(lease, chunk).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Get(id).state(), crucible::v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(scheduler_->Heartbeat(0, {lease}), std::vector<std::string>{lease});
}

TEST_F(SchedulerTest, HeartbeatExtendsTheLease) {
  std::string id = Create(Spec());
  FakeSink sink;
  int64_t session = Connect(sink, 1);
  std::string lease = sink.TakeAssignments().at(0).lease_id();
  clock_.Advance(options_.lease_ttl - absl::Seconds(5));
  EXPECT_TRUE(scheduler_->Heartbeat(session, {lease}).empty());
  clock_.Advance(absl::Seconds(10));  // past the original deadline
  EXPECT_EQ(scheduler_->ExpireLeases(), 0);
  EXPECT_EQ(Get(id).state(), crucible::v1::TASK_STATE_LEASED);
  EXPECT_TRUE(scheduler_->ReportStarted(lease, clock_.Now()).ok());
}

TEST_F(SchedulerTest, ExpiredLeaseRequeuesWithANewLease) {
  std::string id = Create(Spec());
  FakeSink sink;
  int64_t session = Connect(sink, 1);
  std::string lease = sink.TakeAssignments().at(0).lease_id();
  ASSERT_TRUE(scheduler_->ReportStarted(lease, clock_.Now()).ok());
  clock_.Advance(options_.lease_ttl + absl::Seconds(1));
  EXPECT_EQ(scheduler_->ExpireLeases(), 1);
  crucible::v1::Task task = Get(id);
  EXPECT_EQ(task.state(), crucible::v1::TASK_STATE_QUEUED);
  EXPECT_EQ(task.last_error(), "lease expired");
  // The old lease is dead for good.
  EXPECT_EQ(scheduler_->ReportCompletion(Exited(lease, 0)).code(),
            absl::StatusCode::kFailedPrecondition);
  // After the backoff, and with a credit back, attempt 2 goes out.
  ASSERT_TRUE(scheduler_->AddCredits(session, 1).ok());
  EXPECT_TRUE(sink.TakeAssignments().empty());  // backoff not over
  clock_.Advance(options_.initial_backoff);
  scheduler_->ExpireLeases();
  std::vector<Assignment> got = sink.TakeAssignments();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].attempt(), 2);
  EXPECT_NE(got[0].lease_id(), lease);
}

// A waiting task is kept serialized (a deep queue must fit in memory): the
// worker still gets every field of its spec, on the first attempt, after a
// retry put it back in the queue, and after a restart rebuilt the queue.
TEST_F(SchedulerTest, AWaitingTaskIsHandedOutWhole) {
  crucible::v1::TaskSpec spec = Spec(3);
  spec.add_command("-c");
  (*spec.mutable_env())["CASE"] = "42";
  (*spec.mutable_labels())["suite"] = "deep";
  spec.set_stdin("input");
  spec.mutable_timeout()->set_seconds(7);
  spec.mutable_retry_policy()->set_max_attempts(3);
  spec.mutable_retry_policy()->set_retry_on_nonzero_exit(true);
  std::string id = Create(spec);
  auto same_spec = [&](const Assignment& a) {
    return google::protobuf::util::MessageDifferencer::Equals(a.task().spec(),
                                                              spec);
  };
  EXPECT_TRUE(
      google::protobuf::util::MessageDifferencer::Equals(Get(id).spec(), spec));

  FakeSink sink;
  int64_t session = Connect(sink, 1);
  std::vector<Assignment> got = sink.TakeAssignments();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(same_spec(got[0]));
  ASSERT_TRUE(scheduler_->ReportCompletion(Exited(got[0].lease_id(), 1)).ok());
  EXPECT_EQ(Get(id).state(), crucible::v1::TASK_STATE_QUEUED);
  clock_.Advance(options_.max_backoff);
  ASSERT_TRUE(scheduler_->AddCredits(session, 1).ok());
  scheduler_->ExpireLeases();
  got = sink.TakeAssignments();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].attempt(), 2);
  EXPECT_TRUE(same_spec(got[0]));
  ASSERT_TRUE(scheduler_->ReportCompletion(Exited(got[0].lease_id(), 1)).ok());
  scheduler_->DisconnectWorker(session);

  Restart();
  clock_.Advance(options_.max_backoff);
  FakeSink after;
  Connect(after, 1);
  got = after.TakeAssignments();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].attempt(), 3);
  EXPECT_TRUE(same_spec(got[0]));
  EXPECT_EQ(got[0].task().id(), id);
}

TEST_F(SchedulerTest, DisconnectedWorkerKeepsItsLeasesUntilTheirDeadline) {
  std::string id = Create(Spec());
  FakeSink sink;
  int64_t session = Connect(sink, 1);
  std::string lease = sink.TakeAssignments().at(0).lease_id();
  scheduler_->DisconnectWorker(session);
  clock_.Advance(options_.lease_ttl - absl::Seconds(1));
  EXPECT_EQ(scheduler_->ExpireLeases(), 0);
  // Reconnected in time: its reports still count.
  FakeSink again;
  int64_t resumed = Connect(again, 0);
  EXPECT_TRUE(scheduler_->Heartbeat(resumed, {lease}).empty());
  ASSERT_TRUE(scheduler_->ReportCompletion(Exited(lease, 0)).ok());
  EXPECT_EQ(Get(id).state(), crucible::v1::TASK_STATE_SUCCEEDED);
}

TEST_F(SchedulerTest, CancelQueuedEndsAtOnce) {
  std::string id = Create(Spec());
  auto task = scheduler_->CancelTask(kTenant, id, "no longer needed");
  ASSERT_TRUE(task.ok()) << task.status();
  EXPECT_EQ(task->state(), crucible::v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(task->result().reason(),
            crucible::v1::TERMINATION_REASON_CANCELLED);
  EXPECT_TRUE(task->has_end_time());
  EXPECT_EQ(scheduler_->CancelTask(kTenant, id, "").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(scheduler_->CancelTask(kTenant, "nope", "").status().code(),
            absl::StatusCode::kNotFound);
  FakeSink sink;
  Connect(sink, 1);
  EXPECT_TRUE(sink.TakeAssignments().empty());
}

TEST_F(SchedulerTest, CancelRunningAsksTheWorkerThenEndsOnItsReport) {
  std::string id = Create(Spec());
  FakeSink sink;
  Connect(sink, 1);
  std::string lease = sink.TakeAssignments().at(0).lease_id();
  ASSERT_TRUE(scheduler_->ReportStarted(lease, clock_.Now()).ok());
  auto task = scheduler_->CancelTask(kTenant, id, "stop");
  ASSERT_TRUE(task.ok()) << task.status();
  EXPECT_EQ(task->state(), crucible::v1::TASK_STATE_RUNNING);
  std::vector<crucible::v1::AssignmentCancel> cancels = sink.TakeCancels();
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].lease_id(), lease);
  EXPECT_EQ(cancels[0].reason(), "stop");

  crucible::v1::AttemptCompletion done;
  done.set_lease_id(lease);
  done.mutable_result()->set_reason(crucible::v1::TERMINATION_REASON_CANCELLED);
  ASSERT_TRUE(scheduler_->ReportCompletion(done).ok());
  EXPECT_EQ(Get(id).state(), crucible::v1::TASK_STATE_CANCELLED);
}

TEST_F(SchedulerTest, CancelledTaskWhoseLeaseLapsesEndsCancelled) {
  std::string id = Create(Spec());
  FakeSink sink;
  Connect(sink, 1);
  sink.TakeAssignments();
  ASSERT_TRUE(scheduler_->CancelTask(kTenant, id, "stop").ok());
  clock_.Advance(options_.lease_ttl + absl::Seconds(1));
  EXPECT_EQ(scheduler_->ExpireLeases(), 1);
  EXPECT_EQ(Get(id).state(), crucible::v1::TASK_STATE_CANCELLED);
}

TEST_F(SchedulerTest, CreateIsIdempotentByRequestId) {
  auto first = scheduler_->CreateTask(kTenant, Spec(), "req-1");
  ASSERT_TRUE(first.ok());
  auto second = scheduler_->CreateTask(kTenant, Spec(), "req-1");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->id(), second->id());
  EXPECT_EQ(first->tenant(), "default");
  auto page = scheduler_->ListTasks(kTenant, {});
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->tasks.size(), 1u);
  EXPECT_EQ(scheduler_->CreateTask(kTenant, Spec(), std::string(129, 'r'))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SchedulerTest, CreateRejectsAnInvalidSpec) {
  crucible::v1::TaskSpec spec = Spec();
  spec.clear_image();
  EXPECT_EQ(scheduler_->CreateTask(kTenant, spec, "").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SchedulerTest,
       RestartRebuildsTheQueueAndLapsesUnclaimedLeasesAfterTheGrace) {
  std::string low = Create(Spec(0));
  std::string high = Create(Spec(9));
  std::string running = Create(Spec(10));
  crucible::v1::TaskSpec once = Spec(10);
  once.mutable_retry_policy()->set_max_attempts(1);
  std::string once_id = Create(once);
  {
    FakeSink sink;
    Connect(sink, 2);
    std::vector<Assignment> got = sink.TakeAssignments();
    ASSERT_EQ(TaskIds(got), (std::vector<std::string>{running, once_id}));
    ASSERT_TRUE(
        scheduler_->ReportStarted(got[0].lease_id(), clock_.Now()).ok());
  }
  Restart();
  // Kept for the grace; nobody names them, so they lapse then.
  EXPECT_EQ(Get(running).state(), crucible::v1::TASK_STATE_RUNNING);
  clock_.Advance(options_.restart_grace);
  EXPECT_EQ(scheduler_->ExpireLeases(), 2);
  crucible::v1::Task t = Get(running);
  EXPECT_EQ(t.state(), crucible::v1::TASK_STATE_QUEUED);
  EXPECT_EQ(t.attempt(), 1);
  EXPECT_FALSE(t.last_error().empty());
  // A lapse after a restart is the system's fault, not the task's: even a
  // task allowed one attempt goes again.
  EXPECT_EQ(t.infrastructure_failures(), 1);
  EXPECT_EQ(Get(once_id).state(), crucible::v1::TASK_STATE_QUEUED);

  clock_.Advance(options_.infra_max_backoff);
  FakeSink sink;
  Connect(sink, 5);
  std::vector<Assignment> got = sink.TakeAssignments();
  EXPECT_EQ(TaskIds(got),
            (std::vector<std::string>{running, once_id, high, low}));
  EXPECT_EQ(got[0].attempt(), 2);
}

}  // namespace
}  // namespace server
