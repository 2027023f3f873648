// The executor's metrics: runs by outcome, slots, reaped orphans
// (executor/runner/runner_metrics.h), and the engine calls' latency and
// errors (executor/docker/metered_engine.h), against the in-process fake
// engine, read from a registry of the test's own in the text format.
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "executor/docker/metered_engine.h"
#include "executor/policy/container_policy.h"
#include "executor/runner/runner.h"
#include "gtest/gtest.h"
#include "tests/testing/bounded_thread.h"
#include "tests/testing/fake_engine.h"
#include "tests/testing/http_get.h"

namespace runner {
namespace {

using Op = testing_util::FakeEngine::Op;

constexpr char kImage[] = "localhost/crucible/x:1";

class StartedSink : public RunSink {
 public:
  void OnStarted(const crucible::v1::RunStarted&) override {
    if (!started.HasBeenNotified()) started.Notify();
  }
  void OnOutput(crucible::v1::OutputChunk) override {}
  absl::Notification started;
};

class RunnerMetricsTest : public testing::Test {
 protected:
  void SetUp() override {
    engine_.AddImage(kImage);
    auto policy = policy::ContainerPolicy::Create({});
    ASSERT_TRUE(policy.ok()) << policy.status();
    policy_.emplace(*std::move(policy));
    options_.slots = 3;
    options_.metrics = &registry_;
    runner_ = std::make_unique<Runner>(metered_, *policy_, clock_, options_);
  }
  static crucible::v1::RunRequest Request(const std::string& run_id) {
    crucible::v1::RunRequest req;
    req.set_run_id(run_id);
    req.set_attempt(1);
    req.mutable_spec()->set_image(kImage);
    return req;
  }
  double Value(const std::string& series) {
    return testing_util::ExposedValue(registry_.Expose(), series);
  }

