// The worker core (worker/core/) on a FakeClock, with a fake RunLauncher and
// a real ExecutorPool: placement, credits, drain, stop, back-pressure and
// heartbeats, by direct calls. No gRPC, no threads but the test's own, no
// sleeps: time moves when the test advances the clock and calls Tick or
// NextWrite.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/proto_time.h"
#include "gtest/gtest.h"
#include "tests/testing/bounded_thread.h"
#include "tests/testing/http_get.h"
#include "worker/core/worker_core.h"

namespace worker {
namespace {

using crucible::v1::ConnectRequest;
using Messages = std::vector<ConnectRequest>;

// Records what the core asks for. Thread-safe.
class FakeLauncher final : public RunLauncher {
 public:
  struct Launched {
    std::string executor;
    std::string lease;
    absl::Duration deadline;
  };
  void Launch(const std::string& executor,
              const crucible::v1::RunRequest& request,
              absl::Duration deadline) override {
    absl::MutexLock lock(&mu_);
    launched_.push_back({executor, request.run_id(), deadline});
  }
  void CancelCall(const std::string& lease) override {
    absl::MutexLock lock(&mu_);
    cancelled_calls_.push_back(lease);
  }
  void CancelOnExecutor(const std::string& executor,
                        const std::string& lease) override {
    absl::MutexLock lock(&mu_);
    cancelled_on_executor_.push_back(executor + "/" + lease);
  }
  std::vector<Launched> launched() const {
    absl::MutexLock lock(&mu_);
    return launched_;
  }
  std::vector<std::string> LaunchedLeases() const {
    std::vector<std::string> out;
    for (const Launched& l : launched()) out.push_back(l.lease);
    return out;
  }
  std::vector<std::string> cancelled_calls() const {
    absl::MutexLock lock(&mu_);
    return cancelled_calls_;
  }
  std::vector<std::string> cancelled_on_executor() const {
    absl::MutexLock lock(&mu_);
    return cancelled_on_executor_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<Launched> launched_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> cancelled_calls_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> cancelled_on_executor_ ABSL_GUARDED_BY(mu_);
};

crucible::v1::Assignment Assignment(const std::string& lease) {
  crucible::v1::Assignment a;
  a.set_lease_id(lease);
  a.set_attempt(1);
  a.mutable_task()->set_id("task-" + lease);
  a.mutable_task()->mutable_spec()->set_image(
      "localhost/crucible/busybox:latest");
  a.mutable_task()->mutable_spec()->mutable_timeout()->set_seconds(30);
  return a;
}

crucible::v1::RunResponse Finished(int exit_code) {
  crucible::v1::RunResponse r;
  r.mutable_finished()->set_reason(crucible::v1::TERMINATION_REASON_EXITED);
  r.mutable_finished()->set_exit_code(exit_code);
  return r;
}

crucible::v1::RunResponse Output(const std::string& data) {
  crucible::v1::RunResponse r;
  r.mutable_output()->set_data(data);
  return r;
}

int Credits(const Messages& all) {
  int n = 0;
  for (const ConnectRequest& m : all)
    n += m.has_credit() ? m.credit().credits() : 0;
  return n;
}

// The completion of `lease` in `all`, or an empty message.
crucible::v1::AttemptCompletion CompletionOf(const Messages& all,
                                             const std::string& lease) {
  for (const ConnectRequest& m : all) {
    if (m.has_completion() && m.completion().lease_id() == lease)
      return m.completion();
  }
  return {};
}

class WorkerCoreTest : public testing::Test {
 protected:
  WorkerCoreTest() {
    pool_options_.slots_per_executor = 2;
    pool_options_.full_backoff = absl::Milliseconds(500);
    options_.worker_id = "w";
    options_.placement_timeout = absl::Seconds(30);
    options_.heartbeat_interval =
        absl::Hours(1);  // out of the way but where tested
  }

  // The core over executors "a" and "b" (in rotation), connected.
  void Start(std::vector<std::string> healthy = {"a", "b"}) {
    pool_ = std::make_unique<ExecutorPool>(pool_options_, clock_, gen_);
    pool_->SetListed({"a", "b"});
    for (const std::string& address : pool_->DueChecks()) {
      pool_->CheckResult(address, std::find(healthy.begin(), healthy.end(),
                                            address) != healthy.end());
    }
    core_ = std::make_unique<WorkerCore>(
        options_, clock_, *pool_, launcher_,
        [this](bool ready, const std::string&) { ready_ = ready; });
    hello_ = core_->BeginStream({}, stream_);
    core_->StreamConnected(stream_);
    ASSERT_FALSE(core_->HelloWritten(stream_).has_value());
  }

