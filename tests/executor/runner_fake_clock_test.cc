// The runner's deadline logic on a FakeClock, against the in-process fake
// engine, whose container runs until it is killed: the timeout is decided by
// the injected clock alone, with no real waiting for it.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/proto_time.h"
#include "executor/policy/container_policy.h"
#include "executor/runner/runner.h"
#include "gtest/gtest.h"
#include "tests/testing/bounded_thread.h"
#include "tests/testing/fake_engine.h"

namespace runner {
namespace {

using testing_util::BoundedThread;
using testing_util::FakeEngine;

// Every wait here is bounded: a runner that never returns fails the test.
constexpr absl::Duration kBound = absl::Seconds(30);

class StartedSink : public RunSink {
 public:
  void OnStarted(const crucible::v1::RunStarted& started_message) override {
    id_ = started_message.container_id();
    start_ = common::FromProtoTime(started_message.start_time());
    limits_ = started_message.limits();
    started.Notify();
  }
  void OnOutput(crucible::v1::OutputChunk) override {}
  absl::Notification started;
  std::string id_;
  absl::Time start_;
  crucible::v1::RunLimits limits_;
};

// A Runner on a FakeClock over the fake engine.
class RunnerFakeClockTest : public testing::Test {
 protected:
  void SetUp() override {
    engine_.AddImage("localhost/crucible/x:1");
    engine_.SetScript({.until_killed = true});
    auto policy = policy::ContainerPolicy::Create({});
    ASSERT_TRUE(policy.ok()) << policy.status();
    policy_.emplace(*std::move(policy));
    RunnerOptions ro;
    ro.inspect_interval = absl::Hours(1);  // on the fake clock: never, here
    runner_ = std::make_unique<Runner>(engine_, *policy_, clock_, ro);
  }

  FakeEngine engine_;
  std::optional<policy::ContainerPolicy> policy_;
  common::FakeClock clock_;
  std::unique_ptr<Runner> runner_;  // last: goes first
};

TEST_F(RunnerFakeClockTest, TheDeadlineOnTheInjectedClockKillsTheContainer) {
  crucible::v1::RunRequest req;
  req.set_run_id("r1");
  req.mutable_spec()->set_image("localhost/crucible/x:1");
  *req.mutable_spec()->mutable_timeout() =
      common::ToProtoDuration(absl::Minutes(5));
  StartedSink sink;
  absl::StatusOr<crucible::v1::TaskResult> result;
  BoundedThread run([&] { result = runner_->Run(req, sink, nullptr); });
  ASSERT_TRUE(sink.started.WaitForNotificationWithTimeout(kBound));
  EXPECT_EQ(sink.start_, clock_.Now())
      << "start time comes from the injected clock";
  EXPECT_EQ(engine_.CallCount(FakeEngine::Op::kKill), 0);

  clock_.Advance(absl::Minutes(5));  // exactly the deadline
  ASSERT_TRUE(run.JoinWithin(kBound)) << "Run never returned";
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(engine_.CallCount(FakeEngine::Op::kKill), 1);
  EXPECT_EQ(result->reason(), crucible::v1::TERMINATION_REASON_TIMEOUT);
  EXPECT_EQ(result->exit_code(), 137);
  EXPECT_EQ(common::FromProtoTime(result->finish_time()) -
                common::FromProtoTime(result->start_time()),
            absl::Minutes(5));
  EXPECT_TRUE(engine_.containers().empty()) << "the container is removed";
  const std::vector<std::string> calls = engine_.calls();
  // The image is not inspected first: the engine has it.
  EXPECT_EQ(calls.front(), "create crucible-r1");
  EXPECT_EQ(calls.back(), "remove crucible-r1");
  for (size_t i = 0; i < calls.size(); ++i) {
    // Every call on the container uses its name, never the engine's id.
    EXPECT_TRUE(absl::EndsWith(calls[i], " crucible-r1")) << calls[i];
  }
  EXPECT_FALSE(sink.id_.empty());
  EXPECT_NE(sink.id_, "crucible-r1") << "the sink gets the engine's id";
}

TEST_F(RunnerFakeClockTest, CancelKillsBeforeTheDeadline) {
  crucible::v1::RunRequest req;
  req.set_run_id("r2");
  req.mutable_spec()->set_image("localhost/crucible/x:1");
  StartedSink sink;
  absl::StatusOr<crucible::v1::TaskResult> result;
  BoundedThread run([&] { result = runner_->Run(req, sink, nullptr); });
  ASSERT_TRUE(sink.started.WaitForNotificationWithTimeout(kBound));
  clock_.Advance(absl::Minutes(9));  // the default timeout is 10 min
  ASSERT_TRUE(runner_->Cancel("r2").ok());
  ASSERT_TRUE(run.JoinWithin(kBound)) << "Run never returned";
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason(), crucible::v1::TERMINATION_REASON_CANCELLED);
  EXPECT_EQ(result->exit_code(), 137);
  EXPECT_TRUE(engine_.containers().empty());
}

// A spec that sets no limit gets the policy's defaults (the one place that
// decides what "unset" means), reports them at the start, and is held to
// the default timeout.
TEST_F(RunnerFakeClockTest, UnsetLimitsAreThePolicyDefaultsAndAreReported) {
  crucible::v1::RunRequest req;
  req.set_run_id("r3");
  req.mutable_spec()->set_image("localhost/crucible/x:1");
  req.mutable_spec()->mutable_resources()->set_cpu_millis(500);
  StartedSink sink;
  absl::StatusOr<crucible::v1::TaskResult> result;
  BoundedThread run([&] { result = runner_->Run(req, sink, nullptr); });
  ASSERT_TRUE(sink.started.WaitForNotificationWithTimeout(kBound));
  const policy::ContainerPolicyOptions defaults;
  EXPECT_EQ(common::FromProtoDuration(sink.limits_.timeout()),
            defaults.default_timeout);
  EXPECT_EQ(sink.limits_.resources().memory_bytes(),
            defaults.default_memory_bytes);
  EXPECT_EQ(sink.limits_.resources().cpu_millis(), 500) << "the spec's";
  EXPECT_EQ(sink.limits_.resources().pids_limit(), defaults.default_pids_limit);
  EXPECT_EQ(sink.limits_.resources().tmpfs_bytes(),
            defaults.default_tmpfs_bytes);
  EXPECT_EQ(sink.limits_.max_output_bytes(), defaults.default_max_output_bytes);

  clock_.Advance(defaults.default_timeout);
  ASSERT_TRUE(run.JoinWithin(kBound)) << "Run never returned";
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason(), crucible::v1::TERMINATION_REASON_TIMEOUT);
}

