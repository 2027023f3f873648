#include "executor/policy/container_policy.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "common/proto_time.h"
#include "executor/policy/policy_file.h"
#include "gtest/gtest.h"

namespace policy {
namespace {

using nlohmann::json;

crucible::v1::RunRequest Request() {
  crucible::v1::RunRequest r;
  r.set_run_id("lease-1");
  r.set_task_id("task-1");
  r.set_attempt(2);
  r.mutable_spec()->set_image("localhost/crucible/busybox:latest");
  r.mutable_spec()->add_command("echo");
  r.mutable_spec()->add_command("hello");
  return r;
}

ContainerPolicy Policy(ContainerPolicyOptions o = {}) {
  o.executor_id = "ex-1";
  auto p = ContainerPolicy::Create(o);
  EXPECT_TRUE(p.ok()) << p.status();
  return *p;
}

TEST(ContainerPolicyTest, DefaultsProduceExactlyTheHardenedBody) {
  crucible::v1::RunRequest req = Request();
  (*req.mutable_spec()->mutable_env())["B"] = "2";
  (*req.mutable_spec()->mutable_env())["A"] = "1=x";
  req.mutable_spec()->set_working_dir("/tmp");
  auto plan = Policy().Plan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  json want = json::parse(R"({
    "Image": "localhost/crucible/busybox:latest",
    "Cmd": ["echo", "hello"],
    "Env": ["A=1=x", "B=2"],
    "WorkingDir": "/tmp",
    "User": "65534:65534",
    "Labels": {"crucible.task": "task-1", "crucible.attempt": "2",
               "crucible.run": "lease-1", "crucible.executor": "ex-1"},
    "Tty": false, "OpenStdin": false, "AttachStdin": false,
    "AttachStdout": false, "AttachStderr": false, "NetworkDisabled": true,
    "HostConfig": {
      "Privileged": false,
      "CapDrop": ["ALL"],
      "ReadonlyRootfs": true,
      "SecurityOpt": ["no-new-privileges"],
      "NetworkMode": "none",
      "Memory": 268435456,
      "MemorySwap": 268435456,
      "PidsLimit": 256,
      "NanoCpus": 1000000000,
      "Tmpfs": {"/tmp": "rw,noexec,nosuid,nodev,mode=1777,size=67108864,U,notmpcopyup",
                "/run": "ro,noexec,nosuid,nodev,size=4096",
                "/var/tmp": "ro,noexec,nosuid,nodev,size=4096",
                "/dev/shm": "ro,noexec,nosuid,nodev,size=4096",
                "/dev/mqueue": "ro,noexec,nosuid,nodev,size=4096"},
      "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 1024},
                  {"Name": "nproc", "Soft": 1024, "Hard": 1024}],
      "RestartPolicy": {"Name": "no"},
      "AutoRemove": false,
      "UsernsMode": "auto:size=65536"
    }
  })");
  EXPECT_EQ(plan->create_body, want) << plan->create_body.dump(2);
  EXPECT_EQ(plan->timeout, absl::Minutes(10));
  EXPECT_EQ(plan->max_output_bytes, 16 * kMiB);
  // Nothing that reaches the host.
  for (const char* key : {"Binds", "Mounts", "Devices", "PidMode", "IpcMode",
                          "CapAdd", "VolumesFrom"}) {
    EXPECT_FALSE(plan->create_body["HostConfig"].contains(key)) << key;
  }
}

TEST(ContainerPolicyTest, RequestedLimitsAreUsed) {
  crucible::v1::RunRequest req = Request();
  auto* r = req.mutable_spec()->mutable_resources();
  r->set_memory_bytes(64 * kMiB);
  r->set_cpu_millis(500);
  r->set_pids_limit(32);
  r->set_tmpfs_bytes(8 * kMiB);
  *req.mutable_spec()->mutable_timeout() =
      common::ToProtoDuration(absl::Seconds(3));
  req.mutable_spec()->set_max_output_bytes(100);
  req.mutable_spec()->clear_command();
  auto plan = Policy().Plan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const json& h = plan->create_body["HostConfig"];
  EXPECT_EQ(h["Memory"], 64 * kMiB);
  EXPECT_EQ(h["MemorySwap"], 64 * kMiB);
  EXPECT_EQ(h["NanoCpus"], 500'000'000);
  EXPECT_EQ(h["PidsLimit"], 32);
  EXPECT_EQ(h["Tmpfs"]["/tmp"],
            "rw,noexec,nosuid,nodev,mode=1777,size=8388608,U,notmpcopyup");
  EXPECT_FALSE(plan->create_body.contains("Cmd"));  // image default
  EXPECT_FALSE(plan->create_body.contains("WorkingDir"));
  EXPECT_EQ(plan->timeout, absl::Seconds(3));
  EXPECT_EQ(plan->max_output_bytes, 100);
}

