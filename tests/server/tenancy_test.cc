// The tenants file and the quota book: parsing, admission (largest
// resources, queued tasks, CreateTask rate on a FakeClock), running caps,
// reloads.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/proto_time.h"
#include "gtest/gtest.h"
#include "server/tenancy/quota_book.h"
#include "server/tenancy/tenants_config.h"
#include "server/tenancy/tenants_file.h"

namespace server {
namespace {

using crucible::v1::TaskSpec;
using crucible::v1::TaskState;

constexpr TaskState kNone = crucible::v1::TASK_STATE_UNSPECIFIED;
constexpr TaskState kQueued = crucible::v1::TASK_STATE_QUEUED;
constexpr TaskState kLeased = crucible::v1::TASK_STATE_LEASED;
constexpr TaskState kRunning = crucible::v1::TASK_STATE_RUNNING;
constexpr TaskState kSucceeded = crucible::v1::TASK_STATE_SUCCEEDED;

std::shared_ptr<const TenantsConfig> Config(const std::string& json) {
  absl::StatusOr<TenantsConfig> c = ParseTenantsConfig(json);
  EXPECT_TRUE(c.ok()) << c.status();
  return std::make_shared<const TenantsConfig>(c.ok() ? *c : TenantsConfig{});
}

TEST(TenantsConfigTest, TenantsStartFromTheDefaultsAndOverrideWhatTheySet) {
  absl::StatusOr<TenantsConfig> c = ParseTenantsConfig(R"({
    // comments are allowed
    "defaults": {"weight": 2, "max_queued_tasks": 100, "max_running_tasks": 5,
                 "create_rate": {"per_second": 10, "burst": 20},
                 "max_task": {"memory_bytes": 1000, "timeout": "1h"}},
    "tenants": {
      "a": {"weight": 0.5, "max_task": {"cpu_millis": 2000}},
      "b": {"max_running_tasks": 0, "create_rate": {"per_second": 0}}
    }
  })");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->defaults.weight, 2);
  const TenantLimits& a = c->For("a");
  EXPECT_EQ(a.weight, 0.5);
  EXPECT_EQ(a.max_queued_tasks, 100);
  EXPECT_EQ(a.max_task.memory_bytes, 1000);
  EXPECT_EQ(a.max_task.cpu_millis, 2000);
  EXPECT_EQ(a.max_task.timeout, absl::Hours(1));
  const TenantLimits& b = c->For("b");
  EXPECT_EQ(b.max_running_tasks, 0);
  EXPECT_EQ(b.create_per_second, 0);
  EXPECT_EQ(b.create_burst, 20);
  EXPECT_EQ(c->For("unlisted").max_running_tasks, 5);
  EXPECT_TRUE(ParseTenantsConfig("{}").ok());
}

// The example of the operator guide parses, and means what it says.
TEST(TenantsConfigTest, TheOperatorGuidesExampleParses) {
  std::ifstream in(
      absl::StrCat(getenv("CRUCIBLE_SOURCE_DIR"), "/docs/operator-guide.md"));
  ASSERT_TRUE(in) << "CRUCIBLE_SOURCE_DIR";
  std::stringstream text;
  text << in.rdbuf();
  const std::string guide = text.str();
  const size_t section = guide.find("### The tenants file");
  ASSERT_NE(section, std::string::npos);
  const size_t begin = guide.find("```json\n", section);
  ASSERT_NE(begin, std::string::npos);
  const size_t end = guide.find("```", begin + 8);
  absl::StatusOr<TenantsConfig> c =
      ParseTenantsConfig(guide.substr(begin + 8, end - begin - 8));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->For("ci").weight, 4);
  EXPECT_EQ(c->For("ci").max_queued_tasks, 10000);  // from the defaults
  EXPECT_EQ(c->For("batch").max_queued_tasks, 0);   // lifted
  EXPECT_EQ(c->For("batch").max_task.timeout, absl::Hours(24));
  EXPECT_EQ(c->For("anyone").max_running_tasks, 50);
}

TEST(TenantsConfigTest, RefusesWhatItDoesNotKnowNamingTheKey) {
  struct Case {
    std::string json;
    std::string names;
  };
  for (const Case& c : std::vector<Case>{
           {"[]", "object"},
           {"{", "JSON"},
           {R"({"tenant": {}})", "tenant"},
           {R"({"defaults": {"max_queue": 1}})", "defaults.max_queue"},
           {R"({"defaults": {"weight": 0}})", "defaults.weight"},
           {R"({"tenants": {"a": {"max_running_tasks": -1}}})",
            "tenants.a.max_running_tasks"},
           {R"({"tenants": {"a": {"max_queued_tasks": 1.5}}})",
            "tenants.a.max_queued_tasks"},
           {R"({"tenants": {"a": {"max_task": {"timeout": 5}}}})",
            "tenants.a.max_task.timeout"},
           {R"({"tenants": {"a": {"create_rate": {"every": 1}}}})",
            "tenants.a.create_rate.every"},
           {R"({"tenants": {"": {}}})", "tenant name"},
       }) {
    absl::StatusOr<TenantsConfig> r = ParseTenantsConfig(c.json);
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(r.status().message(), c.names))
        << c.json << ": " << r.status();
  }
}

