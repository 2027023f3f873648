// The runner refuses requests outside the policy before any engine call:
// its engine is the in-process fake, which records every call.
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "common/clock.h"
#include "common/proto_time.h"
#include "executor/policy/container_policy.h"
#include "executor/runner/runner.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_engine.h"

namespace runner {
namespace {

using testing_util::FakeEngine;

class NullSink : public RunSink {
 public:
  void OnStarted(const crucible::v1::RunStarted&) override {}
  void OnOutput(crucible::v1::OutputChunk) override {}
};

crucible::v1::RunRequest Request() {
  crucible::v1::RunRequest r;
  r.set_run_id("run-1");
  r.set_task_id("task-1");
  r.set_attempt(1);
  r.mutable_spec()->set_image("localhost/crucible/busybox:latest");
  r.mutable_spec()->add_command("true");
  return r;
}

class RunnerRefusalTest : public ::testing::Test {
 protected:
  absl::StatusOr<crucible::v1::TaskResult> Run(
      const crucible::v1::RunRequest& req,
      policy::ContainerPolicyOptions po = {}) {
    auto policy = policy::ContainerPolicy::Create(po);
    EXPECT_TRUE(policy.ok()) << policy.status();
    Runner runner(engine_, *policy, clock_, RunnerOptions{});
    NullSink sink;
    return runner.Run(req, sink, nullptr);
  }

  common::FakeClock clock_;
  FakeEngine engine_;  // has no image, and its pulls fail
};

TEST_F(RunnerRefusalTest, RequestsOutsideThePolicyMakeNoEngineCall) {
  struct Case {
    const char* name;
    void (*mutate)(crucible::v1::RunRequest&);
    absl::StatusCode code;
    const char* rule;  // the message names it
  };
  const Case cases[] = {
      {"disallowed image",
       [](crucible::v1::RunRequest& r) {
         r.mutable_spec()->set_image("docker.io/library/busybox:1");
       },
       absl::StatusCode::kPermissionDenied, "allowed_images"},
      {"exact rule does not admit another tag",
       [](crucible::v1::RunRequest& r) {
         r.mutable_spec()->set_image("localhost/other/x:2");
       },
       absl::StatusCode::kPermissionDenied, "localhost/other/x:1"},
      {"memory above max",
       [](crucible::v1::RunRequest& r) {
         r.mutable_spec()->mutable_resources()->set_memory_bytes(int64_t{5}
                                                                 << 30);
       },
       absl::StatusCode::kInvalidArgument, "memory_bytes.max"},
      {"cpu above max",
       [](crucible::v1::RunRequest& r) {
         r.mutable_spec()->mutable_resources()->set_cpu_millis(4001);
       },
       absl::StatusCode::kInvalidArgument, "cpu_millis.max"},
      {"pids above max",
       [](crucible::v1::RunRequest& r) {
         r.mutable_spec()->mutable_resources()->set_pids_limit(5000);
       },
       absl::StatusCode::kInvalidArgument, "pids_limit.max"},
      {"tmpfs above max",
       [](crucible::v1::RunRequest& r) {
         r.mutable_spec()->mutable_resources()->set_tmpfs_bytes(int64_t{2}
                                                                << 30);
       },
       absl::StatusCode::kInvalidArgument, "tmpfs_bytes.max"},
      {"timeout above max",
       [](crucible::v1::RunRequest& r) {
         *r.mutable_spec()->mutable_timeout() =
             common::ToProtoDuration(absl::Hours(25));
       },
       absl::StatusCode::kInvalidArgument, "timeout.max"},
      {"output above max",
       [](crucible::v1::RunRequest& r) {
         r.mutable_spec()->set_max_output_bytes(int64_t{1} << 40);
       },
       absl::StatusCode::kInvalidArgument, "max_output_bytes.max"},
      {"run id that is no container name",
       [](crucible::v1::RunRequest& r) { r.set_run_id("../x"); },
       absl::StatusCode::kInvalidArgument, "run_id"},
      {"negative memory",
       [](crucible::v1::RunRequest& r) {
         r.mutable_spec()->mutable_resources()->set_memory_bytes(-1);
       },
       absl::StatusCode::kInvalidArgument, "memory_bytes"},
  };
  policy::ContainerPolicyOptions po;
  po.allowed_images = {"localhost/other/x:1"};
  for (const Case& c : cases) {
    crucible::v1::RunRequest req = Request();
    c.mutate(req);
    auto result = Run(req, po);
    EXPECT_EQ(result.status().code(), c.code)
        << c.name << ": " << result.status();
    EXPECT_TRUE(absl::StrContains(result.status().message(), c.rule))
        << c.name << ": " << result.status();
  }
  EXPECT_TRUE(engine_.calls().empty())
      << "engine called: " << engine_.calls().front();
}

TEST_F(RunnerRefusalTest, RootUserIsRefusedWhenThePolicyIsBuilt) {
  for (const char* user : {"0:0", "0:1000", "1000:0"}) {
    policy::ContainerPolicyOptions po;
    po.user = user;
    auto policy = policy::ContainerPolicy::Create(po);
    EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument)
        << user;
    EXPECT_TRUE(absl::StrContains(policy.status().message(), "root"))
        << policy.status();
  }
}

TEST_F(RunnerRefusalTest,
       MissingImageIsFailedPreconditionAndNotPulledByDefault) {
  auto result = Run(Request());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(result.status().message(),
                                "localhost/crucible/busybox:latest"));
  // The create refused, the inspection says why; nothing is left.
  EXPECT_EQ(engine_.calls(),
            (std::vector<std::string>{
                "create crucible-run-1",
                "inspect-image localhost/crucible/busybox:latest"}));
  EXPECT_TRUE(engine_.containers().empty());
}

TEST_F(RunnerRefusalTest, MissingImageIsPulledWhenThePolicyAllows) {
  policy::ContainerPolicyOptions po;
  po.pull_images = true;
  auto result = Run(Request(), po);
  // This engine's pull fails: FAILED_PRECONDITION with its reason.
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(result.status().message(), "no registry here"))
      << result.status();
  EXPECT_EQ(engine_.CallCount(FakeEngine::Op::kPullImage), 1);
  EXPECT_EQ(engine_.CallCount(FakeEngine::Op::kCreate), 1);  // the refused one
}

TEST_F(RunnerRefusalTest, PulledImageIsCreatedAgainAndRuns) {
  engine_.SetPullWorks(true);
  policy::ContainerPolicyOptions po;
  po.pull_images = true;
  auto result = Run(Request(), po);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason(), crucible::v1::TERMINATION_REASON_EXITED);
  const std::vector<std::string> calls = engine_.calls();
  ASSERT_GE(calls.size(), 4u);
  EXPECT_EQ(
      std::vector<std::string>(calls.begin(), calls.begin() + 4),
      (std::vector<std::string>{
          "create crucible-run-1",
          "inspect-image localhost/crucible/busybox:latest",
          "pull localhost/crucible/busybox:latest", "create crucible-run-1"}));
  EXPECT_TRUE(engine_.containers().empty());
}

}  // namespace
}  // namespace runner