TEST(ContainerPolicyTest, RelativeWorkingDirIsInvalid) {
  for (const char* dir : {"relative/dir", "./x", "~/x"}) {
    crucible::v1::RunRequest req = Request();
    req.mutable_spec()->set_working_dir(dir);
    auto plan = Policy().Plan(req);
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument) << dir;
    EXPECT_TRUE(absl::StrContains(plan.status().message(), "working_dir"))
        << dir;
  }
}

TEST(ContainerPolicyTest, DisallowedImageIsPermissionDeniedNamingImageAndRule) {
  crucible::v1::RunRequest req = Request();
  req.mutable_spec()->set_image("docker.io/library/busybox:latest");
  auto plan = Policy().Plan(req);
  ASSERT_EQ(plan.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(
      absl::StrContains(plan.status().message(), "docker.io/library/busybox"));
  EXPECT_TRUE(
      absl::StrContains(plan.status().message(), "localhost/crucible/"));
}

TEST(ContainerPolicyTest, PrefixTricksAreRefused) {
  for (const char* image :
       {"localhost/crucible/../evil:1", "localhost/crucible",
        "LOCALHOST/crucible/x", "localhost/crucible/x y",
        "localhost/crucible/x?a=b"}) {
    crucible::v1::RunRequest req = Request();
    req.mutable_spec()->set_image(image);
    auto plan = Policy().Plan(req);
    EXPECT_FALSE(plan.ok()) << image;
  }
}

TEST(ContainerPolicyTest,
     LimitsAboveMaximaAreInvalidArgumentNamingFieldAndMax) {
  struct Case {
    void (*set)(crucible::v1::TaskSpec&);
    const char* field;
    const char* max;
  };
  const Case cases[] = {
      {[](crucible::v1::TaskSpec& s) {
         s.mutable_resources()->set_memory_bytes(5 * kGiB);
       },
       "memory_bytes", "4294967296"},
      {[](crucible::v1::TaskSpec& s) {
         s.mutable_resources()->set_cpu_millis(4001);
       },
       "cpu_millis", "4000"},
      {[](crucible::v1::TaskSpec& s) {
         s.mutable_resources()->set_pids_limit(5000);
       },
       "pids_limit", "4096"},
      {[](crucible::v1::TaskSpec& s) {
         s.mutable_resources()->set_tmpfs_bytes(2 * kGiB);
       },
       "tmpfs_bytes", "1073741824"},
      {[](crucible::v1::TaskSpec& s) { s.set_max_output_bytes(257 * kMiB); },
       "max_output_bytes", "268435456"},
      {[](crucible::v1::TaskSpec& s) {
         *s.mutable_timeout() = common::ToProtoDuration(absl::Hours(25));
       },
       "timeout", "24h"},
  };
  for (const Case& c : cases) {
    crucible::v1::RunRequest req = Request();
    c.set(*req.mutable_spec());
    auto plan = Policy().Plan(req);
    ASSERT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument)
        << c.field;
    EXPECT_TRUE(absl::StrContains(plan.status().message(), c.field))
        << plan.status();
    EXPECT_TRUE(absl::StrContains(plan.status().message(), c.max))
        << plan.status();
  }
}

TEST(ContainerPolicyTest, NegativeAndMalformedInputsAreInvalidArgument) {
  crucible::v1::RunRequest req = Request();
  req.mutable_spec()->mutable_resources()->set_memory_bytes(-1);
  EXPECT_EQ(Policy().Plan(req).status().code(),
            absl::StatusCode::kInvalidArgument);
  req = Request();
  (*req.mutable_spec()->mutable_env())["A=B"] = "x";
  EXPECT_EQ(Policy().Plan(req).status().code(),
            absl::StatusCode::kInvalidArgument);
  req = Request();
  req.clear_run_id();
  EXPECT_EQ(Policy().Plan(req).status().code(),
            absl::StatusCode::kInvalidArgument);
  req = Request();
  req.mutable_spec()->clear_image();
  EXPECT_EQ(Policy().Plan(req).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ContainerPolicyTest, ThePlanCarriesTheContainerNameOfTheRun) {
  EXPECT_EQ(ContainerName("0123456789abcdef0123456789abcdef"),
            "crucible-0123456789abcdef0123456789abcdef");
  crucible::v1::RunRequest req = Request();
  req.set_run_id("0123456789abcdef0123456789abcdef");
  auto plan = Policy().Plan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->name, "crucible-0123456789abcdef0123456789abcdef");
  EXPECT_TRUE(absl::StartsWith(plan->name, kContainerNamePrefix));
  // The run label names the same run (the guard checks the two agree).
  EXPECT_EQ(plan->create_body["Labels"][kRunLabel],
            "0123456789abcdef0123456789abcdef");
  for (const std::string& ok :
       {std::string("a"), std::string("A.b_c-9"), std::string(64, 'f')}) {
    req.set_run_id(ok);
    plan = Policy().Plan(req);
    ASSERT_TRUE(plan.ok()) << ok << ": " << plan.status();
    EXPECT_EQ(plan->name, "crucible-" + ok);
  }
}

