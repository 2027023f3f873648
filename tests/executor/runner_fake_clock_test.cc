// The runner's deadline logic on a FakeClock, against a scripted engine
// that holds wait and logs open until the container is killed: the timeout
// is decided by the injected clock alone, with no real waiting for it.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/proto_time.h"
#include "executor/docker/engine_client.h"
#include "executor/policy/container_policy.h"
#include "executor/runner/runner.h"
#include "gtest/gtest.h"
#include "tests/executor/scripted_server.h"

namespace runner {
namespace {

using executor_testing::Http;
using executor_testing::ScriptedServer;

// A container that runs until killed, then reports exit 137. Its engine id
// is "c1"; the runner must address it by name (crucible-<run id>).
class FakeEngine {
 public:
  std::string Respond(const std::string& line) {
    if (absl::StrContains(line, "/version"))
      return Http(200, R"({"ApiVersion":"1.41"})");
    if (absl::StrContains(line, "/images/")) return Http(200, "{}");
    if (absl::StrContains(line, "/containers/create"))
      return Http(201, R"({"Id":"c1"})");
    if (absl::StrContains(line, "/start")) return Http(204, "");
    if (absl::StrContains(line, "/kill")) {
      killed_.Notify();
      return Http(204, "");
    }
    if (absl::StrContains(line, "/wait")) {
      killed_.WaitForNotification();
      return Http(200, R"({"StatusCode":137})");
    }
    if (absl::StrContains(line, "/logs")) {
      killed_.WaitForNotification();
      return Http(200, "");
    }
    if (absl::StartsWith(line, "DELETE")) return Http(204, "");
    if (absl::StrContains(line, "/containers/crucible-r") &&
        absl::StrContains(line, "/json ")) {
      return killed_.HasBeenNotified()
                 ? Http(
                       200,
                       R"({"State":{"Status":"exited","Running":false,"ExitCode":137}})")
                 : Http(
                       200,
                       R"({"State":{"Status":"running","Running":true,"ExitCode":0}})");
    }
    return Http(500, R"({"message":"unexpected"})");
  }
  bool killed() const { return killed_.HasBeenNotified(); }
  // Releases held calls (at the end of a test that never killed).
  void Release() {
    if (!killed_.HasBeenNotified()) killed_.Notify();
  }

 private:
  absl::Notification killed_;
};

class StartedSink : public RunSink {
 public:
  void OnStarted(const std::string&, absl::Time start) override {
    start_ = start;
    started.Notify();
  }
  void OnOutput(crucible::v1::OutputChunk) override {}
  absl::Notification started;
  absl::Time start_;
};

// A Runner on a FakeClock over the scripted engine.
class RunnerFakeClockTest : public testing::Test {
 protected:
  void SetUp() override {
    auto engine = docker::EngineClient::Create({.docker_host = server_.address()});
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
    auto policy = policy::ContainerPolicy::Create({});
    ASSERT_TRUE(policy.ok()) << policy.status();
    policy_.emplace(*std::move(policy));
    RunnerOptions ro;
    ro.inspect_interval = absl::Hours(1);  // on the fake clock: never, here
    runner_ = std::make_unique<Runner>(*engine_, *policy_, clock_, ro);
  }

  FakeEngine fake_;
  ScriptedServer server_{[this](const std::string& line) { return fake_.Respond(line); },
                         /*concurrent=*/true};
  std::unique_ptr<docker::EngineClient> engine_;
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
  std::thread run([&] { result = runner_->Run(req, sink, nullptr); });
  ASSERT_TRUE(sink.started.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(sink.start_, clock_.Now())
      << "start time comes from the injected clock";
  EXPECT_FALSE(fake_.killed());

  clock_.Advance(absl::Minutes(5));  // exactly the deadline
  run.join();
  fake_.Release();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(fake_.killed());
  EXPECT_EQ(result->reason(), crucible::v1::TERMINATION_REASON_TIMEOUT);
  EXPECT_EQ(result->exit_code(), 137);
  EXPECT_EQ(common::FromProtoTime(result->finish_time()) -
                common::FromProtoTime(result->start_time()),
            absl::Minutes(5));
  const std::vector<std::string> requests = server_.requests();
  bool removed = false;
  for (const std::string& r : requests) {
    if (absl::StartsWith(r, "DELETE /v1.41/containers/crucible-r1?"))
      removed = true;
    // Every call on the container uses its name, never the engine's id.
    EXPECT_FALSE(absl::StrContains(r, "/containers/c1")) << r;
  }
  EXPECT_TRUE(removed);
  EXPECT_TRUE(
      std::any_of(requests.begin(), requests.end(), [](const std::string& r) {
        return absl::StartsWith(
            r, "POST /v1.41/containers/create?name=crucible-r1 ");
      }));
}

TEST_F(RunnerFakeClockTest, CancelKillsBeforeTheDeadline) {
  crucible::v1::RunRequest req;
  req.set_run_id("r2");
  req.mutable_spec()->set_image("localhost/crucible/x:1");
  StartedSink sink;
  absl::StatusOr<crucible::v1::TaskResult> result;
  std::thread run([&] { result = runner_->Run(req, sink, nullptr); });
  ASSERT_TRUE(sink.started.WaitForNotificationWithTimeout(absl::Seconds(30)));
  clock_.Advance(absl::Minutes(9));  // the default timeout is 10 min
  ASSERT_TRUE(runner_->Cancel("r2").ok());
  run.join();
  fake_.Release();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason(), crucible::v1::TERMINATION_REASON_CANCELLED);
  EXPECT_EQ(result->exit_code(), 137);
}

}  // namespace
}  // namespace runner
