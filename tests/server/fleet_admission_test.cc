#include "server/scheduler/fleet_admission.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/proto_time.h"
#include "executor/policy/container_policy.h"
#include "executor/policy/policy_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/scheduler/spec_validation.h"

namespace server {
namespace {

using crucible::v1::ExecutorAccepts;
using crucible::v1::TaskSpec;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kImage[] = "localhost/crucible/busybox:latest";

// What an executor with `policy_json` (a --policy_file) publishes.
ExecutorAccepts Published(const std::string& id,
                          const std::string& policy_json = "{}") {
  policy::ContainerPolicyOptions options;
  EXPECT_TRUE(policy::ApplyPolicyJson(policy_json, options).ok())
      << policy_json;
  options.executor_id = id;
  absl::StatusOr<policy::ContainerPolicy> p =
      policy::ContainerPolicy::Create(options);
  EXPECT_TRUE(p.ok()) << p.status();
  return p->Accepts();
}

TaskSpec Spec(const std::string& image = kImage) {
  TaskSpec spec;
  spec.set_image(image);
  spec.add_command("true");
  return spec;
}

class FleetAdmissionTest : public ::testing::Test {
 protected:
  common::FakeClock clock_;
  FleetAdmission fleet_{{.memory = absl::Minutes(10)}, clock_};
};

TEST_F(FleetAdmissionTest, NoExecutorKnownIsUnavailableAndSaysWhy) {
  absl::Status s = fleet_.Check(Spec());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_THAT(s.message(), HasSubstr("no executor is connected"));
  EXPECT_FALSE(fleet_.Known());
  // A worker whose executors have said nothing yet does not help.
  fleet_.Publish("w1", 1, {});
  EXPECT_EQ(fleet_.Check(Spec()).code(), absl::StatusCode::kUnavailable);
}

TEST_F(FleetAdmissionTest,
       RefusesWhatTheOnlyExecutorRefusesNamingFieldAndLimit) {
  fleet_.Publish("w1", 1, {Published("e1")});
  EXPECT_TRUE(fleet_.Known());
  EXPECT_TRUE(fleet_.Check(Spec()).ok());

  TaskSpec petabyte = Spec();
  petabyte.mutable_resources()->set_memory_bytes(int64_t{1} << 50);
  absl::Status s = fleet_.Check(petabyte);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), StartsWith("spec.resources.memory_bytes: "));
  EXPECT_THAT(s.message(),
              HasSubstr(absl::StrCat(
                  policy::ContainerPolicyOptions().max_memory_bytes)));

  TaskSpec century = Spec();
  *century.mutable_timeout() =
      common::ToProtoDuration(absl::Hours(24 * 365 * 100));
  s = fleet_.Check(century);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), StartsWith("spec.timeout: "));
  EXPECT_THAT(s.message(), HasSubstr("24h"));

  s = fleet_.Check(Spec("docker.io/library/alpine:3"));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), StartsWith("spec.image: "));
  EXPECT_THAT(s.message(), HasSubstr("localhost/crucible/"));

  for (auto set :
       {+[](TaskSpec& t) { t.mutable_resources()->set_cpu_millis(1'000'000); },
        +[](TaskSpec& t) { t.mutable_resources()->set_pids_limit(1'000'000); },
        +[](TaskSpec& t) {
          t.mutable_resources()->set_tmpfs_bytes(int64_t{1} << 40);
        },
        +[](TaskSpec& t) { t.set_max_output_bytes(int64_t{1} << 40); },
        +[](TaskSpec& t) { t.mutable_resources()->set_memory_bytes(1024); }}) {
    TaskSpec spec = Spec();
    set(spec);
    s = fleet_.Check(spec);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument)
        << spec.ShortDebugString();
    EXPECT_THAT(s.message(), StartsWith("spec.")) << s;
  }
}