TEST(ContainerPolicyTest, TheTraceIdIsALabelOnlyInTheServersFormat) {
  crucible::v1::RunRequest req = Request();
  auto plan = Policy().Plan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_FALSE(plan->create_body["Labels"].contains(kTraceLabel));
  req.set_trace_id("4bf92f3577b34da6a3ce929d0e0e4736");
  plan = Policy().Plan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->create_body["Labels"][kTraceLabel],
            "4bf92f3577b34da6a3ce929d0e0e4736");
  for (const char* bad :
       {"00000000000000000000000000000000", "4BF92F3577B34DA6A3CE929D0E0E4736",
        "4bf92f3577b34da6a3ce929d0e0e473", "4bf92f3577b34da6a3ce929d0e0e4736a",
        "4bf92f3577b34da6a3ce929d0e0e473\n", "x"}) {
    req.set_trace_id(bad);
    EXPECT_EQ(Policy().Plan(req).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(ContainerPolicyTest, ARunIdThatIsNoContainerNameIsRefusedNamingTheField) {
  for (const std::string& bad :
       {std::string(65, 'f'), std::string("-x"), std::string(".x"),
        std::string("_x"), std::string("a/b"), std::string("../x"),
        std::string("a b"), std::string("a?b"), std::string("a%2e"),
        std::string("a:b"), std::string("Ã©tÃ©"), std::string("a\0b", 3)}) {
    crucible::v1::RunRequest req = Request();
    req.set_run_id(bad);
    auto plan = Policy().Plan(req);
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(absl::StrContains(plan.status().message(), "run_id"))
        << plan.status();
  }
}

TEST(ContainerPolicyTest, AnExecutorIdThatIsNoPlainLabelValueIsRefusedAtLoad) {
  for (const std::string& bad :
       {std::string(""), std::string("-x"), std::string("a b"),
        std::string("a\"]"), std::string("a=b"), std::string("a*"),
        std::string(129, 'e')}) {
    ContainerPolicyOptions o;
    o.executor_id = bad;
    auto p = ContainerPolicy::Create(o);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(absl::StrContains(p.status().message(), "executor_id"))
        << p.status();
  }
  ContainerPolicyOptions o;
  o.executor_id = "host-1.example_2-50051";
  EXPECT_TRUE(ContainerPolicy::Create(o).ok());
}

TEST(ContainerPolicyTest, WhatTheProxyWouldRefuseIsRefusedAsTheTasksError) {
  crucible::v1::RunRequest req = Request();
  (*req.mutable_spec()->mutable_env())["BIG"] =
      std::string(kMaxCreateBodyBytes, 'x');
  auto plan = Policy().Plan(req);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(plan.status().message(), "too large"))
      << plan.status();
  for (const char* folding : {"Bind\xc5\xbf", "Lin\xe2\x84\xaas"}) {
    req = Request();
    req.mutable_spec()->add_command(folding);
    EXPECT_EQ(Policy().Plan(req).status().code(),
              absl::StatusCode::kInvalidArgument)
        << folding;
  }
  // Other non-ASCII text is fine.
  req = Request();
  req.mutable_spec()->add_command("h\xc3\xa9llo \xe2\x9c\x93");
  EXPECT_TRUE(Policy().Plan(req).ok());
}

TEST(ContainerPolicyTest, StdinOpensStdinOnce) {
  crucible::v1::RunRequest req = Request();
  req.mutable_spec()->set_stdin("data");
  auto plan = Policy().Plan(req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->create_body["OpenStdin"], true);
  EXPECT_EQ(plan->create_body["StdinOnce"], true);
  EXPECT_EQ(plan->create_body["AttachStdin"], true);
  EXPECT_EQ(plan->create_body["Tty"], false);
}

TEST(ContainerPolicyTest, RootAndNonNumericUsersAreRefusedAtLoad) {
  for (const char* user : {"0:0", "0:65534", "65534:0", "root",
                           "nobody:nogroup", "65534", "", "-1:1"}) {
    ContainerPolicyOptions o;
    o.user = user;
    EXPECT_EQ(ContainerPolicy::Create(o).status().code(),
              absl::StatusCode::kInvalidArgument)
        << user;
  }
  ContainerPolicyOptions o;
  o.user = "1000:1000";
  EXPECT_TRUE(ContainerPolicy::Create(o).ok());
}

TEST(ContainerPolicyTest, BadOptionsAreRefusedAtLoad) {
  ContainerPolicyOptions o;
  o.default_memory_bytes = o.max_memory_bytes + 1;
  EXPECT_FALSE(ContainerPolicy::Create(o).ok());
  o = {};
  o.allowed_image_prefixes = {""};
  EXPECT_FALSE(ContainerPolicy::Create(o).ok());
  o = {};
  o.allowed_image_prefixes = {};
  EXPECT_FALSE(ContainerPolicy::Create(o).ok());
}

TEST(ContainerPolicyTest, ImageRulesAreExactNamesOrPrefixes) {
  ContainerPolicyOptions o;
  ParseImageRules({"localhost/crucible/", "registry.example/tools/python:3.12",
                   "ghcr.io/acme/*", "quay.io/x:"},
                  o);
  EXPECT_EQ(o.allowed_images,
            std::vector<std::string>{"registry.example/tools/python:3.12"});
  EXPECT_EQ(o.allowed_image_prefixes,
            (std::vector<std::string>{"localhost/crucible/", "ghcr.io/acme/",
                                      "quay.io/x:"}));
  ContainerPolicy p = Policy(o);
  for (const char* ok : {"localhost/crucible/busybox:latest",
                         "registry.example/tools/python:3.12",
                         "ghcr.io/acme/tool:1", "quay.io/x:2"}) {
    EXPECT_TRUE(p.ImageAllowed(ok)) << ok;
  }
  for (const char* no : {"registry.example/tools/python:3.13",
                         "registry.example/tools/python:3.12-evil",
                         "ghcr.io/acmeco/tool:1", "quay.io/xy:1"}) {
    EXPECT_FALSE(p.ImageAllowed(no)) << no;
  }
}

TEST(ContainerPolicyTest, RuntimeAndNetworkComeFromThePolicy) {
  ContainerPolicyOptions o;
  o.runtime = "runsc";
  o.network = "tasks";
  auto plan = Policy(o).Plan(Request());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->create_body["HostConfig"]["Runtime"], "runsc");
  EXPECT_EQ(plan->create_body["HostConfig"]["NetworkMode"], "tasks");
  EXPECT_EQ(plan->create_body["NetworkDisabled"], false);
  // The default: no runtime named, no network.
  plan = Policy().Plan(Request());
  ASSERT_TRUE(plan.ok());
  EXPECT_FALSE(plan->create_body["HostConfig"].contains("Runtime"));
  EXPECT_EQ(plan->create_body["HostConfig"]["NetworkMode"], "none");
  for (const char* net : {"host", "bridge", "default", "container:abc",
                          "ns:/proc/1/ns/net", ""}) {
    ContainerPolicyOptions bad;
    bad.network = net;
    EXPECT_EQ(ContainerPolicy::Create(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << net;
  }
  ContainerPolicyOptions bad;
  bad.runtime = "/usr/bin/evil --flag";
  EXPECT_EQ(ContainerPolicy::Create(bad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A user namespace per container ("auto", planned with an explicit size of
// 65536 ids: Podman 4.3 deadlocks estimating one) by default; "" (none) leaves
// the key out, as bodies were before; any other value, which could name the
// host's namespace, another container's or a hand-made mapping, is refused.
TEST(ContainerPolicyTest, EveryContainerGetsAUserNamespaceOfItsOwn) {
  auto plan = Policy().Plan(Request());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->create_body["HostConfig"]["UsernsMode"], "auto:size=65536");
  ContainerPolicyOptions none;
  none.userns = "";
  plan = Policy(none).Plan(Request());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_FALSE(plan->create_body["HostConfig"].contains("UsernsMode"));
  for (const char* mode :
       {"host", "private", "keep-id", "nomap", "auto:size=1", "auto:size=65536",
        "auto:uidmapping=0:0:1", "container:other", "ns:/proc/1/ns/user",
        "Auto", " auto", "auto "}) {
    ContainerPolicyOptions bad;
    bad.userns = mode;
    EXPECT_EQ(ContainerPolicy::Create(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << mode;
  }
}

TEST(PolicyFileTest, EveryKeyIsApplied) {
  ContainerPolicyOptions o;
  absl::Status s = ApplyPolicyJson(R"({
    // comments are allowed
    "images": ["localhost/crucible/", "registry.example/py:3"],
    "pull_images": true,
    "user": "1000:1000",
    "runtime": "runsc",
    "network": "none",
    "userns": "",
    "memory_bytes": {"default": 67108864, "max": 134217728},
    "cpu_millis": {"default": 500, "max": 2000},
    "pids_limit": {"default": 64, "max": 128},
    "tmpfs_bytes": {"default": 1048576, "max": 2097152},
    "max_output_bytes": {"default": 1024, "max": 4096},
    "timeout": {"default": "30s", "max": "5m"},
    "nofile": 256,
    "nproc": 512
  })",
                                   o);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(o.allowed_image_prefixes,
            std::vector<std::string>{"localhost/crucible/"});
  EXPECT_EQ(o.allowed_images,
            std::vector<std::string>{"registry.example/py:3"});
  EXPECT_TRUE(o.pull_images);
  EXPECT_EQ(o.user, "1000:1000");
  EXPECT_EQ(o.runtime, "runsc");
  EXPECT_EQ(o.userns, "");
  EXPECT_EQ(o.default_memory_bytes, 64 * kMiB);
  EXPECT_EQ(o.max_memory_bytes, 128 * kMiB);
  EXPECT_EQ(o.default_cpu_millis, 500);
  EXPECT_EQ(o.max_cpu_millis, 2000);
  EXPECT_EQ(o.default_pids_limit, 64);
  EXPECT_EQ(o.max_pids_limit, 128);
  EXPECT_EQ(o.default_tmpfs_bytes, 1 * kMiB);
  EXPECT_EQ(o.max_tmpfs_bytes, 2 * kMiB);
  EXPECT_EQ(o.default_max_output_bytes, 1024);
  EXPECT_EQ(o.max_max_output_bytes, 4096);
  EXPECT_EQ(o.default_timeout, absl::Seconds(30));
  EXPECT_EQ(o.max_timeout, absl::Minutes(5));
  EXPECT_EQ(o.nofile_limit, 256);
  EXPECT_EQ(o.nproc_limit, 512);
  ASSERT_TRUE(ContainerPolicy::Create(o).ok());

  // Keys the file does not name keep their value.
  ContainerPolicyOptions partial;
  ASSERT_TRUE(
      ApplyPolicyJson(R"({"pids_limit": {"max": 10000}})", partial).ok());
  EXPECT_EQ(partial.max_pids_limit, 10000);
  EXPECT_EQ(partial.default_pids_limit,
            ContainerPolicyOptions{}.default_pids_limit);
  EXPECT_EQ(partial.user, "65534:65534");
}

TEST(PolicyFileTest, MistakesAreInvalidArgumentNamingTheKey) {
  struct Case {
    const char* json;
    const char* key;
  };
  for (const Case& c : std::initializer_list<Case>{
           {R"({"memory": {"max": 1}})", "memory"},
           {R"({"memory_bytes": {"maximum": 1}})", "memory_bytes.maximum"},
           {R"({"memory_bytes": {"max": "1G"}})", "memory_bytes.max"},
           {R"({"timeout": {"max": 60}})", "timeout.max"},
           {R"({"images": "localhost/"})", "images"},
           {R"({"images": [""]})", "images"},
           {R"({"pull_images": "yes"})", "pull_images"},
           {R"({"user": 65534})", "user"},
           {R"({"userns": true})", "userns"},
           {R"([1, 2])", "object"},
           {R"({"user": )", "JSON"},
       }) {
    ContainerPolicyOptions o;
    absl::Status s = ApplyPolicyJson(c.json, o);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.json;
    EXPECT_TRUE(absl::StrContains(s.message(), c.key)) << s;
  }
  // Values are checked when the policy is built: root is refused.
  ContainerPolicyOptions o;
  ASSERT_TRUE(ApplyPolicyJson(R"({"user": "0:0"})", o).ok());
  EXPECT_EQ(ContainerPolicy::Create(o).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyPolicyFile("/nonexistent/policy.json", o).code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace policy
