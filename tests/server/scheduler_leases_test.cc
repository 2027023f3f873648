// Leases across a server restart (kept for restart_grace, taken back by the
// worker that names them), a worker lost without a goodbye (its leases lapse
// after lost_worker_grace), and a clean shutdown (GoAway).
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "tests/server/scheduler_fixture.h"

namespace server {
namespace {

using crucible::v1::Assignment;
using crucible::v1::HeldLease;

HeldLease Held(const Assignment& a) {
  HeldLease h;
  h.set_lease_id(a.lease_id());
  h.set_task_id(a.task().id());
  h.set_attempt(a.attempt());
  return h;
}

// Counts the going_away messages a worker gets. Thread-safe.
class GoingAwaySink : public WorkerSink {
 public:
  void Send(crucible::v1::ConnectResponse message) override {
    absl::MutexLock lock(&mu_);
    if (message.has_going_away()) ++going_away_;
    if (message.has_assignment() || message.has_assignments()) ++assignments_;
  }
  int going_away() {
    absl::MutexLock lock(&mu_);
    return going_away_;
  }
  int assignments() {
    absl::MutexLock lock(&mu_);
    return assignments_;
  }

 private:
  absl::Mutex mu_;
  int going_away_ ABSL_GUARDED_BY(mu_) = 0;
  int assignments_ ABSL_GUARDED_BY(mu_) = 0;
};

class SchedulerLeasesTest : public SchedulerTest {
 protected:
  // Leases `n` new tasks to worker "w1" and returns their assignments.
  std::vector<Assignment> LeaseTasks(int n, FakeSink& sink) {
    for (int i = 0; i < n; ++i) Create(Spec());
    session_ = Connect(sink, n);
    return sink.TakeAssignments();
  }
  int64_t session_ = 0;  // of LeaseTasks' worker
};

// After a restart, a running attempt whose spec sets no timeout gets its
// server-side deadline back when its worker names the lease with the
// timeout its executor reported, counted from the stored start.
TEST_F(SchedulerLeasesTest, RestartTakesTheReportedTimeoutFromTheHeldLease) {
  options_.timeout_grace = absl::Seconds(5);
  Restart();
  std::vector<Assignment> got;
  {
    FakeSink sink;
    got = LeaseTasks(1, sink);
    ASSERT_EQ(got.size(), 1u);
    ASSERT_TRUE(
        scheduler_
            ->ReportStarted(got[0].lease_id(), clock_.Now(), absl::Seconds(20))
            .ok());
  }
  Restart();
  FakeSink again;
  int64_t session = Connect(again, 0);
  HeldLease held = Held(got[0]);
  *held.mutable_timeout() = common::ToProtoDuration(absl::Seconds(20));
  EXPECT_TRUE(scheduler_->Heartbeat(session, {}, {held}).empty());
  clock_.Advance(absl::Seconds(25) - absl::Milliseconds(1));
  EXPECT_TRUE(scheduler_->Heartbeat(session, {got[0].lease_id()}).empty());
  EXPECT_EQ(scheduler_->ExpireLeases(), 0);
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_EQ(scheduler_->ExpireLeases(), 1);
  EXPECT_EQ(Get(got[0].task().id()).state(),
            crucible::v1::TASK_STATE_TIMED_OUT);
}

TEST_F(SchedulerLeasesTest,
       RestartKeepsNamedLeasesAndLapsesTheOthersAfterTheGrace) {
  std::vector<Assignment> got;
  {
    FakeSink sink;
    got = LeaseTasks(2, sink);
    ASSERT_EQ(got.size(), 2u);
    ASSERT_TRUE(
        scheduler_->ReportStarted(got[0].lease_id(), clock_.Now()).ok());
  }
  const std::string kept = got[0].task().id();
  const std::string lost = got[1].task().id();
  Restart();
  EXPECT_EQ(Get(kept).state(), crucible::v1::TASK_STATE_RUNNING);
  EXPECT_EQ(Get(lost).state(), crucible::v1::TASK_STATE_LEASED);

  // The worker reconnects a little later and names the lease it still runs.
  clock_.Advance(options_.restart_grace / 2);
  EXPECT_EQ(scheduler_->ExpireLeases(), 0);
  FakeSink again;
  int64_t session = Connect(again, 0);
  EXPECT_TRUE(scheduler_->Heartbeat(session, {}, {Held(got[0])}).empty());
  EXPECT_TRUE(again.TakeAssignments().empty());

  // At the end of the grace only the unnamed one lapses, and only now does
  // its attempt count.
  clock_.Advance(options_.restart_grace / 2);
  EXPECT_EQ(scheduler_->ExpireLeases(), 1);
  crucible::v1::Task t = Get(lost);
  EXPECT_EQ(t.state(), crucible::v1::TASK_STATE_QUEUED);
  EXPECT_EQ(t.attempt(), 1);
  EXPECT_TRUE(absl::StrContains(t.last_error(), "server restarted"))
      << t.last_error();
  // Refused once, though named in both fields.
  EXPECT_EQ(scheduler_->Heartbeat(session, {got[1].lease_id()}, {Held(got[1])}),
            std::vector<std::string>{got[1].lease_id()});
  EXPECT_EQ(scheduler_->ReportCompletion(Exited(got[1].lease_id(), 0)).code(),
            absl::StatusCode::kFailedPrecondition);

  // The kept lease is an ordinary live lease: heartbeats extend it past the
  // grace and its report ends the task in its first attempt.
  EXPECT_TRUE(scheduler_->Heartbeat(session, {got[0].lease_id()}).empty());
  clock_.Advance(options_.lease_ttl - absl::Seconds(1));
  EXPECT_EQ(scheduler_->ExpireLeases(), 0);
  ASSERT_TRUE(scheduler_->ReportCompletion(Exited(got[0].lease_id(), 0)).ok());
  t = Get(kept);
  EXPECT_EQ(t.state(), crucible::v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(t.attempt(), 1);
  EXPECT_TRUE(t.last_error().empty()) << t.last_error();
}

TEST_F(SchedulerLeasesTest, AKeptLeaseGoesOnlyToItsAttemptAndOnlyOnce) {
  std::vector<Assignment> got;
  {
    FakeSink sink;
    got = LeaseTasks(1, sink);
    ASSERT_EQ(got.size(), 1u);
  }
  Restart();
  FakeSink s1, s2;
  int64_t w1 = Connect(s1, 0, "w1");
  int64_t w2 = Connect(s2, 0, "w2");
  // Before the worker names it, a report under the lease is refused and
  // changes nothing.
  EXPECT_EQ(scheduler_->ReportStarted(got[0].lease_id(), clock_.Now()).code(),
            absl::StatusCode::kFailedPrecondition);
  HeldLease wrong_attempt = Held(got[0]);
  wrong_attempt.set_attempt(2);
  EXPECT_EQ(scheduler_->Heartbeat(w1, {}, {wrong_attempt}),
            std::vector<std::string>{got[0].lease_id()});
  HeldLease empty = Held(got[0]);
  empty.clear_lease_id();
  EXPECT_EQ(scheduler_->Heartbeat(w1, {}, {empty}).size(), 1u);

  // Named in both fields, as workers do: taken back once, refused never.
  EXPECT_TRUE(
      scheduler_->Heartbeat(w1, {got[0].lease_id()}, {Held(got[0])}).empty());
  // Named again (a later resume): extended, not refused.
  EXPECT_TRUE(scheduler_->Heartbeat(w1, {}, {Held(got[0])}).empty());
  // Another worker naming the same task and attempt under another id loses.
  HeldLease other = Held(got[0]);
  other.set_lease_id("0123456789abcdef0123456789abcdef");
  EXPECT_EQ(scheduler_->Heartbeat(w2, {}, {other}),
            std::vector<std::string>{other.lease_id()});
  EXPECT_EQ(scheduler_->ReportCompletion(Exited(other.lease_id(), 0)).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(scheduler_->ReportStarted(got[0].lease_id(), clock_.Now()).ok());
  ASSERT_TRUE(scheduler_->ReportCompletion(Exited(got[0].lease_id(), 0)).ok());
  crucible::v1::Task t = Get(got[0].task().id());
  EXPECT_EQ(t.state(), crucible::v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(t.attempt(), 1);
}

TEST_F(SchedulerLeasesTest,
       ACancelOfAKeptLeaseReachesTheWorkerThatTakesItBack) {
  std::vector<Assignment> got;
  {
    FakeSink sink;
    got = LeaseTasks(1, sink);
    ASSERT_EQ(got.size(), 1u);
  }
  Restart();
  ASSERT_TRUE(scheduler_->CancelTask(kTenant, got[0].task().id(), "stop").ok());
  FakeSink sink;
  int64_t session = Connect(sink, 0);
  EXPECT_TRUE(scheduler_->Heartbeat(session, {}, {Held(got[0])}).empty());
  std::vector<crucible::v1::AssignmentCancel> cancels = sink.TakeCancels();
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].lease_id(), got[0].lease_id());
}

TEST_F(SchedulerLeasesTest, NoRestartGraceLapsesLiveLeasesAtOnce) {
  options_.restart_grace = absl::ZeroDuration();
  {
    FakeSink sink;
    ASSERT_EQ(LeaseTasks(1, sink).size(), 1u);
  }
  Restart();
  auto page = scheduler_->ListTasks(kTenant, {});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->tasks.size(), 1u);
  EXPECT_EQ(page->tasks[0].state(), crucible::v1::TASK_STATE_QUEUED);
}

TEST_F(SchedulerLeasesTest, ALostWorkersLeasesLapseAfterTheShortGrace) {
  FakeSink sink;
  std::vector<Assignment> got = LeaseTasks(1, sink);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_LT(options_.lost_worker_grace, options_.lease_ttl);
  scheduler_->DisconnectWorker(session_);
  scheduler_->WorkerLost("w1");
  clock_.Advance(options_.lost_worker_grace - absl::Milliseconds(1));
  EXPECT_EQ(scheduler_->ExpireLeases(), 0);
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_EQ(scheduler_->ExpireLeases(), 1);
  crucible::v1::Task t = Get(got[0].task().id());
  EXPECT_EQ(t.state(), crucible::v1::TASK_STATE_QUEUED);
  EXPECT_TRUE(absl::StrContains(t.last_error(), "worker w1 lost"))
      << t.last_error();
  // Fencing as ever: the lapsed lease is dead, the next attempt gets another.
  EXPECT_EQ(scheduler_->ReportCompletion(Exited(got[0].lease_id(), 0)).code(),
            absl::StatusCode::kFailedPrecondition);
  clock_.Advance(options_.initial_backoff);
  FakeSink other;
  Connect(other, 1, "w2");
  std::vector<Assignment> again = other.TakeAssignments();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].attempt(), 2);
  EXPECT_NE(again[0].lease_id(), got[0].lease_id());
}