  // Declared so that the runner goes first, the registry last.
  common::MetricsRegistry registry_;
  testing_util::FakeEngine engine_;
  common::FakeClock clock_;
  docker::MeteredEngine metered_{engine_, clock_, registry_};
  std::optional<policy::ContainerPolicy> policy_;
  RunnerOptions options_;
  StartedSink sink_;
  std::unique_ptr<Runner> runner_;
};

TEST_F(RunnerMetricsTest, RunsAreCountedByOutcome) {
  engine_.SetScript({.exit_code = 0});
  ASSERT_TRUE(runner_->Run(Request("a"), sink_, nullptr).ok());
  engine_.SetScript({.exit_code = 2});
  ASSERT_TRUE(runner_->Run(Request("b"), sink_, nullptr).ok());
  engine_.SetScript({.exit_code = 0});
  ASSERT_TRUE(runner_->Run(Request("c"), sink_, nullptr).ok());
  EXPECT_EQ(Value("crucible_executor_runs_total{outcome=\"succeeded\"}"), 2);
  EXPECT_EQ(Value("crucible_executor_runs_total{outcome=\"failed\"}"), 1);

  // No result: the engine was unreachable at create.
  engine_.FailNext(Op::kCreate, absl::UnavailableError("proxy down"));
  EXPECT_FALSE(runner_->Run(Request("d"), sink_, nullptr).ok());
  EXPECT_EQ(Value("crucible_executor_runs_total{outcome=\"error\"}"), 1);
  EXPECT_EQ(Value("crucible_executor_run_errors_total{code=\"UNAVAILABLE\"}"),
            1);
}

TEST_F(RunnerMetricsTest, OutcomesNameTheTerminationReason) {
  crucible::v1::TaskResult r;
  r.set_reason(crucible::v1::TERMINATION_REASON_EXITED);
  EXPECT_STREQ(RunOutcome(r), "succeeded");
  r.set_exit_code(1);
  EXPECT_STREQ(RunOutcome(r), "failed");
  r.set_reason(crucible::v1::TERMINATION_REASON_TIMEOUT);
  EXPECT_STREQ(RunOutcome(r), "timeout");
  r.set_reason(crucible::v1::TERMINATION_REASON_OOM_KILLED);
  EXPECT_STREQ(RunOutcome(r), "oom_killed");
  r.set_reason(crucible::v1::TERMINATION_REASON_OUTPUT_LIMIT);
  EXPECT_STREQ(RunOutcome(r), "output_limit");
  r.set_reason(crucible::v1::TERMINATION_REASON_CANCELLED);
  EXPECT_STREQ(RunOutcome(r), "cancelled");
  r.set_reason(crucible::v1::TERMINATION_REASON_REJECTED);
  EXPECT_STREQ(RunOutcome(r), "rejected");
}

TEST_F(RunnerMetricsTest, ABusySlotIsCountedWhileTheRunLasts) {
  EXPECT_EQ(Value("crucible_executor_slots"), 3);
  EXPECT_EQ(Value("crucible_executor_slots_busy"), 0);
  engine_.SetScript({.until_killed = true});
  testing_util::BoundedThread run(
      [&] { (void)runner_->Run(Request("long"), sink_, nullptr); });
  ASSERT_TRUE(sink_.started.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(Value("crucible_executor_slots_busy"), 1);
  engine_.Exit("crucible-long", 0);
  ASSERT_TRUE(run.JoinWithin(absl::Seconds(30)));
  EXPECT_EQ(Value("crucible_executor_slots_busy"), 0);
  runner_.reset();
  EXPECT_EQ(Value("crucible_executor_slots"), 0);  // its slots are gone
}

TEST_F(RunnerMetricsTest, ReapedOrphansAreCounted) {
  engine_.AddContainer(
      "crucible-orphan",
      {{policy::kExecutorLabel, policy_->options().executor_id},
       {policy::kRunLabel, "orphan"}},
      /*running=*/false);
  absl::StatusOr<int> reaped = runner_->ReapOrphans();
  ASSERT_TRUE(reaped.ok()) << reaped.status();
  ASSERT_EQ(*reaped, 1);
  EXPECT_EQ(Value("crucible_executor_orphans_reaped_total"), 1);
}

TEST_F(RunnerMetricsTest, EngineCallsAreCountedByCallAndErrorsByCode) {
  engine_.SetScript({.exit_code = 0});
  ASSERT_TRUE(runner_->Run(Request("a"), sink_, nullptr).ok());
  EXPECT_EQ(
      Value("crucible_executor_engine_call_seconds_count{call=\"create\"}"), 1);
  EXPECT_EQ(
      Value("crucible_executor_engine_call_seconds_count{call=\"start\"}"), 1);
  EXPECT_EQ(
      Value("crucible_executor_engine_call_seconds_count{call=\"remove\"}"), 1);
  EXPECT_EQ(Value("crucible_executor_engine_call_seconds_count{call=\"ping\"}"),
            0);
  engine_.FailNext(Op::kCreate, absl::PermissionDeniedError("refused"));
  EXPECT_FALSE(runner_->Run(Request("b"), sink_, nullptr).ok());
  EXPECT_EQ(Value("crucible_executor_engine_call_errors_total{call=\"create\","
                  "code=\"PERMISSION_DENIED\"}"),
            1);
  EXPECT_EQ(
      Value("crucible_executor_engine_call_seconds_count{call=\"create\"}"), 2);
}

TEST_F(RunnerMetricsTest, EngineCallLatencyIsTheCallsDuration) {
  engine_.StallNext(Op::kPing);
  testing_util::BoundedThread ping([&] { EXPECT_TRUE(metered_.Ping().ok()); });
  ASSERT_TRUE(engine_.WaitForCalls(Op::kPing, 1));
  clock_.Advance(absl::Seconds(2));
  engine_.Unstall();
  ASSERT_TRUE(ping.JoinWithin(absl::Seconds(30)));
  EXPECT_EQ(Value("crucible_executor_engine_call_seconds_sum{call=\"ping\"}"),
            2);
  EXPECT_EQ(Value("crucible_executor_engine_call_seconds_bucket{call=\"ping\","
                  "le=\"1\"}"),
            0);
  EXPECT_EQ(Value("crucible_executor_engine_call_seconds_bucket{call=\"ping\","
                  "le=\"2.5\"}"),
            1);
}

TEST_F(RunnerMetricsTest, CreateToStartIsTimedForStartedContainersOnly) {
  engine_.SetScript({.exit_code = 0});
  engine_.StallNext(Op::kStart);
  testing_util::BoundedThread run(
      [&] { EXPECT_TRUE(runner_->Run(Request("a"), sink_, nullptr).ok()); });
  ASSERT_TRUE(engine_.WaitForCalls(Op::kStart, 1));
  clock_.Advance(absl::Seconds(3));
  engine_.Unstall();
  ASSERT_TRUE(run.JoinWithin(absl::Seconds(30)));
  EXPECT_EQ(Value("crucible_executor_container_create_to_start_seconds_count"),
            1);
  EXPECT_EQ(Value("crucible_executor_container_create_to_start_seconds_sum"),
            3);

  // A create that fails starts nothing and times nothing.
  engine_.FailNext(Op::kCreate, absl::UnavailableError("engine down"));
  EXPECT_FALSE(runner_->Run(Request("b"), sink_, nullptr).ok());
  EXPECT_EQ(Value("crucible_executor_container_create_to_start_seconds_count"),
            1);
}

TEST_F(RunnerMetricsTest, OutputBytesAreCountedByStream) {
  engine_.SetScript(
      {.exit_code = 0, .stdout_data = "hello\n", .stderr_data = "oops!\n"});
  ASSERT_TRUE(runner_->Run(Request("a"), sink_, nullptr).ok());
  ASSERT_TRUE(runner_->Run(Request("b"), sink_, nullptr).ok());
  EXPECT_EQ(Value("crucible_executor_output_bytes_total{stream=\"stdout\"}"),
            12);
  EXPECT_EQ(Value("crucible_executor_output_bytes_total{stream=\"stderr\"}"),
            12);
}

}  // namespace
}  // namespace runner
