// The scratch working directory's part of the policy (issue 25): what a
// spec with files or artifacts plans, and the specs it refuses before any
// engine call.
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "executor/policy/container_policy.h"
#include "executor/policy/policy_file.h"
#include "executor/policy/scratch.h"
#include "gtest/gtest.h"

namespace policy {
namespace {

using nlohmann::json;

crucible::v1::RunRequest Request() {
  crucible::v1::RunRequest r;
  r.set_run_id("lease-1");
  r.set_task_id("task-1");
  r.mutable_spec()->set_image("localhost/crucible/busybox:latest");
  r.mutable_spec()->add_command("true");
  return r;
}

void AddFile(crucible::v1::RunRequest& r, const std::string& path,
             const std::string& content, uint32_t mode = 0) {
  crucible::v1::InputFile* f = r.mutable_spec()->add_files();
  f->set_path(path);
  f->set_content(content);
  f->set_mode(mode);
}

ContainerPolicy Policy(ContainerPolicyOptions o = {}) {
  auto p = ContainerPolicy::Create(o);
  EXPECT_TRUE(p.ok()) << p.status();
  return *p;
}

TEST(ScratchPolicyTest, WithoutFilesOrArtifactsNothingChanges) {
  auto plan = Policy().Plan(Request());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->scratch_volume.empty());
  EXPECT_FALSE(plan->create_body["HostConfig"].contains("Binds"));
  EXPECT_FALSE(plan->create_body.contains("WorkingDir"));
  EXPECT_EQ(plan->max_artifact_bytes, 16 * kMiB);
}

TEST(ScratchPolicyTest, FilesPlanAVolumeBoundAtTheWorkingDir) {
  crucible::v1::RunRequest req = Request();
  AddFile(req, "in/data.txt", "hello", 0600);
  req.mutable_spec()->add_artifacts("out/*.json");
  req.mutable_spec()->mutable_resources()->set_scratch_bytes(1000);
  auto plan = Policy().Plan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->scratch_volume, "crucible-lease-1");
  EXPECT_EQ(plan->scratch_dir, "/work");
  EXPECT_EQ(plan->resources.scratch_bytes(), 1000);
  EXPECT_EQ(plan->scratch_volume_body, json::parse(R"({
    "Name": "crucible-lease-1", "Driver": "local",
    "DriverOpts": {"type": "tmpfs", "device": "tmpfs",
      "o": "nosuid,nodev,noexec,mode=1777,nr_blocks=1,nr_inodes=16384"}})"));
  EXPECT_EQ(plan->create_body["WorkingDir"], "/work");
  EXPECT_EQ(
      plan->create_body["HostConfig"]["Binds"],
      json::parse(R"(["crucible-lease-1:/work:rw,noexec,nosuid,nodev"])"));
  EXPECT_EQ(
      *ParseScratchTmpfsOptions(
          plan->scratch_volume_body["DriverOpts"]["o"].get<std::string>()),
      4096);

  req.mutable_spec()->set_working_dir("/home/task");
  req.mutable_spec()->mutable_resources()->clear_scratch_bytes();
  plan = Policy().Plan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->resources.scratch_bytes(), 64 * kMiB);
  EXPECT_EQ(plan->create_body["HostConfig"]["Binds"][0],
            "crucible-lease-1:/home/task:rw,noexec,nosuid,nodev");
}

TEST(ScratchPolicyTest, PathTricksAreRefused) {
  for (const std::string& path : std::vector<std::string>{
           "", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a/.", "a/",
           std::string("a\0b", 3), std::string(300, 'a')}) {
    crucible::v1::RunRequest req = Request();
    AddFile(req, path, "x");
    EXPECT_EQ(Policy().Plan(req).status().code(),
              absl::StatusCode::kInvalidArgument)
        << path;
    req = Request();
    req.mutable_spec()->add_artifacts(path);
    EXPECT_EQ(Policy().Plan(req).status().code(),
              absl::StatusCode::kInvalidArgument)
        << path;
  }
  for (const std::string& dir :
       {"/", "/proc", "/proc/self", "/dev", "/sys/x", "/tmp", "/run/a",
        "/a/../b", "/a//b", "/a/", "/a b"}) {
    crucible::v1::RunRequest req = Request();
    req.mutable_spec()->add_artifacts("out");
    req.mutable_spec()->set_working_dir(dir);
    EXPECT_EQ(Policy().Plan(req).status().code(),
              absl::StatusCode::kInvalidArgument)
        << dir;
  }
}

