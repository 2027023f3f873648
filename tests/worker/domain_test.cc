// The worker's domain pieces: protocol messages, the executor pool (routing,
// health state, membership) with a fake clock, discovery, backoff.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "common/clock.h"
#include "gtest/gtest.h"
#include "worker/backoff.h"
#include "worker/discovery.h"
#include "worker/executor_pool.h"
#include "worker/protocol.h"
#include "worker/readiness.h"

namespace worker {
namespace {

TEST(ReadinessTest, ReadyOnlyWithAStreamAndAnExecutorInRotation) {
  Readiness r;
  EXPECT_FALSE(r.ready());
  r.SetStreamUp(true);
  EXPECT_FALSE(r.ready());
  EXPECT_EQ(r.Reason(), "no executor in rotation");
  r.SetExecutorsInRotation(2);
  EXPECT_TRUE(r.ready());
  r.SetStreamUp(false);
  EXPECT_FALSE(r.ready());
  EXPECT_EQ(r.Reason(), "no stream to the server");
  r.SetStreamError("UNAVAILABLE: this server is a standby");
  EXPECT_EQ(r.Reason(),
            "no stream to the server (UNAVAILABLE: this server is a standby)");
  r.SetExecutorsInRotation(0);
  EXPECT_FALSE(r.ready());
  EXPECT_EQ(r.NotReadyReason(),
            "no stream to the server and no executor in rotation "
            "(UNAVAILABLE: this server is a standby)");
  r.SetStreamUp(true);  // the error is gone with it
  r.SetExecutorsInRotation(1);
  EXPECT_EQ(r.NotReadyReason(), "");
  r.SetStreamUp(false);
  EXPECT_EQ(r.NotReadyReason(), "no stream to the server");
}

TEST(ReadinessTest, PublishesEachChangeOnceAndEndsWithTheCurrentState) {
  Readiness r;
  EXPECT_FALSE(r.StartPublishing());  // not ready, as published at start
  r.SetStreamUp(true);
  r.SetExecutorsInRotation(1);
  ASSERT_TRUE(r.StartPublishing());  // publish "ready"
  // Meanwhile the stream drops: another caller does not publish...
  r.SetStreamUp(false);
  EXPECT_FALSE(r.StartPublishing());
  // ...the one publishing goes on with the new state, then stops.
  EXPECT_TRUE(r.PublishedOne());
  EXPECT_FALSE(r.ready());
  EXPECT_FALSE(r.PublishedOne());
  EXPECT_FALSE(r.StartPublishing());  // nothing new
  r.SetStreamUp(true);
  EXPECT_TRUE(r.StartPublishing());
  EXPECT_FALSE(r.PublishedOne());
  // Not ready for another reason: published again.
  r.SetStreamUp(false);
  EXPECT_TRUE(r.StartPublishing());
  EXPECT_FALSE(r.PublishedOne());
  r.SetStreamError("UNAVAILABLE: refused");
  EXPECT_TRUE(r.StartPublishing());
  EXPECT_FALSE(r.PublishedOne());
}

TEST(ProtocolTest, RunRequestUsesLeaseAsRunIdAndCopiesSpec) {
  crucible::v1::Assignment a;
  a.set_lease_id("L");
  a.set_attempt(4);
  a.mutable_task()->set_id("T");
  a.mutable_task()->mutable_spec()->set_image("img");
  crucible::v1::RunRequest r = MakeRunRequest(a);
  EXPECT_EQ(r.run_id(), "L");
  EXPECT_EQ(r.task_id(), "T");
  EXPECT_EQ(r.attempt(), 4);
  EXPECT_EQ(r.spec().image(), "img");
}

TEST(ProtocolTest, FinishedIsNotRelayedAsAnEvent) {
  crucible::v1::RunResponse finished;
  finished.mutable_finished()->set_exit_code(1);
  EXPECT_FALSE(RelayRunEvent("L", finished).has_value());
  crucible::v1::RunResponse output;
  output.mutable_output()->set_data("x");
  std::optional<crucible::v1::ConnectRequest> r = RelayRunEvent("L", output);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->output().lease_id(), "L");
  EXPECT_EQ(r->output().chunk().data(), "x");
}

TEST(ProtocolTest, ArtifactChunksAreRelayedWithTheLease) {
  crucible::v1::RunResponse artifact;
  artifact.mutable_artifact()->set_path("out/a");
  artifact.mutable_artifact()->set_offset(65536);
  artifact.mutable_artifact()->set_data("y");
  std::optional<crucible::v1::ConnectRequest> r = RelayRunEvent("L", artifact);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->artifact().lease_id(), "L");
  EXPECT_EQ(r->artifact().chunk().path(), "out/a");
  EXPECT_EQ(r->artifact().chunk().offset(), 65536);
  EXPECT_EQ(r->artifact().chunk().data(), "y");
}