TEST_F(SchedulerLeasesTest,
       ALostWorkerThatReconnectsWithinTheGraceKeepsItsLeases) {
  FakeSink sink;
  std::vector<Assignment> got = LeaseTasks(1, sink);
  ASSERT_EQ(got.size(), 1u);
  scheduler_->DisconnectWorker(session_);
  scheduler_->WorkerLost("w1");
  clock_.Advance(options_.lost_worker_grace / 2);
  FakeSink again;
  int64_t session = Connect(again, 0);
  EXPECT_TRUE(scheduler_->Heartbeat(session, {}, {Held(got[0])}).empty());
  // The heartbeat gave it a full TTL again.
  clock_.Advance(options_.lease_ttl - absl::Seconds(1));
  EXPECT_EQ(scheduler_->ExpireLeases(), 0);
  ASSERT_TRUE(scheduler_->ReportCompletion(Exited(got[0].lease_id(), 0)).ok());
  crucible::v1::Task t = Get(got[0].task().id());
  EXPECT_EQ(t.state(), crucible::v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(t.attempt(), 1);
}

TEST_F(SchedulerLeasesTest, ALossNoticedAfterTheReconnectShortensNothing) {
  FakeSink sink;
  std::vector<Assignment> got = LeaseTasks(1, sink);
  ASSERT_EQ(got.size(), 1u);
  // The new stream arrived before the old one's end was classified.
  FakeSink again;
  Connect(again, 0);
  scheduler_->DisconnectWorker(session_);
  scheduler_->WorkerLost("w1");
  clock_.Advance(options_.lost_worker_grace + absl::Seconds(1));
  EXPECT_EQ(scheduler_->ExpireLeases(), 0);
  EXPECT_EQ(Get(got[0].task().id()).state(), crucible::v1::TASK_STATE_LEASED);
}

TEST_F(SchedulerLeasesTest, GoAwayTellsEveryWorkerAndHandsOutNothingMore) {
  GoingAwaySink before;
  ASSERT_TRUE(scheduler_->ConnectWorker("w1", 2, &before).ok());
  scheduler_->GoAway("server shutting down");
  Create(Spec());
  GoingAwaySink after;
  ASSERT_TRUE(scheduler_->ConnectWorker("w2", 2, &after).ok());
  Settle();
  EXPECT_EQ(before.going_away(), 1);
  EXPECT_EQ(after.going_away(), 1);
  EXPECT_EQ(before.assignments() + after.assignments(), 0);
}

}  // namespace
}  // namespace server