TEST(ScratchPolicyTest, ModesCountsAndSizesAreBounded) {
  crucible::v1::RunRequest req = Request();
  AddFile(req, "a", "x", 04755);
  EXPECT_EQ(Policy().Plan(req).status().code(),
            absl::StatusCode::kInvalidArgument);
  req = Request();
  AddFile(req, "a", "x");
  AddFile(req, "a", "y");
  EXPECT_EQ(Policy().Plan(req).status().code(),
            absl::StatusCode::kInvalidArgument);
  req = Request();
  AddFile(req, "a", "x");
  AddFile(req, "a/b", "y");
  EXPECT_EQ(Policy().Plan(req).status().code(),
            absl::StatusCode::kInvalidArgument);

  ContainerPolicyOptions o;
  o.max_input_files = 2;
  o.max_input_bytes = 10;
  req = Request();
  AddFile(req, "a", "12345");
  AddFile(req, "b", "12345");
  EXPECT_TRUE(Policy(o).Plan(req).ok());
  AddFile(req, "c", "");
  EXPECT_EQ(Policy(o).Plan(req).status().code(),
            absl::StatusCode::kInvalidArgument);
  req = Request();
  AddFile(req, "a", "12345678901");
  EXPECT_EQ(Policy(o).Plan(req).status().code(),
            absl::StatusCode::kInvalidArgument);
  req = Request();
  AddFile(req, "a", "12345");
  req.mutable_spec()->mutable_resources()->set_scratch_bytes(4);
  EXPECT_EQ(Policy(o).Plan(req).status().code(),
            absl::StatusCode::kInvalidArgument);
  req.mutable_spec()->mutable_resources()->set_scratch_bytes(2 * kGiB);
  EXPECT_EQ(Policy(o).Plan(req).status().code(),
            absl::StatusCode::kInvalidArgument);
  req = Request();
  req.mutable_spec()->set_max_artifact_bytes(257 * kMiB);
  EXPECT_EQ(Policy().Plan(req).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ScratchPolicyTest, PolicyKeysAndDescribe) {
  ContainerPolicyOptions o;
  ASSERT_TRUE(ApplyPolicyJson(R"({
    "scratch_bytes": {"default": 1000, "max": 2000},
    "max_artifact_bytes": {"default": 3000, "max": 4000},
    "max_input_files": 5, "max_input_bytes": 6})",
                              o)
                  .ok());
  EXPECT_EQ(o.default_scratch_bytes, 1000);
  EXPECT_EQ(o.max_scratch_bytes, 2000);
  EXPECT_EQ(o.default_max_artifact_bytes, 3000);
  EXPECT_EQ(o.max_max_artifact_bytes, 4000);
  crucible::v1::ExecutorAccepts a = Policy(o).Accepts();
  EXPECT_EQ(a.max_input_files(), 5);
  EXPECT_EQ(a.max_input_bytes(), 6);
  EXPECT_EQ(a.max_scratch_bytes(), 2000);
  EXPECT_EQ(a.max_artifact_bytes(), 4000);
  o.max_input_files = 0;
  EXPECT_FALSE(ContainerPolicy::Create(o).ok());
  EXPECT_FALSE(ApplyPolicyJson(R"({"max_input_files": "5"})", o).ok());
}

TEST(ScratchPolicyTest, OnlyThePolicysTmpfsOptionsParse) {
  EXPECT_EQ(*ParseScratchTmpfsOptions(ScratchTmpfsOptions(64 * kMiB)),
            64 * kMiB);
  for (const char* o :
       {"", "nosuid,nodev,noexec,mode=1777,nr_blocks=0,nr_inodes=16384",
        "nosuid,nodev,noexec,mode=1777,nr_blocks=01,nr_inodes=16384",
        "nosuid,nodev,noexec,mode=1777,nr_blocks=1,nr_inodes=16385",
        "nosuid,nodev,mode=1777,nr_blocks=1,nr_inodes=16384",
        "nosuid,nodev,noexec,mode=1777,nr_blocks=1,nr_inodes=16384,uid=0",
        "nosuid,nodev,noexec,mode=1777,nr_blocks=1 ,nr_inodes=16384",
        "size=1g,nosuid,nodev,noexec,mode=1777,nr_blocks=1,nr_inodes=16384"}) {
    EXPECT_FALSE(ParseScratchTmpfsOptions(o).ok()) << o;
  }
}

}  // namespace
}  // namespace policy
