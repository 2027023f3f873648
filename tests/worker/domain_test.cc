// The worker's domain pieces: protocol messages, executor choice, backoff.
#include <optional>
#include <string>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "worker/backoff.h"
#include "worker/executor_pool.h"
#include "worker/protocol.h"

namespace worker {
namespace {

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

TEST(ProtocolTest, ResultWinsOverStatus) {
  crucible::v1::TaskResult result;
  result.set_reason(crucible::v1::TERMINATION_REASON_TIMEOUT);
  auto c = MakeCompletion("L", absl::InternalError("late"), result, StopCause::kShutdown, "");
  EXPECT_EQ(c.completion().result().reason(), crucible::v1::TERMINATION_REASON_TIMEOUT);
}

TEST(ProtocolTest, ErrorCodeIsPassedThrough) {
  auto c = MakeCompletion("L", absl::PermissionDeniedError("policy"), std::nullopt,
                          StopCause::kNone, "");
  EXPECT_EQ(c.completion().lease_id(), "L");
  EXPECT_EQ(c.completion().error().code(),
            static_cast<int>(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(c.completion().error().message(), "policy");
}

TEST(ProtocolTest, ServerCancelWithoutResultIsACancelledResult) {
  auto c = MakeCompletion("L", absl::CancelledError(""), std::nullopt,
                          StopCause::kServerCancel, "bye");
  EXPECT_EQ(c.completion().result().reason(), crucible::v1::TERMINATION_REASON_CANCELLED);
}

TEST(ProtocolTest, ShutdownIsRetryableUnavailable) {
  auto c = MakeCompletion("L", absl::CancelledError(""), std::nullopt, StopCause::kShutdown, "");
  EXPECT_EQ(c.completion().error().code(), static_cast<int>(absl::StatusCode::kUnavailable));
}

TEST(ProtocolTest, OkWithoutResultIsRetryableInternal) {
  auto c = MakeCompletion("L", absl::OkStatus(), std::nullopt, StopCause::kNone, "");
  EXPECT_EQ(c.completion().error().code(), static_cast<int>(absl::StatusCode::kInternal));
}

TEST(ExecutorPoolTest, PicksLeastBusyAndRoundRobinsTies) {
  ExecutorPool pool({"a", "b"});
  EXPECT_EQ(*pool.Acquire(), "a");
  EXPECT_EQ(*pool.Acquire(), "b");
  EXPECT_EQ(*pool.Acquire(), "a");
  pool.Release("a");
  pool.Release("a");  // a: 0, b: 1
  EXPECT_EQ(*pool.Acquire(), "a");  // least busy
  EXPECT_EQ(*pool.Acquire(), "b");  // a: 1, b: 1: a tie, b's turn
  EXPECT_EQ(pool.InFlight("a"), 1);
  EXPECT_EQ(pool.InFlight("b"), 2);
}

TEST(ExecutorPoolTest, EmptyPoolIsFailedPrecondition) {
  ExecutorPool pool({});
  EXPECT_EQ(pool.Acquire().status().code(), absl::StatusCode::kFailedPrecondition);
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