class QuotaBookTest : public ::testing::Test {
 protected:
  common::FakeClock clock_;
  QuotaBook book_{clock_};
};

TEST_F(QuotaBookTest, NoConfigAdmitsEverything) {
  TaskSpec spec;
  spec.mutable_resources()->set_memory_bytes(int64_t{1} << 40);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(book_.Admit("t", spec).ok());
    book_.Count("t", kNone, kQueued);
  }
  EXPECT_EQ(book_.queued("t"), 1000);
  EXPECT_FALSE(book_.AtRunningCap("t"));
}

TEST_F(QuotaBookTest, TaskMaximaNameTheQuotaAndItsValue) {
  book_.SetConfig(Config(R"({"tenants": {"a": {"max_task": {
      "memory_bytes": 100, "cpu_millis": 200, "pids_limit": 30,
      "tmpfs_bytes": 40, "max_output_bytes": 50, "timeout": "1m"}}}})"));
  struct Case {
    std::function<void(TaskSpec&)> ask;
    std::string quota;
  };
  for (const Case& c : std::vector<Case>{
           {[](TaskSpec& s) { s.mutable_resources()->set_memory_bytes(101); },
            "max_task.memory_bytes is 100"},
           {[](TaskSpec& s) { s.mutable_resources()->set_cpu_millis(201); },
            "max_task.cpu_millis is 200"},
           {[](TaskSpec& s) { s.mutable_resources()->set_pids_limit(31); },
            "max_task.pids_limit is 30"},
           {[](TaskSpec& s) { s.mutable_resources()->set_tmpfs_bytes(41); },
            "max_task.tmpfs_bytes is 40"},
           {[](TaskSpec& s) { s.set_max_output_bytes(51); },
            "max_task.max_output_bytes is 50"},
           {[](TaskSpec& s) {
              *s.mutable_timeout() = common::ToProtoDuration(absl::Seconds(61));
            },
            "max_task.timeout is 1m"},
       }) {
    TaskSpec spec;
    c.ask(spec);
    absl::Status s = book_.Admit("a", spec);
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << c.quota;
    EXPECT_TRUE(absl::StrContains(s.message(), c.quota)) << s;
    EXPECT_TRUE(book_.Admit("other", spec).ok());  // a's quota only
  }
  TaskSpec at_the_limit;
  at_the_limit.mutable_resources()->set_memory_bytes(100);
  *at_the_limit.mutable_timeout() = common::ToProtoDuration(absl::Minutes(1));
  EXPECT_TRUE(book_.Admit("a", at_the_limit).ok());
}

TEST_F(QuotaBookTest, QueuedTasksAtMost) {
  book_.SetConfig(Config(R"({"defaults": {"max_queued_tasks": 2}})"));
  TaskSpec spec;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(book_.Admit("a", spec).ok());
    book_.Count("a", kNone, kQueued);
  }
  absl::Status s = book_.Admit("a", spec);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(s.message(), "max_queued_tasks is 2")) << s;
  EXPECT_TRUE(book_.Admit("b", spec).ok());  // per tenant
  // One starts: room for one more.
  book_.Count("a", kQueued, kLeased);
  EXPECT_TRUE(book_.Admit("a", spec).ok());
}

TEST_F(QuotaBookTest, CreateRateIsATokenBucket) {
  book_.SetConfig(Config(
      R"({"defaults": {"create_rate": {"per_second": 2, "burst": 3}}})"));
  TaskSpec spec;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(book_.Admit("a", spec).ok()) << i;
  absl::Status s = book_.Admit("a", spec);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(s.message(), "create_rate is 2 per second"))
      << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "retry in 500ms")) << s;
  EXPECT_TRUE(book_.Admit("b", spec).ok());  // b has a bucket of its own
  clock_.Advance(absl::Milliseconds(499));
  EXPECT_FALSE(book_.Admit("a", spec).ok());  // a refusal spends nothing
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_TRUE(book_.Admit("a", spec).ok());
  EXPECT_FALSE(book_.Admit("a", spec).ok());
  // Idle for long: the bucket fills to its burst, not beyond.
  clock_.Advance(absl::Hours(1));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(book_.Admit("a", spec).ok()) << i;
  EXPECT_FALSE(book_.Admit("a", spec).ok());
}