TEST(ProtocolTest, ResultWinsOverStatus) {
  crucible::v1::TaskResult result;
  result.set_reason(crucible::v1::TERMINATION_REASON_TIMEOUT);
  auto c = MakeCompletion("L", absl::InternalError("late"), result,
                          StopCause::kShutdown, "");
  EXPECT_EQ(c.completion().result().reason(),
            crucible::v1::TERMINATION_REASON_TIMEOUT);
}

TEST(ProtocolTest, ErrorCodeIsPassedThrough) {
  auto c = MakeCompletion("L", absl::PermissionDeniedError("policy"),
                          std::nullopt, StopCause::kNone, "");
  EXPECT_EQ(c.completion().lease_id(), "L");
  EXPECT_EQ(c.completion().error().code(),
            static_cast<int>(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(c.completion().error().message(), "policy");
}

TEST(ProtocolTest, ServerCancelWithoutResultIsACancelledResult) {
  auto c = MakeCompletion("L", absl::CancelledError(""), std::nullopt,
                          StopCause::kServerCancel, "bye");
  EXPECT_EQ(c.completion().result().reason(),
            crucible::v1::TERMINATION_REASON_CANCELLED);
}

TEST(ProtocolTest, ShutdownIsRetryableUnavailable) {
  auto c = MakeCompletion("L", absl::CancelledError(""), std::nullopt,
                          StopCause::kShutdown, "");
  EXPECT_EQ(c.completion().error().code(),
            static_cast<int>(absl::StatusCode::kUnavailable));
}

TEST(ProtocolTest, OkWithoutResultIsRetryableInternal) {
  auto c =
      MakeCompletion("L", absl::OkStatus(), std::nullopt, StopCause::kNone, "");
  EXPECT_EQ(c.completion().error().code(),
            static_cast<int>(absl::StatusCode::kInternal));
}

// A pool of `addresses`, all checked healthy.
class PoolTest : public testing::Test {
 protected:
  ExecutorPool& MakePool(std::vector<std::string> addresses,
                         PoolOptions options = {.slots_per_executor = 2}) {
    pool_.emplace(options, clock_, gen_);
    pool_->SetListed(addresses);
    for (const std::string& a : pool_->DueChecks()) pool_->CheckResult(a, true);
    return *pool_;
  }
  bool Healthy(const std::string& address) {
    for (const ExecutorView& v : pool_->Snapshot()) {
      if (v.address == address) return v.healthy;
    }
    return false;
  }
  common::FakeClock clock_;
  absl::BitGen gen_;
  std::optional<ExecutorPool> pool_;
};

TEST_F(PoolTest, NewExecutorsGetNoWorkUntilAHealthCheckSaysServing) {
  PoolOptions options;
  options.slots_per_executor = 2;
  ExecutorPool pool(options, clock_, gen_);
  EXPECT_TRUE(pool.SetListed({"a:1"}));
  EXPECT_EQ(pool.FreeSlots(), 0);
  EXPECT_EQ(pool.Acquire().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(pool.DueChecks(), std::vector<std::string>{"a:1"});
  EXPECT_TRUE(pool.DueChecks().empty());  // one check at a time
  EXPECT_TRUE(pool.CheckResult("a:1", true));
  EXPECT_EQ(pool.FreeSlots(), 2);
  EXPECT_EQ(*pool.Acquire(), "a:1");
}

TEST_F(PoolTest, PicksTheExecutorWithTheMostFreeSlots) {
  ExecutorPool& pool = MakePool({"a:1", "b:1"}, {.slots_per_executor = 3});
  const std::string first = *pool.Acquire();
  const std::string second = *pool.Acquire();
  EXPECT_NE(first, second);   // 3 free beats 2 free
  pool.Release(first, true);  // first: 3 free, second: 2 free
  EXPECT_EQ(*pool.Acquire(), first);
  EXPECT_EQ(pool.FreeSlots(), 4);
  EXPECT_EQ(pool.InFlight(first) + pool.InFlight(second), 2);
}

TEST_F(PoolTest, TiesAreBrokenAtRandom) {
  ExecutorPool& pool = MakePool({"a:1", "b:1", "c:1"});
  std::map<std::string, int> firsts;
  for (int i = 0; i < 300; ++i) {
    const std::string a = *pool.Acquire();
    ++firsts[a];
    pool.Release(a, true);
  }
  // Every executor wins some ties (each with p = 1/3; all-or-nothing
  // outcomes have probability ~1e-52).
  EXPECT_EQ(firsts.size(), 3u);
  for (const auto& [address, n] : firsts) EXPECT_GT(n, 30) << address;
}

TEST_F(PoolTest, FullPoolIsUnavailable) {
  ExecutorPool& pool = MakePool({"a:1"});
  ASSERT_TRUE(pool.Acquire().ok());
  ASSERT_TRUE(pool.Acquire().ok());
  EXPECT_EQ(pool.Acquire().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(pool.FreeSlots(), 0);
}

TEST_F(PoolTest, NotServingLeavesRotationAndIsRecheckedWithGrowingBackoff) {
  PoolOptions options;
  options.retry_initial = absl::Seconds(1);
  options.retry_max = absl::Seconds(3);
  options.rejoin_window = absl::ZeroDuration();  // the window has its own test
  ExecutorPool& pool = MakePool({"a:1", "b:1"}, options);
  clock_.Advance(options.probe_interval);
  ASSERT_EQ(pool.DueChecks().size(), 2u);
  EXPECT_TRUE(pool.CheckResult("a:1", false));
  pool.CheckResult("b:1", true);
  EXPECT_FALSE(Healthy("a:1"));
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(*pool.Acquire(), "b:1") << i;
    pool.Release("b:1", true);
  }
  // Answers the due checks (a: `a_serving`, others SERVING); true if a's
  // check was due.
  auto check = [&](bool a_serving) {
    bool a_due = false;
    for (const std::string& d : pool.DueChecks()) {
      a_due = a_due || d == "a:1";
      pool.CheckResult(d, d == "a:1" ? a_serving : true);
    }
    return a_due;
  };
  // Backoff 1 s, 2 s, 3 s (capped), 3 s.
  for (absl::Duration delay : {absl::Seconds(1), absl::Seconds(2),
                               absl::Seconds(3), absl::Seconds(3)}) {
    clock_.Advance(delay - absl::Milliseconds(1));
    EXPECT_FALSE(check(false)) << delay;
    clock_.Advance(absl::Milliseconds(1));
    EXPECT_TRUE(check(false)) << delay;
    EXPECT_FALSE(Healthy("a:1"));
  }
  clock_.Advance(absl::Seconds(3));
  EXPECT_TRUE(check(true));
  EXPECT_TRUE(Healthy("a:1"));  // recovered: back in rotation
}

TEST_F(PoolTest, RepeatedUnreachableRunsTakeAnExecutorOut) {
  ExecutorPool& pool = MakePool({"a:1"}, {.slots_per_executor = 4,
                                          .rejoin_window = absl::ZeroDuration(),
                                          .failures_to_eject = 2});
  ASSERT_TRUE(pool.Acquire().ok());
  pool.Release("a:1", false);
  EXPECT_TRUE(Healthy("a:1"));
  EXPECT_EQ(pool.DueChecks(), std::vector<std::string>{"a:1"});  // checked soon
  ASSERT_TRUE(pool.Acquire().ok());
  pool.Release("a:1", false);
  EXPECT_FALSE(Healthy("a:1"));
  EXPECT_EQ(pool.FreeSlots(), 0);
  pool.CheckResult("a:1", true);
  EXPECT_TRUE(Healthy("a:1"));
}

// Answers every due check of `pool` with `serving`; how many were due.
int AnswerDueChecks(ExecutorPool& pool, bool serving) {
  int n = 0;
  for (const std::string& d : pool.DueChecks()) {
    pool.CheckResult(d, serving);
    ++n;
  }
  return n;
}

TEST_F(PoolTest, ExecutorBackFromAnOutageWaitsForAStableWindow) {
  PoolOptions options;
  options.retry_initial = absl::Milliseconds(500);
  options.rejoin_window = absl::Seconds(2);
  ExecutorPool& pool = MakePool({"a:1"}, options);
  clock_.Advance(options.probe_interval);
  ASSERT_EQ(AnswerDueChecks(pool, false), 1);
  EXPECT_FALSE(Healthy("a:1"));
  // SERVING again at t=0.5 s; checked every 500 ms; in rotation once the
  // checks in a row span 2 s, not before.
  clock_.Advance(absl::Milliseconds(500));
  ASSERT_EQ(AnswerDueChecks(pool, true), 1);
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(Healthy("a:1")) << i;
    EXPECT_EQ(pool.FreeSlots(), 0);
    clock_.Advance(absl::Milliseconds(499));
    EXPECT_EQ(AnswerDueChecks(pool, true), 0) << i;  // not due yet
    clock_.Advance(absl::Milliseconds(1));
    ASSERT_EQ(AnswerDueChecks(pool, true), 1) << i;
  }
  EXPECT_FALSE(Healthy("a:1"));  // 1.5 s of SERVING so far
  clock_.Advance(absl::Milliseconds(500));
  ASSERT_EQ(AnswerDueChecks(pool, true), 1);
  EXPECT_TRUE(Healthy("a:1"));
  EXPECT_EQ(pool.FreeSlots(), options.slots_per_executor);
  // Healthy again: checked at the probe interval.
  clock_.Advance(options.probe_interval - absl::Milliseconds(1));
  EXPECT_EQ(AnswerDueChecks(pool, true), 0);
}

TEST_F(PoolTest, AFailedCheckInTheWindowStartsItAgain) {
  PoolOptions options;
  options.retry_initial = absl::Milliseconds(500);
  options.rejoin_window = absl::Seconds(2);
  ExecutorPool& pool = MakePool({"a:1"}, options);
  clock_.Advance(options.probe_interval);
  ASSERT_EQ(AnswerDueChecks(pool, false), 1);
  for (int i = 0; i < 3; ++i) {  // SERVING for 1.5 s...
    clock_.Advance(absl::Milliseconds(500));
    ASSERT_EQ(AnswerDueChecks(pool, true), 1);
  }
  clock_.Advance(absl::Milliseconds(500));
  ASSERT_EQ(AnswerDueChecks(pool, false), 1);  // ...then a flap
  clock_.Advance(absl::Milliseconds(500));
  ASSERT_EQ(AnswerDueChecks(pool, true), 1);
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(absl::Milliseconds(500));
    ASSERT_EQ(AnswerDueChecks(pool, true), 1);
    EXPECT_FALSE(Healthy("a:1")) << i;  // the window counts from after the flap
  }
  clock_.Advance(absl::Milliseconds(500));
  ASSERT_EQ(AnswerDueChecks(pool, true), 1);
  EXPECT_TRUE(Healthy("a:1"));
}

TEST_F(PoolTest, ExecutorEjectedAfterLostRunsWaitsForTheWindowToo) {
  ExecutorPool& pool =
      MakePool({"a:1"}, {.slots_per_executor = 4,
                         .retry_initial = absl::Milliseconds(500),
                         .rejoin_window = absl::Seconds(1),
                         .failures_to_eject = 1});
  ASSERT_TRUE(pool.Acquire().ok());
  pool.Release("a:1", false);
  EXPECT_FALSE(Healthy("a:1"));
  // Its health still says SERVING (the engine, not the executor, was
  // lost): that alone does not bring it back at once.
  clock_.Advance(absl::Milliseconds(500));
  ASSERT_EQ(AnswerDueChecks(pool, true), 1);
  EXPECT_FALSE(Healthy("a:1"));
  clock_.Advance(absl::Milliseconds(500));
  ASSERT_EQ(AnswerDueChecks(pool, true), 1);
  EXPECT_FALSE(Healthy("a:1"));
  clock_.Advance(absl::Milliseconds(500));
  ASSERT_EQ(AnswerDueChecks(pool, true), 1);
  EXPECT_TRUE(Healthy("a:1"));
}

TEST_F(PoolTest, ExecutorsNeverInRotationEnterAtTheirFirstServingCheck) {
  PoolOptions options;
  options.rejoin_window = absl::Seconds(10);
  ExecutorPool& pool = MakePool({"a:1"}, options);  // checked SERVING once
  EXPECT_TRUE(Healthy("a:1"));
  ASSERT_TRUE(pool.SetListed({"a:1", "b:1"}));
  ASSERT_EQ(AnswerDueChecks(pool, false), 1);  // b, not yet serving
  clock_.Advance(options.retry_initial);
  ASSERT_EQ(AnswerDueChecks(pool, true), 1);
  EXPECT_TRUE(Healthy("b:1"));  // never was in rotation: no window
}

TEST_F(PoolTest, OutOfRotationIsCheckedAtLeastEveryFewSecondsByDefault) {
  const PoolOptions defaults;
  EXPECT_LE(defaults.retry_max, absl::Seconds(2));
  EXPECT_LE(defaults.rejoin_window, absl::Seconds(2));
}

TEST_F(PoolTest, ReachedRunResetsTheFailureCount) {
  ExecutorPool& pool =
      MakePool({"a:1"}, {.slots_per_executor = 4, .failures_to_eject = 2});
  ASSERT_TRUE(pool.Acquire().ok());
  pool.Release("a:1", false);
  ASSERT_TRUE(pool.Acquire().ok());
  pool.Release("a:1", true);
  ASSERT_TRUE(pool.Acquire().ok());
  pool.Release("a:1", false);
  EXPECT_TRUE(Healthy("a:1"));
}

TEST_F(PoolTest, ExecutorThatSaidFullGetsNoRunForAWhile) {
  ExecutorPool& pool =
      MakePool({"a:1", "b:1"},
               {.slots_per_executor = 2, .full_backoff = absl::Seconds(1)});
  const std::string a = *pool.Acquire();
  pool.Release(a, true);
  pool.MarkFull(a);
  const std::string b = a == "a:1" ? "b:1" : "a:1";
  EXPECT_EQ(*pool.Acquire(), b);
  EXPECT_EQ(*pool.Acquire(), b);
  EXPECT_EQ(pool.Acquire().status().code(), absl::StatusCode::kUnavailable);
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(*pool.Acquire(), a);
}

TEST_F(PoolTest, VanishedExecutorLeavesAtOnceAndIsForgottenWhenItsRunsEnd) {
  ExecutorPool& pool = MakePool({"a:1", "b:1"});
  ASSERT_TRUE(pool.Acquire().ok());
  ASSERT_TRUE(pool.Acquire().ok());  // one on each (most free slots)
  ASSERT_EQ(pool.InFlight("a:1"), 1);
  EXPECT_TRUE(pool.SetListed({"b:1"}));
  EXPECT_EQ(pool.FreeSlots(), 1);
  EXPECT_EQ(*pool.Acquire(), "b:1");
  EXPECT_EQ(pool.InFlight("a:1"), 1);  // still counted while it runs
  pool.Release("a:1", true);
  EXPECT_EQ(pool.Snapshot().size(), 1u);
  EXPECT_FALSE(pool.SetListed({"b:1"}));  // no change
}

TEST_F(PoolTest, ExecutorAddedLaterIsCheckedThenGetsWork) {
  ExecutorPool& pool = MakePool({"a:1"});
  ASSERT_TRUE(pool.Acquire().ok());
  ASSERT_TRUE(pool.Acquire().ok());
  EXPECT_TRUE(pool.SetListed({"a:1", "b:1"}));
  EXPECT_EQ(pool.Acquire().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(pool.DueChecks(), std::vector<std::string>{"b:1"});
  EXPECT_TRUE(pool.CheckResult("b:1", true));
  EXPECT_EQ(*pool.Acquire(), "b:1");
}

TEST(DiscoveryTest, ValidatesHostPortAndNamesTheFlag) {
  EXPECT_TRUE(ValidateHostPort("exec-0.exec:8082").ok());
  EXPECT_TRUE(ValidateHostPort("[::1]:8082").ok());
  EXPECT_EQ(ValidateHostPort("nohost").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateHostPort("h:0").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateHostPort("::1:80").code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status s = Discovery::Validate({.static_addresses = {"a:1", "b"}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "--executors")) << s;
  s = Discovery::Validate({.dns_name = "svc"});
  EXPECT_TRUE(absl::StrContains(s.message(), "--executors_dns")) << s;
  EXPECT_EQ(Discovery::Validate({}).code(), absl::StatusCode::kInvalidArgument);
}

TEST(DiscoveryTest, ResolvesANameToEveryAddress) {
  absl::StatusOr<std::vector<std::string>> r =
      ResolveHostPort("127.0.0.1:8082");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, std::vector<std::string>{"127.0.0.1:8082"});
  r = ResolveHostPort("localhost:9");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NE(std::find(r->begin(), r->end(), "127.0.0.1:9"), r->end());
  EXPECT_FALSE(ResolveHostPort("no-such-host.invalid:1").ok());
}

TEST(DiscoveryTest, FileIsReReadAndAFailureKeepsTheLastList) {
  const std::string path = ::testing::TempDir() + "/executors.txt";
  auto write = [&](const std::string& text) {
    std::ofstream out(path, std::ios::trunc);
    out << text;
  };
  write("# executors\n127.0.0.1:2\n\n  127.0.0.1:1  \n");
  Discovery discovery({.static_addresses = {"127.0.0.1:3"}, .file = path});
  EXPECT_EQ(
      discovery.Resolve(),
      (std::vector<std::string>{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}));
  write("127.0.0.1:4\n");
  EXPECT_EQ(discovery.Resolve(),
            (std::vector<std::string>{"127.0.0.1:3", "127.0.0.1:4"}));
  write("not an address\n");
  EXPECT_EQ(discovery.Resolve(),
            (std::vector<std::string>{"127.0.0.1:3", "127.0.0.1:4"}));
  std::remove(path.c_str());
  EXPECT_EQ(discovery.Resolve(),
            (std::vector<std::string>{"127.0.0.1:3", "127.0.0.1:4"}));
}

TEST(BackoffTest, GrowsIsCappedAndJittered) {
  absl::BitGen gen;
  Backoff backoff({absl::Milliseconds(100), absl::Seconds(1), 2.0}, gen);
  absl::Duration nominal = absl::Milliseconds(100);
  for (int i = 0; i < 10; ++i) {
    absl::Duration d = backoff.Next();
    EXPECT_GE(d, nominal / 2) << i;
    EXPECT_LE(d, nominal) << i;
    nominal = std::min(nominal * 2, absl::Seconds(1));
  }
  backoff.Reset();
  EXPECT_LE(backoff.Next(), absl::Milliseconds(100));
}

}  // namespace
}  // namespace worker