  // Everything the core has queued for the stream now, as written.
  Messages Writes() {
    Messages out;
    while (true) {
      WriteStep step = core_->NextWrite(stream_, absl::ZeroDuration());
      if (step.kind != WriteStep::Kind::kWrite) return out;
      out.push_back(step.msg);
      core_->Written(std::move(step.msg), /*ok=*/true);
    }
  }

  // Ends the run of `lease` as its executor would: finished, then the end.
  void Finish(const std::string& lease, int exit_code = 0) {
    core_->OnRunEvent(lease, Finished(exit_code));
    core_->OnRunEnded(lease, absl::OkStatus());
  }

  common::FakeClock clock_;
  absl::BitGen gen_;
  PoolOptions pool_options_;
  CoreOptions options_;
  FakeLauncher launcher_;
  std::unique_ptr<ExecutorPool> pool_;
  std::unique_ptr<WorkerCore> core_;
  ConnectRequest hello_;
  uint64_t stream_ = 0;
  bool ready_ = false;  // written on the test's thread only
};

TEST_F(WorkerCoreTest, HelloOffersTheFreeSlotsAndEveryEndedRunOneCreditBack) {
  Start();
  EXPECT_EQ(hello_.hello().worker_id(), "w");
  EXPECT_EQ(hello_.hello().credits(), 4);
  EXPECT_TRUE(ready_) << "a stream and executors in rotation";
  core_->OnAssignment(Assignment("l1"));
  ASSERT_EQ(launcher_.LaunchedLeases(), std::vector<std::string>{"l1"});
  EXPECT_EQ(launcher_.launched()[0].deadline,
            absl::Seconds(30) + options_.run_deadline_margin);
  EXPECT_TRUE(Writes().empty());
  Finish("l1", 3);
  Messages m = Writes();
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].completion().result().exit_code(), 3);
  EXPECT_EQ(Credits(m), 1);
}

TEST_F(WorkerCoreTest,
       RunsGoToTheExecutorWithTheMostFreeSlotsFirstComeFirstPlaced) {
  Start();
  for (const char* lease : {"l1", "l2", "l3", "l4", "l5", "l6"}) {
    core_->OnAssignment(Assignment(lease));
  }
  std::vector<FakeLauncher::Launched> launched = launcher_.launched();
  ASSERT_EQ(launched.size(), 4u) << "two slots on each of two executors";
  EXPECT_NE(launched[0].executor, launched[1].executor)
      << "spread by free slots";
  EXPECT_EQ(pool_->InFlight("a"), 2);
  EXPECT_EQ(pool_->InFlight("b"), 2);
  Finish("l2");
  EXPECT_EQ(launcher_.LaunchedLeases().back(), "l5") << "the first waiting one";
  EXPECT_EQ(launcher_.launched().back().executor, launched[1].executor);
  EXPECT_EQ(core_->runs(), 5);
}

TEST_F(WorkerCoreTest,
       AssignmentWithoutASlotIsGivenBackAfterThePlacementTimeout) {
  Start({"a"});
  for (const char* lease : {"l1", "l2", "l3"})
    core_->OnAssignment(Assignment(lease));
  ASSERT_EQ(launcher_.launched().size(), 2u);
  Writes();
  clock_.Advance(options_.placement_timeout - absl::Seconds(1));
  core_->Tick();
  EXPECT_TRUE(Writes().empty()) << "still within the placement timeout";
  clock_.Advance(absl::Seconds(1));
  core_->Tick();
  crucible::v1::AttemptCompletion c = CompletionOf(Writes(), "l3");
  EXPECT_EQ(c.error().code(), static_cast<int>(absl::StatusCode::kUnavailable));
  EXPECT_EQ(launcher_.launched().size(), 2u);
  EXPECT_EQ(core_->runs(), 2);
}

TEST_F(WorkerCoreTest,
       FullExecutorIsTriedAgainAfterItsBackoffWithoutSpendingTheAttempt) {
  Start({"a"});
  core_->OnAssignment(Assignment("l1"));
  ASSERT_EQ(launcher_.launched().size(), 1u);
  core_->OnRunEnded(
      "l1", absl::ResourceExhaustedError("all 4 executor slots are busy"));
  EXPECT_EQ(launcher_.launched().size(), 1u) << "the only executor is full";
  EXPECT_EQ(CompletionOf(Writes(), "l1").lease_id(), "")
      << "no completion: not an attempt";
  clock_.Advance(pool_options_.full_backoff);
  core_->Tick();
  ASSERT_EQ(launcher_.LaunchedLeases(), (std::vector<std::string>{"l1", "l1"}));
  Finish("l1");
  EXPECT_EQ(CompletionOf(Writes(), "l1").result().reason(),
            crucible::v1::TERMINATION_REASON_EXITED);
}

TEST_F(WorkerCoreTest, ExecutorLostMidRunIsReportedAtOnceAsUnavailable) {
  Start();
  core_->OnAssignment(Assignment("l1"));
  core_->OnRunEvent("l1", Output("partial"));
  core_->OnRunEnded("l1", absl::UnavailableError("connection reset"));
  Messages m = Writes();
  EXPECT_TRUE(m[0].has_output());
  EXPECT_EQ(CompletionOf(m, "l1").error().code(),
            static_cast<int>(absl::StatusCode::kUnavailable));
}

TEST_F(WorkerCoreTest, MaxTasksCapsCreditsAndRefusesMore) {
  options_.max_tasks = 1;
  Start();
  EXPECT_EQ(hello_.hello().credits(), 1);
  core_->OnAssignment(Assignment("l1"));
  core_->OnAssignment(Assignment("l2"));
  EXPECT_EQ(CompletionOf(Writes(), "l2").error().code(),
            static_cast<int>(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(launcher_.LaunchedLeases(), std::vector<std::string>{"l1"});
}

TEST_F(WorkerCoreTest, DrainGrantsNothingRefusesNewWorkAndLetsRunsFinish) {
  Start();
  core_->OnAssignment(Assignment("l1"));
  Writes();
  core_->StartDrain();
  EXPECT_TRUE(core_->draining());
  core_->OnAssignment(Assignment("l2"));
  EXPECT_EQ(CompletionOf(Writes(), "l2").error().code(),
            static_cast<int>(absl::StatusCode::kUnavailable));
  EXPECT_FALSE(core_->AwaitNoRuns(absl::ZeroDuration()));
  Finish("l1");
  Messages m = Writes();
  EXPECT_EQ(CompletionOf(m, "l1").result().reason(),
            crucible::v1::TERMINATION_REASON_EXITED);
  EXPECT_EQ(Credits(m), 0) << "no credits while draining";
  EXPECT_TRUE(core_->AwaitNoRuns(absl::ZeroDuration()));
}

TEST_F(WorkerCoreTest, StopCancelsRunsReportsThemUnavailableThenHalfCloses) {
  Start({"a"});
  for (const char* lease : {"l1", "l2", "l3"})
    core_->OnAssignment(Assignment(lease));
  Writes();
  core_->BeginStop();
  EXPECT_EQ(launcher_.cancelled_calls(),
            (std::vector<std::string>{"l1", "l2"}));
  EXPECT_EQ(CompletionOf(Writes(), "l3").error().code(),
            static_cast<int>(absl::StatusCode::kUnavailable))
      << "the unplaced one ends at once";
  core_->OnRunEnded("l1", absl::CancelledError("call cancelled"));
  EXPECT_EQ(core_->NextWrite(stream_, absl::ZeroDuration())
                .msg.completion()
                .error()
                .code(),
            static_cast<int>(absl::StatusCode::kUnavailable));
  EXPECT_EQ(core_->NextWrite(stream_, absl::ZeroDuration()).kind,
            WriteStep::Kind::kIdle)
      << "l2 still runs";
  core_->OnRunEnded("l2", absl::CancelledError("call cancelled"));
  Writes();
  EXPECT_EQ(core_->NextWrite(stream_, absl::ZeroDuration()).kind,
            WriteStep::Kind::kHalfClose);
}

TEST_F(WorkerCoreTest,
       ServerCancelGoesToThePlacedRunsExecutorAndEndsAnUnplacedOne) {
  Start({"a"});
  for (const char* lease : {"l1", "l2", "l3"})
    core_->OnAssignment(Assignment(lease));
  crucible::v1::AssignmentCancel cancel;
  cancel.set_lease_id("l1");
  core_->OnServerCancel(cancel);
  EXPECT_EQ(launcher_.cancelled_on_executor(),
            std::vector<std::string>{"a/l1"});
  cancel.set_lease_id("l3");
  cancel.set_reason("user");
  core_->OnServerCancel(cancel);
  crucible::v1::AttemptCompletion c = CompletionOf(Writes(), "l3");
  EXPECT_EQ(c.result().reason(), crucible::v1::TERMINATION_REASON_CANCELLED);
  EXPECT_EQ(launcher_.launched().size(), 2u);
}

TEST_F(WorkerCoreTest, RejectedRunIsSilencedAndItsCallCancelled) {
  Start();
  core_->OnAssignment(Assignment("l1"));
  Writes();
  crucible::v1::ReportRejected rejected;
  rejected.set_lease_id("l1");
  core_->OnRejected(rejected);
  EXPECT_EQ(launcher_.cancelled_calls(), std::vector<std::string>{"l1"});
  core_->OnRunEvent("l1", Output("late"));
  core_->OnRunEnded("l1", absl::CancelledError("call cancelled"));
  Messages m = Writes();
  EXPECT_EQ(CompletionOf(m, "l1").lease_id(), "")
      << "no report on a rejected lease";
  EXPECT_EQ(Credits(m), 1) << "its slot is offered again";
}

TEST_F(WorkerCoreTest,
       HeartbeatsOnTheClockNameTheLiveLeasesAheadOfQueuedOutput) {
  options_.heartbeat_interval = absl::Seconds(5);
  Start();
  core_->OnAssignment(Assignment("l1"));
  core_->OnAssignment(Assignment("l2"));
  Writes();
  core_->OnRunEvent("l1", Output("hi"));
  clock_.Advance(options_.heartbeat_interval - absl::Milliseconds(1));
  Messages early = Writes();
  ASSERT_EQ(early.size(), 1u);
  EXPECT_TRUE(early[0].has_output());
  core_->OnRunEvent("l1", Output("more"));
  clock_.Advance(absl::Milliseconds(1));
  Messages m = Writes();
  ASSERT_EQ(m.size(), 2u);
  ASSERT_TRUE(m[0].has_heartbeat());
  EXPECT_EQ(m[0].heartbeat().lease_ids_size(), 2);
  EXPECT_TRUE(m[1].has_output());
}

TEST_F(WorkerCoreTest, ANewStreamResumesTheHeldLeasesAndKeepsUnsentReports) {
  Start();
  core_->OnAssignment(Assignment("l1"));
  core_->OnAssignment(Assignment("l2"));
  Writes();
  Finish("l2");  // its completion is not written before the stream breaks
  EXPECT_FALSE(core_->EndStream(stream_));
  EXPECT_FALSE(ready_);
  ConnectRequest hello = core_->BeginStream({}, stream_);
  EXPECT_EQ(hello.hello().credits(), 3);
  core_->StreamConnected(stream_);
  std::optional<ConnectRequest> resume = core_->HelloWritten(stream_);
  ASSERT_TRUE(resume.has_value());
  EXPECT_EQ(resume->heartbeat().held_leases_size(), 2)
      << "l1 runs, l2's completion is unsent";
  EXPECT_EQ(CompletionOf(Writes(), "l2").result().reason(),
            crucible::v1::TERMINATION_REASON_EXITED);
  EXPECT_TRUE(ready_);
}

// How the stream ended is part of the readiness reason (for the health
// service's crucible-health-reason) until a stream is up again.
TEST_F(WorkerCoreTest, TheLastStreamsEndIsPartOfTheReasonUntilTheNextStream) {
  Start();
  EXPECT_FALSE(core_->EndStream(stream_));
  core_->StreamFailed(absl::UnavailableError("this server is a standby"));
  std::string reason;
  EXPECT_FALSE(core_->ready(&reason));
  EXPECT_EQ(reason,
            "no stream to the server (UNAVAILABLE: this server is a standby)");
  core_->StreamFailed(absl::OkStatus());
  EXPECT_FALSE(core_->ready(&reason));
  EXPECT_EQ(reason, "no stream to the server (the server ended it)");
  core_->BeginStream({}, stream_);
  core_->StreamConnected(stream_);
  core_->HelloWritten(stream_);
  EXPECT_TRUE(core_->ready(&reason));
  EXPECT_TRUE(ready_);
}

TEST_F(WorkerCoreTest, BackPressureHoldsRunEventsUntilTheWriterCatchesUp) {
  options_.max_outbound_bytes = 100;
  Start();
  core_->OnAssignment(Assignment("l1"));
  Writes();
  core_->OnRunEvent("l1", Output(std::string(200, 'x')));  // over the limit now
  absl::Notification relayed;
  testing_util::BoundedThread executor_stream([&] {
    core_->OnRunEvent("l1", Output("next"));
    relayed.Notify();
  });
  ASSERT_TRUE(core_->AwaitBlockedReportsForTest(1, absl::Seconds(10)));
  EXPECT_FALSE(relayed.HasBeenNotified());
  WriteStep step = core_->NextWrite(stream_, absl::ZeroDuration());
  ASSERT_EQ(step.kind, WriteStep::Kind::kWrite);
  EXPECT_EQ(step.msg.output().chunk().data().size(), 200u);
  EXPECT_TRUE(relayed.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(executor_stream.JoinWithin(absl::Seconds(30)));
  EXPECT_EQ(Writes()[0].output().chunk().data(), "next");
}

TEST_F(WorkerCoreTest, ExecutorsLeavingRotationTakeTheWorkerOutOfReadiness) {
  Start({"a"});
  EXPECT_TRUE(ready_);
  clock_.Advance(pool_options_.probe_interval);
  for (const std::string& address : pool_->DueChecks())
    pool_->CheckResult(address, false);
  core_->OnCapacityChange({});
  EXPECT_FALSE(ready_);
  std::string reason;
  EXPECT_FALSE(core_->ready(&reason));
  EXPECT_EQ(reason, "no executor in rotation");
}

}  // namespace
}  // namespace worker

namespace worker {
namespace {

crucible::v1::RunResponse Started(std::optional<absl::Duration> timeout) {
  crucible::v1::RunResponse r;
  r.mutable_started()->set_container_id("c");
  if (timeout.has_value()) {
    *r.mutable_started()->mutable_limits()->mutable_timeout() =
        common::ToProtoDuration(*timeout);
  }
  return r;
}

// A spec without a timeout runs under the executor's default: the call
// gets no deadline of its own, and the core stops it the margin after the
// timeout the executor reported at the start. The started report carries
// that timeout on to the server, and a resume heartbeat names it.
TEST_F(WorkerCoreTest, TheRunDeadlineIsTheTimeoutTheExecutorReported) {
  Start();
  crucible::v1::Assignment a = Assignment("l1");
  a.mutable_task()->mutable_spec()->clear_timeout();
  core_->OnAssignment(a);
  ASSERT_EQ(launcher_.launched().size(), 1u);
  EXPECT_EQ(launcher_.launched()[0].deadline, absl::InfiniteDuration());
  Writes();
  core_->OnRunEvent("l1", Started(absl::Minutes(10)));
  Messages m = Writes();
  ASSERT_EQ(m.size(), 1u);
  ASSERT_TRUE(m[0].has_started());
  EXPECT_EQ(common::FromProtoDuration(m[0].started().limits().timeout()),
            absl::Minutes(10));

  EXPECT_FALSE(core_->EndStream(stream_));
  core_->BeginStream({}, stream_);
  core_->StreamConnected(stream_);
  std::optional<ConnectRequest> resume = core_->HelloWritten(stream_);
  ASSERT_TRUE(resume.has_value());
  ASSERT_EQ(resume->heartbeat().held_leases_size(), 1);
  EXPECT_EQ(
      common::FromProtoDuration(resume->heartbeat().held_leases(0).timeout()),
      absl::Minutes(10));
  Writes();

  clock_.Advance(absl::Minutes(10) + options_.run_deadline_margin -
                 absl::Milliseconds(1));
  core_->Tick();
  EXPECT_TRUE(launcher_.cancelled_calls().empty());
  clock_.Advance(absl::Milliseconds(1));
  core_->Tick();
  EXPECT_EQ(launcher_.cancelled_calls(), std::vector<std::string>{"l1"});
  core_->Tick();
  EXPECT_EQ(launcher_.cancelled_calls().size(), 1u) << "stopped once";
  core_->OnRunEnded("l1", absl::CancelledError("call cancelled"));
  EXPECT_EQ(CompletionOf(Writes(), "l1").error().code(),
            static_cast<int>(absl::StatusCode::kDeadlineExceeded));
}

// An older executor reports no timeout: a spec without one is bounded by
// run_deadline_without_timeout from the call's start, as before.
TEST_F(WorkerCoreTest, WithoutAReportedTimeoutTheOldBoundHolds) {
  options_.run_deadline_without_timeout = absl::Hours(24);
  Start();
  crucible::v1::Assignment a = Assignment("l1");
  a.mutable_task()->mutable_spec()->clear_timeout();
  core_->OnAssignment(a);
  core_->OnRunEvent("l1", Started(std::nullopt));
  clock_.Advance(absl::Hours(24) - absl::Milliseconds(1));
  core_->Tick();
  EXPECT_TRUE(launcher_.cancelled_calls().empty());
  clock_.Advance(absl::Milliseconds(1));
  core_->Tick();
  EXPECT_EQ(launcher_.cancelled_calls(), std::vector<std::string>{"l1"});
}

// A run that ends because its executor is shutting down takes that
// executor out of rotation at once: the next run goes to the other one.
TEST_F(WorkerCoreTest, AnExecutorShuttingDownLeavesRotationAtOnce) {
  Start();
  core_->OnAssignment(Assignment("l1"));
  const std::string executor = launcher_.launched().at(0).executor;
  core_->OnRunEnded(
      "l1", absl::UnavailableError("the executor is shutting down; the run was "
                                   "stopped and its container removed"));
  EXPECT_FALSE(pool_->InRotation(executor));
  EXPECT_EQ(CompletionOf(Writes(), "l1").error().code(),
            static_cast<int>(absl::StatusCode::kUnavailable));
  core_->OnAssignment(Assignment("l2"));
  ASSERT_EQ(launcher_.launched().size(), 2u);
  EXPECT_NE(launcher_.launched()[1].executor, executor);
}

// Any other lost run counts one failure; one alone does not take the
// executor out.
TEST_F(WorkerCoreTest, OneLostRunAloneKeepsTheExecutorInRotation) {
  Start();
  core_->OnAssignment(Assignment("l1"));
  const std::string executor = launcher_.launched().at(0).executor;
  core_->OnRunEnded("l1", absl::UnavailableError("connection reset"));
  EXPECT_TRUE(pool_->InRotation(executor));
}

// The core's metrics (worker/core/worker_metrics.h), read from a registry
// of the test's own.
class WorkerCoreMetricsTest : public WorkerCoreTest {
 protected:
  WorkerCoreMetricsTest() { options_.metrics = &registry_; }
  void TearDown() override { core_.reset(); }  // before the registry goes
  double Value(const std::string& series) {
    return testing_util::ExposedValue(registry_.Expose(), series);
  }
  common::MetricsRegistry registry_;
};

TEST_F(WorkerCoreMetricsTest, HeldRunsExecutorsInRotationAndPlacementWaits) {
  Start({"a"});  // two slots on the one executor in rotation
  EXPECT_EQ(Value("crucible_worker_executors_in_rotation"), 1);
  EXPECT_EQ(Value("crucible_worker_assignments_in_flight"), 0);
  for (const char* lease : {"l1", "l2", "l3"}) {
    core_->OnAssignment(Assignment(lease));
  }
  EXPECT_EQ(Value("crucible_worker_assignments_in_flight"), 3);
  EXPECT_EQ(Value("crucible_worker_placement_waits_total"), 1) << "l3 waits";
  Finish("l1");  // l3 takes its slot
  ASSERT_EQ(launcher_.LaunchedLeases().back(), "l3");
  EXPECT_EQ(Value("crucible_worker_assignments_in_flight"), 2);
  EXPECT_EQ(Value("crucible_worker_placement_waits_total"), 1);
  // A gone core takes its share out of the process's gauges.
  core_.reset();
  EXPECT_EQ(Value("crucible_worker_assignments_in_flight"), 0);
  EXPECT_EQ(Value("crucible_worker_executors_in_rotation"), 0);
}

}  // namespace
}  // namespace worker
