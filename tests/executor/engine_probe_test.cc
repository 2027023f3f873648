// The engine probe's refusal logic (executor/engine_probe.h) on the
// in-process fake engine: an engine that keeps and enforces the limits
// passes; one that drops a limit (in its HostConfig or in the cgroup the
// container gets), or gives no user namespace when the policy asks for one,
// is refused with FAILED_PRECONDITION; an unreachable one is UNAVAILABLE
// (tried again). The probe container is removed on every path, and its
// create body is one the engine guard admits.
#include "executor/engine_probe.h"

#include <string>

#include "absl/status/status.h"
#include "common/clock.h"
#include "executor/guard/create_guard.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_engine.h"

namespace executor {
namespace {

using ::testing::HasSubstr;
using testing_util::FakeEngine;

constexpr char kImage[] = "localhost/crucible/busybox:latest";
// What the probe script prints in a container that got every limit and a
// user namespace.
constexpr char kEnforced[] =
    "memory 6291456\npids 16\nuid_map 0 2147483647 65536\n";

policy::ContainerPolicy Policy(std::string userns = "auto") {
  policy::ContainerPolicyOptions o;
  o.executor_id = "probe-test";
  o.userns = std::move(userns);
  auto p = policy::ContainerPolicy::Create(o);
  EXPECT_TRUE(p.ok()) << p.status();
  return *p;
}

class EngineProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_.AddImage(kImage);
    Script(kEnforced);
  }
  void Script(std::string out, int64_t exit_code = 0) {
    FakeEngine::Script s;
    s.stdout_data = std::move(out);
    s.exit_code = exit_code;
    engine_.SetScript(s);
  }
  absl::StatusOr<LimitsProbeReport> Probe(const policy::ContainerPolicy& p) {
    LimitsProbeOptions o;
    o.image = kImage;
    o.run_id = "probe-1";
    return ProbeEngineLimits(engine_, p, common::Clock::Real(), o);
  }

  FakeEngine engine_;
};

TEST_F(EngineProbeTest, AnEngineThatEnforcesEveryLimitPasses) {
  auto report = Probe(Policy());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->memory_bytes, 6 * policy::kMiB);
  EXPECT_EQ(report->pids_limit, 16);
  EXPECT_EQ(report->uid_map, "0 2147483647 65536");
  EXPECT_TRUE(engine_.containers().empty());
  EXPECT_EQ(engine_.CallCount(FakeEngine::Op::kStart), 1);
}

TEST_F(EngineProbeTest, ALimitTheEngineDropsFromTheContainerIsRefused) {
  for (const char* key : {"Memory", "MemorySwap", "PidsLimit", "NanoCpus"}) {
    engine_.SetDroppedLimits({key});
    auto report = Probe(Policy());
    EXPECT_EQ(report.status().code(), absl::StatusCode::kFailedPrecondition)
        << key;
    EXPECT_THAT(report.status().message(),
                HasSubstr(absl::StrCat("HostConfig.", key, " is 0")));
    // Refused before the container ever ran, and removed.
    EXPECT_EQ(engine_.CallCount(FakeEngine::Op::kStart), 0) << key;
    EXPECT_TRUE(engine_.containers().empty()) << key;
  }
}

TEST_F(EngineProbeTest, ALimitTheCgroupDoesNotHaveIsRefused) {
  for (const char* out :
       {"memory max\npids 16\nuid_map 0 2147483647 65536\n",
        "memory 9223372036854771712\npids 16\nuid_map 0 1 2\n",
        "memory 6291456\npids max\nuid_map 0 2147483647 65536\n",
        "memory unknown\npids unknown\nuid_map 0 2147483647 65536\n",
        "memory 6291456\npids 32\nuid_map 0 2147483647 65536\n",
        "pids 16\nuid_map 0 2147483647 65536\n", ""}) {
    Script(out);
    auto report = Probe(Policy());
    EXPECT_EQ(report.status().code(), absl::StatusCode::kFailedPrecondition)
        << out;
    EXPECT_TRUE(engine_.containers().empty()) << out;
  }
}

