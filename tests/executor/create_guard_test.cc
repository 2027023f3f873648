// The engine guard's create decision (executor/guard/create_guard.h), pure:
// every body the executor's policy plans is admitted and forwarded as
// planned; every hostile or malformed one is refused.
#include "executor/guard/create_guard.h"

#include <fstream>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "executor/guard/describe.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/executor/create_bodies.h"
#include "tests/testing/test_stack.h"

namespace {

using testing_util::CreateRequest;
using testing_util::GuardTestPolicy;
using testing_util::HostileCreateRequests;
using testing_util::RealCreateRequests;

class CreateGuardTest : public ::testing::TestWithParam<bool> {};

TEST_P(CreateGuardTest, AdmitsEveryRealBodyAndForwardsItUnchanged) {
  const auto options = GuardTestPolicy(GetParam());
  guard::CreateGuard guard(options, "");
  const auto real =
      RealCreateRequests(options, "0123456789abcdef0123456789abcd");
  ASSERT_EQ(real.size(), 32u);
  for (const CreateRequest& r : real) {
    absl::StatusOr<guard::AdmittedCreate> a = guard.Check(r.query, r.body);
    ASSERT_TRUE(a.ok()) << r.what << ": " << a.status() << "\n" << r.body;
    EXPECT_EQ(a->body, r.body) << r.what;
    EXPECT_EQ("name=" + a->name, r.query) << r.what;
  }
}

TEST_P(CreateGuardTest, RefusesEveryHostileBody) {
  const auto options = GuardTestPolicy(GetParam());
  guard::CreateGuard guard(options, "");
  // The last real body has every optional key: command, env, working dir,
  // stdin and explicit limits.
  const CreateRequest base = RealCreateRequests(options, "run").back();
  const auto hostile = HostileCreateRequests(base);
  EXPECT_GT(hostile.size(), 300u);
  for (const CreateRequest& r : hostile) {
    absl::StatusOr<guard::AdmittedCreate> a = guard.Check(r.query, r.body);
    EXPECT_EQ(a.status().code(), absl::StatusCode::kPermissionDenied)
        << r.what << " was admitted:\n"
        << r.body.substr(0, 2000);
    if (!a.ok()) {
      // Refusals say why, but never echo much of the caller's bytes.
      EXPECT_LT(a.status().message().size(), 400u) << r.what;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(NetworkNoneAndNamed, CreateGuardTest,
                         ::testing::Bool());

TEST(CreateGuardMessages, NameTheOffendingKey) {
  const auto options = GuardTestPolicy(false);
  guard::CreateGuard guard(options, "");
  const CreateRequest base = RealCreateRequests(options, "run").back();
  nlohmann::json b = nlohmann::json::parse(base.body);
  b["HostConfig"]["Privileged"] = true;
  EXPECT_THAT(guard.Check(base.query, b.dump()).status().message(),
              ::testing::HasSubstr("HostConfig.Privileged must be false"));
  b = nlohmann::json::parse(base.body);
  b["HostConfig"]["CgroupParent"] = "..";
  EXPECT_THAT(guard.Check(base.query, b.dump()).status().message(),
              ::testing::HasSubstr("HostConfig.CgroupParent is not allowed"));
  b = nlohmann::json::parse(base.body);
  b["Image"] = "docker.io/library/alpine";
  EXPECT_THAT(guard.Check(base.query, b.dump()).status().message(),
              ::testing::HasSubstr("allowlist"));
}

TEST(CreateGuardExecutorId, OnlyTheConfiguredExecutorsLabel) {
  const auto options = GuardTestPolicy(false);  // executor_id "guard-test"
  const CreateRequest base = RealCreateRequests(options, "run").front();
  EXPECT_TRUE(guard::CreateGuard(options, "guard-test")
                  .Check(base.query, base.body)
                  .ok());
  EXPECT_EQ(guard::CreateGuard(options, "other")
                .Check(base.query, base.body)
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
}

// The guard admits exactly the UsernsMode its policy plans ("auto:size=65536"
// by default, never a plain "auto" that leaves Podman to estimate a size; none
// at all under "userns": "") and refuses every other value, type and spelling,
// and its absence.
TEST(CreateGuardUserns, AdmitsExactlyThePolicysUsernsMode) {
  const auto options = GuardTestPolicy(false);
  ASSERT_EQ(options.userns, "auto");
  guard::CreateGuard guard(options, "");
  const CreateRequest base = RealCreateRequests(options, "run").back();
  ASSERT_TRUE(guard.Check(base.query, base.body).ok());
  nlohmann::json b = nlohmann::json::parse(base.body);
  ASSERT_EQ(b["HostConfig"]["UsernsMode"], "auto:size=65536");
  for (const nlohmann::json& mode : std::initializer_list<nlohmann::json>{
           "host", "", "private", "keep-id", "nomap", "auto", "auto:size=1",
           "auto:size=65537", "auto:size=65536,uidmapping=0:0:1",
           "auto:uidmapping=0:0:4294967295", "container:other",
           "ns:/proc/1/ns/user", "AUTO", "auto ", nullptr, true, 1,
           nlohmann::json::array({"auto"})}) {
    b["HostConfig"]["UsernsMode"] = mode;
    EXPECT_EQ(guard.Check(base.query, b.dump()).status().code(),
              absl::StatusCode::kPermissionDenied)
        << mode.dump();
  }
  b["HostConfig"].erase("UsernsMode");
  EXPECT_THAT(guard.Check(base.query, b.dump()).status().message(),
              ::testing::HasSubstr("HostConfig.UsernsMode is required"));

  // A policy without user namespaces: the key is refused, "auto" included.
  auto none = options;
  none.userns = "";
  guard::CreateGuard none_guard(none, "");
  const CreateRequest plain = RealCreateRequests(none, "run").back();
  ASSERT_TRUE(none_guard.Check(plain.query, plain.body).ok());
  EXPECT_EQ(none_guard.Check(base.query, base.body).status().code(),
            absl::StatusCode::kPermissionDenied);
}

// deploy/SECURITY.md's "What the guard allows" is the generated text.
TEST(CreateGuardDocs, SecurityMdSaysWhatTheGuardAllows) {
  std::ifstream in(testing_util::SourcePath("deploy/SECURITY.md"));
  ASSERT_TRUE(in.good());
  std::stringstream doc;
  doc << in.rdbuf();
  const std::string text = doc.str();
  const std::string begin = "<!-- guard-allows:begin -->\n";
  const size_t from = text.find(begin);
  const size_t to = text.find("<!-- guard-allows:end -->");
  ASSERT_NE(from, std::string::npos);
  ASSERT_NE(to, std::string::npos);
  EXPECT_EQ(text.substr(from + begin.size(), to - from - begin.size()),
            guard::DescribeAllowedCreate(policy::ContainerPolicyOptions{}))
      << "regenerate it: build/bin/crucible-docker-guard --describe";
}

}  // namespace