TEST_F(FleetAdmissionTest, AdmitsWhatAnyOneExecutorAccepts) {
  fleet_.Publish("w1", 1, {Published("small")});
  fleet_.Publish("w2", 2,
                 {Published("big", R"({"images": ["registry.example/gpu/"],
                                       "memory_bytes": {"max": 68719476736}})")});
  TaskSpec big = Spec("registry.example/gpu/train:1");
  big.mutable_resources()->set_memory_bytes(int64_t{32} << 30);
  EXPECT_TRUE(fleet_.Check(big).ok()) << fleet_.Check(big);
  EXPECT_TRUE(fleet_.Check(Spec()).ok());

  // Each field alone is accepted somewhere, but no executor takes both.
  TaskSpec mixed = Spec();
  mixed.mutable_resources()->set_memory_bytes(int64_t{32} << 30);
  absl::Status s = fleet_.Check(mixed);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(),
              StartsWith("spec: no connected executor accepts all of it"));
  EXPECT_THAT(s.message(), HasSubstr("executor big"));
  EXPECT_THAT(s.message(), HasSubstr("executor small"));

  // Above every maximum: the message names the largest.
  TaskSpec huge = big;
  huge.mutable_resources()->set_memory_bytes(int64_t{1} << 50);
  s = fleet_.Check(huge);
  EXPECT_THAT(s.message(), StartsWith("spec.resources.memory_bytes: "));
  EXPECT_THAT(s.message(), HasSubstr("68719476736"));
}

TEST_F(FleetAdmissionTest, AWorkerThatPublishesNothingAdmitsEverything) {
  fleet_.Publish("w1", 1, {Published("e1")});
  fleet_.PublishUnknown("old", 2);
  EXPECT_TRUE(fleet_.Check(Spec("docker.io/library/alpine:3")).ok());
}

TEST_F(FleetAdmissionTest, AGoneWorkerCountsForTheMemoryThenNot) {
  fleet_.Publish("w1", 1, {Published("e1")});
  fleet_.Disconnected("w1", 1);
  clock_.Advance(absl::Minutes(9));
  EXPECT_TRUE(fleet_.Check(Spec()).ok());
  clock_.Advance(absl::Minutes(2));
  EXPECT_EQ(fleet_.Check(Spec()).code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(fleet_.Known());
}

TEST_F(FleetAdmissionTest, TheEndOfAnOlderStreamDoesNotForgetTheNewerOne) {
  fleet_.Publish("w1", 1, {Published("e1")});
  fleet_.Publish("w1", 2,
                 {Published("e1")});  // reconnected before the old stream ended
  fleet_.Disconnected("w1", 1);
  clock_.Advance(absl::Hours(1));
  EXPECT_TRUE(fleet_.Check(Spec()).ok());
}

TEST_F(FleetAdmissionTest, AnUpdateReplacesWhatTheWorkerPublished) {
  fleet_.Publish("w1", 1, {Published("e1")});
  fleet_.Publish(
      "w1", 1, {Published("e1", R"({"images": ["registry.example/only/"]})")});
  EXPECT_EQ(fleet_.Check(Spec()).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(FleetAdmissionTest, OffAdmitsEverything) {
  FleetAdmission off({.enabled = false}, clock_);
  EXPECT_TRUE(off.Check(Spec("docker.io/library/alpine:3")).ok());
}

// The server's CheckAccepts and the executor's Plan must agree on every
// spec the server's own validation lets through: otherwise a task is
// admitted and then REJECTED, or refused though it would run.
TEST(CheckAcceptsTest, FilesAndArtifactsNeedAnExecutorThatTakesThem) {
  ExecutorAccepts none = Published("old");
  none.set_max_input_files(0);
  none.set_max_input_bytes(0);
  none.set_max_artifact_bytes(0);
  TaskSpec files = Spec();
  crucible::v1::InputFile* f = files.add_files();
  f->set_path("in.txt");
  f->set_content("12345");
  absl::Status s = CheckAccepts(none, files);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), StartsWith("spec.files (count): 1 exceeds executor "
                                      "old's maximum 0 (policy rule "
                                      "max_input_files)"));

  TaskSpec artifacts = Spec();
  artifacts.add_artifacts("out/*.json");
  s = CheckAccepts(none, artifacts);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(),
              StartsWith("spec.artifacts: executor old collects no artifacts"));

  ExecutorAccepts takes = none;
  takes.set_executor_id("new");
  takes.set_max_input_files(10);
  takes.set_max_input_bytes(4);
  takes.set_max_artifact_bytes(1 << 20);
  takes.set_max_scratch_bytes(16 << 20);
  EXPECT_TRUE(CheckAccepts(takes, artifacts).ok());
  s = CheckAccepts(takes, files);
  EXPECT_THAT(s.message(), StartsWith("spec.files (bytes): 5 exceeds executor "
                                      "new's maximum 4"));
  files.mutable_files(0)->set_content("1234");
  EXPECT_TRUE(CheckAccepts(takes, files).ok());
  files.mutable_resources()->set_scratch_bytes((16 << 20) + 1);
  EXPECT_THAT(CheckAccepts(takes, files).message(),
              StartsWith("spec.resources.scratch_bytes: "));
}