TEST_F(EngineProbeTest, NoUserNamespaceIsRefusedOnlyWhenThePolicyAsksForOne) {
  Script("memory 6291456\npids 16\nuid_map 0 0 4294967295\n");
  auto report = Probe(Policy());
  EXPECT_EQ(report.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(report.status().message(), HasSubstr("user namespace"));
  EXPECT_TRUE(Probe(Policy("")).ok());
  Script("memory 6291456\npids 16\n");
  EXPECT_EQ(Probe(Policy()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(EngineProbeTest, AProbeThatCannotRunIsRefused) {
  Script(kEnforced, /*exit_code=*/1);
  EXPECT_EQ(Probe(Policy()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  FakeEngine no_image;
  LimitsProbeOptions o;
  o.image = kImage;
  auto report = ProbeEngineLimits(no_image, Policy(), common::Clock::Real(), o);
  EXPECT_EQ(report.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(report.status().message(), HasSubstr(kImage));
  // An image the policy does not allow.
  o.image = "docker.io/library/busybox";
  no_image.AddImage(o.image);
  EXPECT_EQ(ProbeEngineLimits(no_image, Policy(), common::Clock::Real(), o)
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(engine_.containers().empty());
}

TEST_F(EngineProbeTest, AnUnreachableEngineIsTriedAgainNotRefused) {
  engine_.SetUnreachable(true);
  EXPECT_EQ(Probe(Policy()).status().code(), absl::StatusCode::kUnavailable);
  engine_.SetUnreachable(false);
  engine_.FailNext(FakeEngine::Op::kStart,
                   absl::UnavailableError("proxy down"));
  EXPECT_EQ(Probe(Policy()).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(engine_.containers().empty());
  EXPECT_TRUE(Probe(Policy()).ok());
}

TEST_F(EngineProbeTest, AGuardRefusalIsPassedOn) {
  engine_.FailNext(FakeEngine::Op::kCreate,
                   absl::PermissionDeniedError("guard says no"));
  EXPECT_EQ(Probe(Policy()).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(EngineProbeTest, ALeftoverProbeContainerIsReplaced) {
  engine_.AddContainer("crucible-probe-1", {{"crucible.executor", "x"}}, true);
  ASSERT_TRUE(Probe(Policy()).ok());
  EXPECT_TRUE(engine_.containers().empty());
}

// The probe is a body the policy plans like any task's, so the engine guard
// admits it without a rule of its own: nothing else gets through for it.
TEST(EngineProbeGuardTest, TheGuardAdmitsTheProbeAsPlanned) {
  FakeEngine engine;
  engine.AddImage(kImage);
  FakeEngine::Script s;
  s.stdout_data = kEnforced;
  engine.SetScript(s);
  const policy::ContainerPolicy p = Policy();
  LimitsProbeOptions o;
  o.run_id = "probe-guard";
  ASSERT_TRUE(ProbeEngineLimits(engine, p, common::Clock::Real(), o).ok());
  const nlohmann::json body = engine.CreateBodyOf("crucible-probe-guard");
  ASSERT_TRUE(body.is_object());
  EXPECT_EQ(body["HostConfig"]["Memory"], 6 * policy::kMiB);
  EXPECT_EQ(body["HostConfig"]["PidsLimit"], 16);
  EXPECT_EQ(body["HostConfig"]["UsernsMode"], "auto:size=65536");
  guard::CreateGuard guard(p.options(), "probe-test");
  EXPECT_TRUE(guard.Check("name=crucible-probe-guard", body.dump()).ok());
}

TEST(CheckProbeOutputTest, ParsesWhatTheScriptPrints) {
  auto r = CheckProbeOutput(kEnforced, 6 * policy::kMiB, 16, true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->uid_map, "0 2147483647 65536");
  EXPECT_EQ(
      CheckProbeOutput(kEnforced, 6 * policy::kMiB, 17, true).status().code(),
      absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace executor