TEST_F(QuotaBookTest, ARefusalForAnotherQuotaSpendsNoToken) {
  book_.SetConfig(Config(R"({"defaults": {"max_queued_tasks": 1,
      "create_rate": {"per_second": 1, "burst": 1}}})"));
  TaskSpec spec;
  book_.Count("a", kNone, kQueued);
  EXPECT_TRUE(
      absl::StrContains(book_.Admit("a", spec).message(), "max_queued_tasks"));
  book_.Count("a", kQueued, kLeased);
  EXPECT_TRUE(book_.Admit("a", spec).ok());  // the token was still there
}

TEST_F(QuotaBookTest, RunningCapCountsLeasedAndRunning) {
  book_.SetConfig(Config(R"({"tenants": {"a": {"max_running_tasks": 2}}})"));
  for (int i = 0; i < 3; ++i) book_.Count("a", kNone, kQueued);
  EXPECT_TRUE(book_.Count("a", kQueued, kLeased));
  EXPECT_FALSE(book_.AtRunningCap("a"));
  EXPECT_FALSE(book_.Count("a", kLeased, kRunning));  // still running
  EXPECT_TRUE(book_.Count("a", kQueued, kLeased));
  EXPECT_TRUE(book_.AtRunningCap("a"));
  EXPECT_EQ(book_.running("a"), 2);
  EXPECT_EQ(book_.queued("a"), 1);
  EXPECT_TRUE(book_.Count("a", kRunning, kSucceeded));
  EXPECT_FALSE(book_.AtRunningCap("a"));
  EXPECT_EQ(book_.CountedTenants(), std::vector<std::string>{"a"});
  // Raised by a reload.
  book_.Count("a", kQueued, kLeased);
  EXPECT_TRUE(book_.AtRunningCap("a"));
  book_.SetConfig(Config(R"({"tenants": {"a": {"max_running_tasks": 3}}})"));
  EXPECT_FALSE(book_.AtRunningCap("a"));
  EXPECT_EQ(book_.running("a"), 2);  // counts survive a reload
}

TEST_F(QuotaBookTest, AReloadKeepsTheBucketUpToItsNewBurst) {
  book_.SetConfig(Config(
      R"({"defaults": {"create_rate": {"per_second": 1, "burst": 5}}})"));
  TaskSpec spec;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(book_.Admit("a", spec).ok());
  // 2 tokens left; the new burst is 1: one left.
  book_.SetConfig(Config(
      R"({"defaults": {"create_rate": {"per_second": 1, "burst": 1}}})"));
  EXPECT_TRUE(book_.Admit("a", spec).ok());
  EXPECT_FALSE(book_.Admit("a", spec).ok());
  // No rate at all: admitted.
  book_.SetConfig(nullptr);
  EXPECT_TRUE(book_.Admit("a", spec).ok());
}

class TenantsFileTest : public ::testing::Test {
 protected:
  void Write(const std::string& text) {
    std::ofstream(path_, std::ios::trunc) << text;
  }
  std::string path_ = absl::StrCat(
      ::testing::TempDir(), "/tenants-",
      ::testing::UnitTest::GetInstance()->current_test_info()->name(), ".json");
};

TEST_F(TenantsFileTest, OpenRefusesAMissingOrBadFile) {
  std::filesystem::remove(path_);
  EXPECT_EQ(TenantsFile::Open(path_).status().code(),
            absl::StatusCode::kNotFound);
  Write(R"({"defaults": {"weight": -1}})");
  absl::Status s = TenantsFile::Open(path_).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), path_)) << s;
}

TEST_F(TenantsFileTest, AChangedFileIsReloadedABadOneKeepsTheOld) {
  Write(R"({"defaults": {"max_queued_tasks": 1}})");
  absl::StatusOr<std::unique_ptr<TenantsFile>> file = TenantsFile::Open(path_);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->current()->defaults.max_queued_tasks, 1);
  EXPECT_EQ((*file)->ReloadIfChanged(), nullptr);  // unchanged

  Write(R"({"defaults": {"max_queued_tasks": 2}})");
  std::shared_ptr<const TenantsConfig> changed = (*file)->ReloadIfChanged();
  ASSERT_NE(changed, nullptr);
  EXPECT_EQ(changed->defaults.max_queued_tasks, 2);
  EXPECT_EQ((*file)->current(), changed);

  Write(R"({"defaults": {"max_queued_tasks": "three"}})");
  EXPECT_EQ((*file)->ReloadIfChanged(), nullptr);
  EXPECT_EQ((*file)->current()->defaults.max_queued_tasks, 2);
  std::filesystem::remove(path_);
  EXPECT_EQ((*file)->ReloadIfChanged(), nullptr);
  EXPECT_EQ((*file)->current()->defaults.max_queued_tasks, 2);

  Write(R"({"defaults": {"max_queued_tasks": 3}})");
  ASSERT_NE((*file)->ReloadIfChanged(), nullptr);
  EXPECT_EQ((*file)->current()->defaults.max_queued_tasks, 3);
}

}  // namespace
}  // namespace server
