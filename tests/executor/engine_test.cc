// The runner and the engine client against a real engine (Podman's Docker
// API), directly or through the docker-proxy: CRUCIBLE_TEST_DOCKER_HOST.
#include <memory>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/proto_time.h"
#include "executor/docker/engine_client.h"
#include "executor/policy/container_policy.h"
#include "executor/runner/runner.h"
#include "gtest/gtest.h"
#include "tests/executor/engine_env.h"
#include "tests/testing/bounded_thread.h"
#include "tests/testing/test_stack.h"

namespace runner {
namespace {

// A hang guard on the joins of runs a test cancels or shuts down (sleep 60):
// longer than the run itself, so it fires only when Run never returns.
constexpr absl::Duration kJoinBound = absl::Seconds(90);

using crucible::v1::TerminationReason;
using executor_testing::kBusybox;

// Collects a run's events. Thread-safe.
class CollectingSink : public RunSink {
 public:
  void OnStarted(const crucible::v1::RunStarted& started) override {
    absl::MutexLock lock(&mu_);
    container_id_ = started.container_id();
    started_at_ = absl::Now();
    started_.Notify();
  }
  void OnOutput(crucible::v1::OutputChunk chunk) override {
    absl::MutexLock lock(&mu_);
    EXPECT_EQ(chunk.offset(), next_offset_) << "offsets must be contiguous";
    next_offset_ = chunk.offset() + static_cast<int64_t>(chunk.data().size());
    (chunk.stream() == crucible::v1::OUTPUT_STREAM_STDOUT ? stdout_
                                                          : stderr_) +=
        chunk.data();
  }
  std::string out() {
    absl::MutexLock l(&mu_);
    return stdout_;
  }
  std::string err() {
    absl::MutexLock l(&mu_);
    return stderr_;
  }
  std::string container_id() {
    absl::MutexLock l(&mu_);
    return container_id_;
  }
  // When the container started (the real clock, as the runner's).
  absl::Time started_at() {
    absl::MutexLock l(&mu_);
    return started_at_;
  }
  absl::Notification started_;

 private:
  absl::Mutex mu_;
  std::string stdout_ ABSL_GUARDED_BY(mu_), stderr_ ABSL_GUARDED_BY(mu_);
  std::string container_id_ ABSL_GUARDED_BY(mu_);
  absl::Time started_at_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  int64_t next_offset_ ABSL_GUARDED_BY(mu_) = 0;
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CRUCIBLE_REQUIRE_ENGINE(host);
    docker::EngineClientOptions eo;
    eo.docker_host = host;
    auto engine = docker::EngineClient::Create(eo);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
    ASSERT_TRUE(engine_->Ping().ok());
    policy::ContainerPolicyOptions po;
    po.executor_id = executor_id_;
    auto policy = policy::ContainerPolicy::Create(po);
    ASSERT_TRUE(policy.ok());
    policy_ = std::make_unique<policy::ContainerPolicy>(*policy);
    RunnerOptions ro;
    ro.slots = 2;
    runner_ =
        std::make_unique<Runner>(*engine_, *policy_, common::Clock::Real(), ro);
  }

  void TearDown() override {
    if (engine_ == nullptr) return;
    // Every run removes its container, on every path.
    auto left = engine_->ListContainers("crucible.executor", executor_id_);
    ASSERT_TRUE(left.ok()) << left.status();
    EXPECT_TRUE(left->empty()) << left->size() << " containers left behind";
    for (const auto& c : *left) (void)engine_->Remove(c.name);
  }

  crucible::v1::RunRequest Request(std::vector<std::string> argv) {
    crucible::v1::RunRequest r;
    r.set_run_id(absl::StrCat(executor_id_, "-run-", ++runs_));
    r.set_task_id("task");
    r.set_attempt(1);
    r.mutable_spec()->set_image(kBusybox);
    for (auto& a : argv) r.mutable_spec()->add_command(a);
    *r.mutable_spec()->mutable_timeout() =
        common::ToProtoDuration(absl::Seconds(30));
    return r;
  }

