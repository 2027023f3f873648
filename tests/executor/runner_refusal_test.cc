// The runner refuses requests outside the policy before any engine call:
// its engine is a scripted HTTP server that records every request.
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
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

class NullSink : public RunSink {
 public:
  void OnStarted(const std::string&, absl::Time) override {}
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

// Answers like an engine that has no image at all.
std::string NoImageEngine(const std::string& line) {
  if (absl::StrContains(line, "/version"))
    return Http(200, R"({"ApiVersion":"1.41"})");
  if (absl::StrContains(line, "/images/create")) {
    return Http(200, "{\"error\":\"no registry here\"}\n");
  }
  if (absl::StrContains(line, "/images/"))
    return Http(404, R"({"message":"no such image"})");
  return Http(500, R"({"message":"unexpected"})");
}

class RunnerRefusalTest : public ::testing::Test {
 protected:
  absl::StatusOr<crucible::v1::TaskResult> Run(
      const crucible::v1::RunRequest& req,
      policy::ContainerPolicyOptions po = {}) {
    auto engine =
        docker::EngineClient::Create({.docker_host = server_.address()});
    EXPECT_TRUE(engine.ok());
    auto policy = policy::ContainerPolicy::Create(po);
    EXPECT_TRUE(policy.ok()) << policy.status();
    Runner runner(**engine, *policy, clock_, RunnerOptions{});
    NullSink sink;
    return runner.Run(req, sink, nullptr);
  }

  common::FakeClock clock_;
  ScriptedServer server_{NoImageEngine};
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
  EXPECT_TRUE(server_.requests().empty())
      << "engine called: " << server_.requests().front();
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
  for (const std::string& r : server_.requests()) {
    EXPECT_FALSE(absl::StrContains(r, "/images/create")) << r;
    EXPECT_FALSE(absl::StrContains(r, "/containers/")) << r;
  }
}

TEST_F(RunnerRefusalTest, MissingImageIsPulledWhenThePolicyAllows) {
  policy::ContainerPolicyOptions po;
  po.pull_images = true;
  auto result = Run(Request(), po);
  // This engine's pull fails: FAILED_PRECONDITION with its reason.
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(result.status().message(), "no registry here"))
      << result.status();
  std::vector<std::string> requests = server_.requests();
  EXPECT_TRUE(
      std::any_of(requests.begin(), requests.end(), [](const std::string& r) {
        return absl::StartsWith(r, "POST /v1.41/images/create?fromImage=");
      }));
}

}  // namespace
}  // namespace runner
