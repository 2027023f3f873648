// The runner's logic against the in-process fake engine with injected
// faults (tests/testing/fake_engine.h): what a run returns and what is left
// on the engine when a call fails, stalls, or the engine goes away. The
// same paths against a real engine are in engine_test.cc.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "executor/policy/container_policy.h"
#include "executor/runner/runner.h"
#include "gtest/gtest.h"
#include "tests/testing/bounded_thread.h"
#include "tests/testing/fake_engine.h"

namespace runner {
namespace {

using crucible::v1::TaskResult;
using Op = testing_util::FakeEngine::Op;
using testing_util::FakeEngine;

constexpr char kImage[] = "localhost/crucible/x:1";

// Collects the output; notifies on start. Thread-safe.
class Sink : public RunSink {
 public:
  void OnStarted(const crucible::v1::RunStarted&) override {
    if (!started.HasBeenNotified()) started.Notify();
  }
  void OnOutput(crucible::v1::OutputChunk chunk) override {
    absl::MutexLock lock(&mu_);
    chunks_.push_back(std::move(chunk));
  }
  std::vector<crucible::v1::OutputChunk> chunks() const {
    absl::MutexLock lock(&mu_);
    return chunks_;
  }
  std::string Output() const {
    std::string out;
    for (const auto& c : chunks()) out += c.data();
    return out;
  }
  absl::Notification started;

 private:
  mutable absl::Mutex mu_;
  std::vector<crucible::v1::OutputChunk> chunks_ ABSL_GUARDED_BY(mu_);
};

class RunnerFaultTest : public testing::Test {
 protected:
  void SetUp() override {
    engine_.AddImage(kImage);
    auto policy = policy::ContainerPolicy::Create({});
    ASSERT_TRUE(policy.ok()) << policy.status();
    policy_.emplace(*std::move(policy));
  }

  Runner& MakeRunner() {
    runner_ = std::make_unique<Runner>(engine_, *policy_, clock_, options_);
    return *runner_;
  }

  static crucible::v1::RunRequest Request(const std::string& run_id) {
    crucible::v1::RunRequest req;
    req.set_run_id(run_id);
    req.set_attempt(1);
    req.mutable_spec()->set_image(kImage);
    return req;
  }

  absl::StatusOr<TaskResult> Run(const crucible::v1::RunRequest& req) {
    return MakeRunner().Run(req, sink_, nullptr);
  }

  FakeEngine engine_;
  std::optional<policy::ContainerPolicy> policy_;
  common::FakeClock clock_;
  RunnerOptions options_;
  Sink sink_;
  std::unique_ptr<Runner> runner_;  // last: goes first
};

TEST_F(RunnerFaultTest, ExitCodeAndBothStreamsAreRelayedWithCombinedOffsets) {
  engine_.SetScript(
      {.exit_code = 3, .stdout_data = "hello\n", .stderr_data = "oops\n"});
  absl::StatusOr<TaskResult> result = Run(Request("ok"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason(), crucible::v1::TERMINATION_REASON_EXITED);
  EXPECT_EQ(result->exit_code(), 3);
  std::vector<crucible::v1::OutputChunk> chunks = sink_.chunks();
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0].stream(), crucible::v1::OUTPUT_STREAM_STDOUT);
  EXPECT_EQ(chunks[0].data(), "hello\n");
  EXPECT_EQ(chunks[0].offset(), 0);
  EXPECT_EQ(chunks[1].stream(), crucible::v1::OUTPUT_STREAM_STDERR);
  EXPECT_EQ(chunks[1].offset(), 6);
  EXPECT_EQ(chunks[1].attempt(), 1);
  EXPECT_TRUE(engine_.containers().empty());
}

TEST_F(RunnerFaultTest, FailedCreateIsReturnedAndTouchesNothingElse) {
  engine_.FailNext(Op::kCreate, absl::UnavailableError("proxy down"));
  absl::StatusOr<TaskResult> result = Run(Request("c"));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(engine_.calls(), (std::vector<std::string>{"create crucible-c"}));
}

TEST_F(RunnerFaultTest, FailedStartIsReturnedAndTheContainerRemoved) {
  engine_.FailNext(Op::kStart, absl::InternalError("cgroup trouble"));
  absl::StatusOr<TaskResult> result = Run(Request("s"));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInternal);
  EXPECT_FALSE(sink_.started.HasBeenNotified());
  EXPECT_EQ(engine_.calls().back(), "remove crucible-s");
  EXPECT_TRUE(engine_.containers().empty());
}