  const std::string executor_id_ = executor_testing::UniqueExecutorId();
  int runs_ = 0;
  std::unique_ptr<docker::EngineClient> engine_;
  std::unique_ptr<policy::ContainerPolicy> policy_;
  std::unique_ptr<Runner> runner_;
};

TEST_F(EngineTest, EchoHelloExitsZeroWithOutput) {
  CollectingSink sink;
  auto result = runner_->Run(Request({"echo", "hello"}), sink, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason(), TerminationReason::TERMINATION_REASON_EXITED);
  EXPECT_EQ(result->exit_code(), 0);
  EXPECT_EQ(sink.out(), "hello\n");
  EXPECT_TRUE(sink.started_.HasBeenNotified());
  EXPECT_FALSE(sink.container_id().empty());
  EXPECT_TRUE(result->has_start_time());
  EXPECT_TRUE(result->has_finish_time());
}

TEST_F(EngineTest, NonZeroExitAndStderrApartFromStdout) {
  CollectingSink sink;
  auto result = runner_->Run(
      Request({"sh", "-c", "echo out; echo err >&2; exit 3"}), sink, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason(), TerminationReason::TERMINATION_REASON_EXITED);
  EXPECT_EQ(result->exit_code(), 3);
  EXPECT_EQ(sink.out(), "out\n");
  EXPECT_EQ(sink.err(), "err\n");
}

TEST_F(EngineTest, RunsAsNonRootInAHardenedContainer) {
  CollectingSink sink;
  auto result = runner_->Run(
      Request(
          {"sh", "-c",
           "id -u; id -g; grep -E '^(CapEff|NoNewPrivs|Seccomp):' "
           "/proc/self/status; "
           "ls /sys/class/net; "
           "touch /probe 2>/dev/null && echo rootfs-writable; "
           "touch /etc/x 2>/dev/null && echo etc-writable; "
           "grep -q ' /tmp tmpfs .*noexec' /proc/mounts && echo tmp-noexec; "
           "grep -q ' /tmp tmpfs .*nosuid' /proc/mounts && echo tmp-nosuid; "
           "grep -q ' /tmp tmpfs .*nodev' /proc/mounts && echo tmp-nodev"}),
      sink, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code(), 0);
  // uid and gid 65534; no effective capability; no-new-privileges; the
  // engine's default seccomp filter (mode 2); only the loopback interface;
  // / not writable; /tmp noexec,nosuid,nodev (writing there: below).
  EXPECT_EQ(sink.out(),
            "65534\n65534\n"
            "CapEff:\t0000000000000000\n"
            "NoNewPrivs:\t1\n"
            "Seccomp:\t2\n"
            "lo\n"
            "tmp-noexec\ntmp-nosuid\ntmp-nodev\n")
      << sink.err();
}

// The task's one scratch directory: it can write /tmp (noexec, sized) and
// nothing else, and cannot execute a binary it wrote anywhere. Every mount
// point and every directory outside /proc and /sys is tried.
constexpr char kScratchCheck[] = R"sh(
fail=0; t=.probe.$$
bad() { echo "FAIL $*"; fail=1; }
runs() { cp /bin/busybox "$1/bb" 2>/dev/null && chmod 755 "$1/bb" 2>/dev/null || return 2
  [ "$("$1/bb" echo RAN 2>/dev/null)" = RAN ]; }
{ echo x > /tmp/$t; } 2>/dev/null || bad "/tmp not writable"
opts=$(awk '$2=="/tmp"{o=$4} END{print o}' /proc/mounts)
case ",$opts," in *,noexec,*) ;; *) bad "/tmp not noexec: $opts";; esac
case ",$opts," in *,size=*) ;; *) bad "/tmp has no size: $opts";; esac
runs /tmp; [ $? = 1 ] || bad "a binary copied to /tmp runs (or cannot be copied)"
rm -f /tmp/$t /tmp/bb
for d in $( { awk '{print $2}' /proc/mounts; find / \( -path /proc -o -path /sys -o -path /tmp \) -prune -o -type d -print 2>/dev/null; } | sort -u); do
  [ "$d" = /tmp ] && continue
  case "$d" in /proc|/proc/*|/sys|/sys/*) continue;; esac
  if touch "$d/$t" 2>/dev/null; then rm -f "$d/$t"; x=""; runs "$d" && x=" and runs binaries"; rm -f "$d/bb"; bad "$d writable$x"; fi
done
[ $fail = 0 ] && echo SCRATCH-OK
exit $fail
)sh";

TEST_F(EngineTest, OnlyTmpIsWritableAndNothingWrittenCanRun) {
  CollectingSink sink;
  auto result =
      runner_->Run(Request({"sh", "-c", kScratchCheck}), sink, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code(), 0) << sink.out() << sink.err();
  EXPECT_EQ(sink.out(), "SCRATCH-OK\n") << sink.err();
}

TEST_F(EngineTest, StdinIsWrittenAndClosed) {
  crucible::v1::RunRequest req = Request({"sh", "-c", "wc -c; echo done"});
  std::string input(100000, 'x');  // more than a pipe buffer
  req.mutable_spec()->set_stdin(input);
  CollectingSink sink;
  auto result = runner_->Run(req, sink, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason(), TerminationReason::TERMINATION_REASON_EXITED);
  EXPECT_EQ(result->exit_code(), 0);
  EXPECT_EQ(sink.out(), "100000\ndone\n");
}

TEST_F(EngineTest, StdinRoundTripsThroughCat) {
  crucible::v1::RunRequest req = Request({"cat"});
  std::string input;
  for (int i = 0; i < 70000; ++i)
    input.push_back(static_cast<char>(i * 7 % 256));
  req.mutable_spec()->set_stdin(input);
  CollectingSink sink;
  auto result = runner_->Run(req, sink, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason(), TerminationReason::TERMINATION_REASON_EXITED);
  EXPECT_EQ(result->exit_code(), 0);
  EXPECT_EQ(sink.out().size(), input.size());
  EXPECT_TRUE(sink.out() == input) << "bytes differ";
}

// Without stdin in the spec the task reads an empty stdin (user guide,
// "Running a task"): `wc -c` reads end of file at once, it does not wait
// for input that never comes (the timeout only ends a hang sooner).
TEST_F(EngineTest, WithoutStdinTheTaskReadsAnEmptyStdin) {
  crucible::v1::RunRequest req = Request({"sh", "-c", "wc -c; echo done"});
  ASSERT_TRUE(req.spec().stdin().empty());
  *req.mutable_spec()->mutable_timeout() =
      common::ToProtoDuration(absl::Seconds(30));
  CollectingSink sink;
  auto result = runner_->Run(req, sink, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason(), TerminationReason::TERMINATION_REASON_EXITED);
  EXPECT_EQ(result->exit_code(), 0);
  EXPECT_EQ(sink.out(), "0\ndone\n") << sink.err();
}

TEST_F(EngineTest, ForkBombIsStoppedByThePidsLimitAndTheExecutorSurvives) {
  crucible::v1::RunRequest req =
      Request({"sh", "-c", "b(){ b | b & }; b; sleep 2; echo still-here"});
  req.mutable_spec()->mutable_resources()->set_pids_limit(32);
  *req.mutable_spec()->mutable_timeout() =
      common::ToProtoDuration(absl::Seconds(5));
  CollectingSink sink;
  auto result = runner_->Run(req, sink, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  // The limit held it: forks failed inside ...
  EXPECT_TRUE(absl::StrContains(sink.err(), "can't fork"))
      << sink.err().substr(0, 500);
  // ... and the script went on to its end by itself (its last line is a
  // builtin), long before the 5 s timeout: not TIMED_OUT, not killed.
  EXPECT_EQ(result->reason(), TerminationReason::TERMINATION_REASON_EXITED)
      << result->DebugString();
  EXPECT_EQ(result->exit_code(), 0);
  EXPECT_EQ(sink.out(), "still-here\n");
  // The executor and the engine are fine: the next run works.
  CollectingSink next;
  auto after = runner_->Run(Request({"echo", "ok"}), next, nullptr);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->exit_code(), 0);
  EXPECT_EQ(next.out(), "ok\n");
}

TEST_F(EngineTest, OrphanIsReapedAndActiveRunsAreNot) {
  // An orphan: a container with this executor's label but no run, as a
  // crash would leave it (created, never removed).
  crucible::v1::RunRequest orphan_req = Request({"sleep", "60"});
  auto plan = policy_->Plan(orphan_req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_TRUE(engine_->CreateContainer(plan->name, plan->create_body).ok());
  // Another executor's container is not ours to reap.
  policy::ContainerPolicyOptions other_options;
  other_options.executor_id = executor_id_ + "-other";
  auto other_policy = policy::ContainerPolicy::Create(other_options);
  ASSERT_TRUE(other_policy.ok());
  auto other_plan = other_policy->Plan(Request({"true"}));
  ASSERT_TRUE(other_plan.ok());
  ASSERT_TRUE(
      engine_->CreateContainer(other_plan->name, other_plan->create_body).ok());
  // A container with this executor's label but not named crucible-*: not
  // one Crucible created (the proxy would refuse to remove it anyway), so
  // it is left alone. Made on the engine itself, past the proxy.
  const std::string socket = testing_util::TestStackFromEnv().engine_socket;
  ASSERT_FALSE(socket.empty()) << "run through ctest";
  auto direct =
      docker::EngineClient::Create({.docker_host = "unix://" + socket});
  ASSERT_TRUE(direct.ok()) << direct.status();
  const std::string foreign = "foreign-" + executor_id_;
  ASSERT_TRUE((*direct)->CreateContainer(foreign, plan->create_body).ok());
  absl::Cleanup remove_foreign = [&] { (void)(*direct)->Remove(foreign); };
  // And a live run whose container must survive the reaping.
  crucible::v1::RunRequest live = Request({"sleep", "60"});
  CollectingSink sink;
  auto control = std::make_shared<RunControl>();
  absl::StatusOr<crucible::v1::TaskResult> result;
  testing_util::BoundedThread run(
      [&] { result = runner_->Run(live, sink, control); });
  ASSERT_TRUE(sink.started_.WaitForNotificationWithTimeout(absl::Seconds(10)));

  absl::StatusOr<int> reaped = runner_->ReapOrphans();
  ASSERT_TRUE(reaped.ok()) << reaped.status();
  EXPECT_EQ(*reaped, 1);
  EXPECT_EQ(engine_->InspectContainer(plan->name).status().code(),
            absl::StatusCode::kNotFound);
  auto live_state =
      engine_->InspectContainer(policy::ContainerName(live.run_id()));
  ASSERT_TRUE(live_state.ok()) << live_state.status();
  EXPECT_TRUE(live_state->running);
  EXPECT_TRUE(engine_->InspectContainer(other_plan->name).ok());
  EXPECT_TRUE(engine_->Remove(other_plan->name).ok());
  EXPECT_TRUE((*direct)->InspectContainer(foreign).ok());
  EXPECT_TRUE((*direct)->Remove(foreign).ok());

  control->Cancel();
  ASSERT_TRUE(run.JoinWithin(kJoinBound)) << "Run never returned";
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason(), TerminationReason::TERMINATION_REASON_CANCELLED);
  reaped = runner_->ReapOrphans();
  ASSERT_TRUE(reaped.ok()) << reaped.status();
  EXPECT_EQ(*reaped, 0);
}

TEST_F(EngineTest, StopAcceptingRefusesNewRunsWithUnavailable) {
  runner_->StopAccepting();
  CollectingSink sink;
  auto result = runner_->Run(Request({"true"}), sink, nullptr);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(sink.started_.HasBeenNotified());
}

TEST_F(EngineTest, UnreadStdinDoesNotHoldUpTheRun) {
  crucible::v1::RunRequest quick = Request({"echo", "hi"});
  quick.mutable_spec()->set_stdin(std::string(200000, 'y'));
  CollectingSink sink;
  auto result = runner_->Run(quick, sink, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code(), 0);
  EXPECT_EQ(sink.out(), "hi\n");

  crucible::v1::RunRequest slow = Request({"sleep", "60"});
  slow.mutable_spec()->set_stdin(std::string(200000, 'y'));
  *slow.mutable_spec()->mutable_timeout() =
      common::ToProtoDuration(absl::Seconds(1));
  CollectingSink sink2;
  result = runner_->Run(slow, sink2, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason(), TerminationReason::TERMINATION_REASON_TIMEOUT);
  // Not held up until the 60 s sleep ends: a bound far from the 1 s timeout,
  // which a loaded engine cannot break (how close to the timeout a run ends
  // is Sleep60WithA1sTimeoutEndsTimedOutWithin3s's point, run alone).
  EXPECT_LT(absl::Now() - sink2.started_at(), absl::Seconds(30));
}

TEST_F(EngineTest, ContainerIsRemovedAfterTheRun) {
  crucible::v1::RunRequest req = Request({"true"});
  CollectingSink sink;
  auto result = runner_->Run(req, sink, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  auto left = engine_->ListContainers("crucible.executor", executor_id_);
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_TRUE(left->empty());
  // The sink got the engine's id; calls through the proxy use the name.
  EXPECT_NE(sink.container_id(), policy::ContainerName(req.run_id()));
  auto inspect = engine_->InspectContainer(policy::ContainerName(req.run_id()));
  EXPECT_EQ(inspect.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EngineTest, Sleep60WithA1sTimeoutEndsTimedOutWithin3s) {
  crucible::v1::RunRequest req = Request({"sleep", "60"});
  *req.mutable_spec()->mutable_timeout() =
      common::ToProtoDuration(absl::Seconds(1));
  CollectingSink sink;
  auto result = runner_->Run(req, sink, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason(), TerminationReason::TERMINATION_REASON_TIMEOUT);
  // The timeout runs from the container's start (creating it is not the
  // task's time): the run ended (killed, exit seen) within 3 s of that...
  EXPECT_LT(common::FromProtoTime(result->finish_time()) -
                common::FromProtoTime(result->start_time()),
            absl::Seconds(3));
  // ... and Run returned soon after, the container removed (generous: a
  // loaded machine's engine is slow to remove).
  EXPECT_LT(absl::Now() - sink.started_at(), absl::Seconds(6));
}

// 64 KiB proves what 1 MiB would (the cap is cut mid-stream, exactly, with
// the reason): `yes` writes far more than that before it is stopped.
TEST_F(EngineTest, YesWithA64KiBCapEndsOutputLimitKeepingExactly64KiB) {
  constexpr size_t kCap = size_t{64} << 10;
  crucible::v1::RunRequest req = Request({"yes"});
  req.mutable_spec()->set_max_output_bytes(kCap);
  CollectingSink sink;
  auto result = runner_->Run(req, sink, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason(),
            TerminationReason::TERMINATION_REASON_OUTPUT_LIMIT);
  EXPECT_TRUE(result->output_truncated());
  ASSERT_EQ(sink.out().size(), kCap);
  std::string want;
  while (want.size() < kCap) want += "y\n";
  EXPECT_EQ(sink.out(), want.substr(0, kCap));
}

TEST_F(EngineTest, MemoryLimitKillIsOomKilled) {
  crucible::v1::RunRequest req = Request(
      {"sh", "-c", "a=$(head -c 64000000 /dev/zero | tr '\\0' a); echo ${#a}"});
  req.mutable_spec()->mutable_resources()->set_memory_bytes(16 << 20);
  CollectingSink sink;
  auto result = runner_->Run(req, sink, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason(), TerminationReason::TERMINATION_REASON_OOM_KILLED)
      << result->DebugString() << sink.out() << sink.err();
}

TEST_F(EngineTest, CancelKillsAndEndsWithCancelled) {
  crucible::v1::RunRequest req = Request({"sleep", "60"});
  CollectingSink sink;
  absl::StatusOr<crucible::v1::TaskResult> result;
  testing_util::BoundedThread run(
      [&] { result = runner_->Run(req, sink, nullptr); });
  ASSERT_TRUE(sink.started_.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(runner_->Cancel(req.run_id()).ok());
  ASSERT_TRUE(run.JoinWithin(kJoinBound)) << "Run never returned";
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason(), TerminationReason::TERMINATION_REASON_CANCELLED);
  EXPECT_EQ(runner_->Cancel(req.run_id()).code(), absl::StatusCode::kNotFound);
}

TEST_F(EngineTest, SlotsFullIsResourceExhaustedAndShutdownEndsRunsUnavailable) {
  crucible::v1::RunRequest a = Request({"sleep", "60"});
  crucible::v1::RunRequest b = Request({"sleep", "60"});
  CollectingSink sa, sb, sc;
  absl::StatusOr<crucible::v1::TaskResult> ra, rb;
  testing_util::BoundedThread ta([&] { ra = runner_->Run(a, sa, nullptr); });
  testing_util::BoundedThread tb([&] { rb = runner_->Run(b, sb, nullptr); });
  ASSERT_TRUE(sa.started_.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(sb.started_.WaitForNotificationWithTimeout(absl::Seconds(10)));
  auto third = runner_->Run(Request({"true"}), sc, nullptr);
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  // Shutdown is not a cancellation of the task: the runs end UNAVAILABLE
  // (retryable), and their containers are removed (TearDown).
  runner_->ShutdownAll();
  ASSERT_TRUE(ta.JoinWithin(kJoinBound)) << "Run never returned";
  ASSERT_TRUE(tb.JoinWithin(kJoinBound)) << "Run never returned";
  EXPECT_EQ(ra.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(rb.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(runner_->active_runs(), 0);
}

TEST_F(EngineTest, UnknownImageIsFailedPrecondition) {
  crucible::v1::RunRequest req = Request({"true"});
  req.mutable_spec()->set_image("localhost/crucible/does-not-exist:1");
  CollectingSink sink;
  auto result = runner_->Run(req, sink, nullptr);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(result.status().message(), "does-not-exist"));
}

TEST_F(EngineTest, DisallowedImageIsPermissionDeniedWithoutAContainer) {
  crucible::v1::RunRequest req = Request({"true"});
  req.mutable_spec()->set_image("docker.io/library/busybox:latest");
  CollectingSink sink;
  auto result = runner_->Run(req, sink, nullptr);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(sink.started_.HasBeenNotified());
  // TearDown checks that no container with our label exists.
}

TEST_F(EngineTest, MissingExecutableIsRejectedWith127) {
  CollectingSink sink;
  auto result = runner_->Run(Request({"/no/such/binary"}), sink, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason(), TerminationReason::TERMINATION_REASON_REJECTED);
  EXPECT_EQ(result->exit_code(), 127);
  EXPECT_FALSE(sink.started_.HasBeenNotified());
}

TEST(EngineUnreachableTest, UnreachableEngineIsUnavailable) {
  docker::EngineClientOptions eo;
  eo.docker_host = "unix:///nonexistent/engine.sock";
  auto engine = docker::EngineClient::Create(eo);
  ASSERT_TRUE(engine.ok());
  EXPECT_EQ((*engine)->Ping().code(), absl::StatusCode::kUnavailable);
  eo.docker_host = "tcp://127.0.0.1:1";
  engine = docker::EngineClient::Create(eo);
  ASSERT_TRUE(engine.ok());
  absl::Status s = (*engine)->InspectImage(kBusybox);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(s.message(), "tcp://127.0.0.1:1"));
  EXPECT_EQ(
      docker::EngineClient::Create({.docker_host = "ftp://x"}).status().code(),
      absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace runner