TEST_F(FleetAdmissionTest, ArtifactsNeedSomeConnectedExecutorThatCollects) {
  ExecutorAccepts old = Published("old");
  old.set_max_artifact_bytes(0);
  fleet_.Publish("w1", 1, {old});
  TaskSpec spec = Spec();
  spec.add_artifacts("out.txt");
  absl::Status s = fleet_.Check(spec);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("collects no artifacts"));
  ExecutorAccepts collects = old;
  collects.set_executor_id("new");
  collects.set_max_artifact_bytes(1024);
  fleet_.Publish("w2", 2, {collects});
  EXPECT_TRUE(fleet_.Check(spec).ok()) << fleet_.Check(spec);
}

TEST(CheckAcceptsTest, AgreesWithTheExecutorsPlan) {
  const std::vector<std::string> policies = {
      "{}",
      R"({"images": ["localhost/crucible/busybox:latest", "ghcr.io/acme/*"],
          "memory_bytes": {"default": 8388608, "max": 16777216},
          "cpu_millis": {"default": 100, "max": 500},
          "pids_limit": {"default": 16, "max": 64},
          "tmpfs_bytes": {"default": 1048576, "max": 2097152},
          "max_output_bytes": {"default": 1024, "max": 4096},
          "timeout": {"default": "1s", "max": "1m"}})"};
  std::vector<TaskSpec> specs;
  for (const std::string& image :
       {std::string(kImage), std::string("localhost/crucible/other:1"),
        std::string("ghcr.io/acme/tool:2"), std::string("ghcr.io/other/tool:2"),
        std::string("docker.io/library/alpine:3")}) {
    specs.push_back(Spec(image));
  }
  const std::vector<int64_t> sizes = {0,
                                      1,
                                      1024,
                                      4096,
                                      4097,
                                      6 << 20,
                                      (6 << 20) - 1,
                                      16 << 20,
                                      (16 << 20) + 1,
                                      int64_t{4} << 30,
                                      (int64_t{4} << 30) + 1,
                                      int64_t{1} << 50};
  for (int64_t n : sizes) {
    TaskSpec s = Spec();
    s.mutable_resources()->set_memory_bytes(n);
    specs.push_back(s);
    s = Spec();
    s.mutable_resources()->set_tmpfs_bytes(n);
    specs.push_back(s);
    s = Spec();
    s.set_max_output_bytes(n);
    specs.push_back(s);
    s = Spec();
    s.mutable_resources()->set_cpu_millis(n);
    specs.push_back(s);
    s = Spec();
    s.mutable_resources()->set_pids_limit(n);
    specs.push_back(s);
  }
  for (absl::Duration d :
       {absl::ZeroDuration(), absl::Seconds(1), absl::Minutes(1),
        absl::Minutes(1) + absl::Nanoseconds(1), absl::Hours(24),
        absl::Hours(24) + absl::Seconds(1), absl::Hours(24 * 30)}) {
    TaskSpec s = Spec();
    *s.mutable_timeout() = common::ToProtoDuration(d);
    specs.push_back(s);
  }
  int compared = 0;
  for (const std::string& json : policies) {
    policy::ContainerPolicyOptions options;
    ASSERT_TRUE(policy::ApplyPolicyJson(json, options).ok());
    absl::StatusOr<policy::ContainerPolicy> p =
        policy::ContainerPolicy::Create(options);
    ASSERT_TRUE(p.ok()) << p.status();
    for (const TaskSpec& spec : specs) {
      if (!ValidateTaskSpec(spec).ok()) continue;
      crucible::v1::RunRequest run;
      run.set_run_id("run-1");
      *run.mutable_spec() = spec;
      const absl::Status planned = p->Plan(run).status();
      const absl::Status admitted = CheckAccepts(p->Accepts(), spec);
      EXPECT_EQ(planned.ok(), admitted.ok())
          << "policy " << json << "\nspec " << spec.ShortDebugString()
          << "\nplan: " << planned << "\nadmission: " << admitted;
      ++compared;
    }
  }
  EXPECT_GT(compared, 100);
}

}  // namespace
}  // namespace server