TEST_F(RunnerFaultTest, MissingExecutableIsRejectedWith127) {
  engine_.FailNext(Op::kStart,
                   absl::InternalError(
                       "exec: \"nope\": executable file not found in $PATH"));
  absl::StatusOr<TaskResult> result = Run(Request("x"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason(), crucible::v1::TERMINATION_REASON_REJECTED);
  EXPECT_EQ(result->exit_code(), 127);
  EXPECT_TRUE(engine_.containers().empty());
}

TEST_F(RunnerFaultTest, FailedWaitIsReturnedBeforeStart) {
  engine_.FailNext(Op::kWait, absl::UnavailableError("reset"));
  absl::StatusOr<TaskResult> result = Run(Request("w"));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(engine_.CallCount(Op::kStart), 0)
      << absl::StrJoin(engine_.calls(), ", ");
  EXPECT_TRUE(engine_.containers().empty());
}

TEST_F(RunnerFaultTest, FailedRemoveStillReturnsTheResult) {
  engine_.FailNext(Op::kRemove, absl::InternalError("device busy"));
  absl::StatusOr<TaskResult> result = Run(Request("rm"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason(), crucible::v1::TERMINATION_REASON_EXITED);
  EXPECT_EQ(engine_.containers().count("crucible-rm"), 1u)
      << "left to the reaper";
}

TEST_F(RunnerFaultTest, OutputPastTheLimitKillsKeepingExactlyTheLimit) {
  engine_.SetScript({.stdout_data = "hello world", .until_killed = true});
  crucible::v1::RunRequest req = Request("big");
  req.mutable_spec()->set_max_output_bytes(4);
  absl::StatusOr<TaskResult> result = Run(req);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason(), crucible::v1::TERMINATION_REASON_OUTPUT_LIMIT);
  EXPECT_TRUE(result->output_truncated());
  EXPECT_EQ(sink_.Output(), "hell");
  EXPECT_EQ(engine_.CallCount(Op::kKill), 1);
  EXPECT_TRUE(engine_.containers().empty());
}

TEST_F(RunnerFaultTest, OomKilledAndAnUnexplainedSigkillAreOomKilled) {
  engine_.SetScript({.exit_code = 137, .oom_killed = true});
  absl::StatusOr<TaskResult> oom = Run(Request("oom"));
  ASSERT_TRUE(oom.ok()) << oom.status();
  EXPECT_EQ(oom->reason(), crucible::v1::TERMINATION_REASON_OOM_KILLED);
  // Podman on cgroup v1 reports no OOMKilled: exit 137 alone says it.
  engine_.SetScript({.exit_code = 137});
  absl::StatusOr<TaskResult> sigkill = Run(Request("k"));
  ASSERT_TRUE(sigkill.ok()) << sigkill.status();
  EXPECT_EQ(sigkill->reason(), crucible::v1::TERMINATION_REASON_OOM_KILLED);
}

TEST_F(RunnerFaultTest, StdinIsWrittenToTheContainer) {
  crucible::v1::RunRequest req = Request("in");
  req.mutable_spec()->set_stdin("abc");
  ASSERT_TRUE(Run(req).ok());
  EXPECT_EQ(engine_.StdinOf("crucible-in"), "abc");
}

// Podman's log follow sometimes outlives the exit: the stream is abandoned
// logs_grace after the exit and the output read again without follow.
TEST_F(RunnerFaultTest, LogStreamStalledAfterTheExitIsReadAgain) {
  options_.logs_grace = absl::ZeroDuration();
  engine_.SetScript({.exit_code = 0, .stdout_data = "late\n"});
  engine_.StallNext(Op::kLogs);
  absl::StatusOr<TaskResult> result = Run(Request("stall"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason(), crucible::v1::TERMINATION_REASON_EXITED);
  EXPECT_EQ(sink_.Output(), "late\n");
  EXPECT_EQ(engine_.CallCount(Op::kLogs), 2);
}

// Once an inspection sees the exit recorded, a log stream and a wait call
// that have not ended are dropped at once (no logs_grace, no wait_grace):
// the output is read again without follow and the state inspected is the
// result.
TEST_F(RunnerFaultTest, ExitRecordedByInspectEndsTheRunWithoutWaitOrGrace) {
  options_.first_inspect = absl::ZeroDuration();
  options_.logs_grace = absl::Hours(1);
  options_.wait_grace = absl::Hours(1);
  // The stalled wait is never sent: start without waiting for it.
  options_.wait_post_timeout = absl::ZeroDuration();
  engine_.SetScript({.exit_code = 4, .stdout_data = "all of it\n"});
  engine_.StallNext(Op::kWait);
  engine_.StallNext(Op::kLogs);
  absl::StatusOr<TaskResult> result;
  testing_util::BoundedThread run([&] { result = Run(Request("fast")); });
  ASSERT_TRUE(run.JoinWithin(absl::Seconds(30)));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason(), crucible::v1::TERMINATION_REASON_EXITED);
  EXPECT_EQ(result->exit_code(), 4);
  EXPECT_EQ(sink_.Output(), "all of it\n");
  EXPECT_EQ(engine_.CallCount(Op::kLogs), 2);
  EXPECT_TRUE(engine_.containers().empty());
}

// The engine stops answering mid-run: after engine_failures_to_give_up
// failed inspections (one per inspect_interval on the injected clock) the
// run ends UNAVAILABLE and its container is left to the orphan reaper,
// which removes it once the engine is back.
TEST_F(RunnerFaultTest, EngineLostMidRunEndsUnavailableAndTheReaperCleansUp) {
  engine_.SetScript({.until_killed = true});
  Runner& runner = MakeRunner();
  absl::StatusOr<TaskResult> result;
  testing_util::BoundedThread run(
      [&] { result = runner.Run(Request("lost"), sink_, nullptr); });
  ASSERT_TRUE(sink_.started.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(engine_.WaitForCalls(Op::kLogs, 1));  // following the output
  engine_.SetUnreachable(true);
  for (int i = 1; i <= options_.engine_failures_to_give_up; ++i) {
    clock_.Advance(options_.inspect_interval);
    ASSERT_TRUE(engine_.WaitForCalls(Op::kInspect, i)) << i;
  }
  ASSERT_TRUE(run.JoinWithin(absl::Seconds(30)));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable)
      << result.status();
  EXPECT_EQ(engine_.CallCount(Op::kRemove), 0);
  EXPECT_EQ(runner.ReapOrphans().status().code(),
            absl::StatusCode::kUnavailable);
  engine_.SetUnreachable(false);
  absl::StatusOr<int> reaped = runner.ReapOrphans();
  ASSERT_TRUE(reaped.ok()) << reaped.status();
  EXPECT_EQ(*reaped, 1);
  EXPECT_TRUE(engine_.containers().empty());
}

TEST_F(RunnerFaultTest, ReaperRemovesOnlyItsOwnNamedContainersOfNoActiveRun) {
  const std::map<std::string, std::string> ours = {
      {policy::kExecutorLabel, "executor"}, {policy::kRunLabel, "old"}};
  engine_.AddContainer("crucible-old", ours, /*running=*/true);
  engine_.AddContainer("someone-else", ours, /*running=*/true);
  engine_.AddContainer("crucible-other-executor",
                       {{policy::kExecutorLabel, "executor-2"}},
                       /*running=*/false);
  engine_.SetScript({.until_killed = true});
  Runner& runner = MakeRunner();
  testing_util::BoundedThread run(
      [&] { (void)runner.Run(Request("active"), sink_, nullptr); });
  ASSERT_TRUE(sink_.started.WaitForNotificationWithTimeout(absl::Seconds(10)));
  absl::StatusOr<int> reaped = runner.ReapOrphans();
  ASSERT_TRUE(reaped.ok()) << reaped.status();
  EXPECT_EQ(*reaped, 1);
  EXPECT_EQ(engine_.containers(),
            (std::set<std::string>{"crucible-active", "crucible-other-executor",
                                   "someone-else"}));
  ASSERT_TRUE(runner.Cancel("active").ok());
  ASSERT_TRUE(run.JoinWithin(absl::Seconds(30)));
}

}  // namespace
}  // namespace runner