// The executor's drain: runs that end within the grace end as they would;
// those still running at its end (on the injected clock) are stopped
// UNAVAILABLE, so the server runs them again.
TEST_F(RunnerFakeClockTest, DrainStopsWhatIsLeftAtTheEndOfTheGrace) {
  EXPECT_EQ(runner_->Drain(absl::Seconds(3)), 0) << "nothing runs";
  crucible::v1::RunRequest req;
  req.set_run_id("r4");
  req.mutable_spec()->set_image("localhost/crucible/x:1");
  StartedSink sink;
  absl::StatusOr<crucible::v1::TaskResult> result;
  BoundedThread run([&] { result = runner_->Run(req, sink, nullptr); });
  ASSERT_TRUE(sink.started.WaitForNotificationWithTimeout(kBound));
  runner_->StopAccepting();
  int stopped = -1;
  absl::Notification drained;
  BoundedThread drain([&] {
    stopped = runner_->Drain(absl::Seconds(3));
    drained.Notify();
  });
  EXPECT_FALSE(drained.WaitForNotificationWithTimeout(absl::Milliseconds(200)))
      << "the grace has not passed on the injected clock";
  clock_.Advance(absl::Seconds(3));
  ASSERT_TRUE(drained.WaitForNotificationWithTimeout(kBound));
  ASSERT_TRUE(drain.JoinWithin(kBound)) << "Drain never returned";
  ASSERT_TRUE(run.JoinWithin(kBound)) << "Run never returned";
  EXPECT_EQ(stopped, 1);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(runner_->active_runs(), 0);
}

TEST_F(RunnerFakeClockTest, DrainEndsWhenTheLastRunEnds) {
  crucible::v1::RunRequest req;
  req.set_run_id("r5");
  req.mutable_spec()->set_image("localhost/crucible/x:1");
  StartedSink sink;
  absl::StatusOr<crucible::v1::TaskResult> result;
  BoundedThread run([&] { result = runner_->Run(req, sink, nullptr); });
  ASSERT_TRUE(sink.started.WaitForNotificationWithTimeout(kBound));
  runner_->StopAccepting();
  int stopped = -1;
  BoundedThread drain([&] { stopped = runner_->Drain(absl::Hours(1)); });
  ASSERT_TRUE(runner_->Cancel("r5").ok());  // the run ends by itself
  ASSERT_TRUE(drain.JoinWithin(kBound)) << "Drain never returned";
  ASSERT_TRUE(run.JoinWithin(kBound)) << "Run never returned";
  EXPECT_EQ(stopped, 0);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason(), crucible::v1::TERMINATION_REASON_CANCELLED);
}

}  // namespace
}  // namespace runner
