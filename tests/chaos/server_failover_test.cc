// Chaos: three crucible-servers on one PostgreSQL store (one leader, two
// standbys), a worker and an executor that reach whichever leads. The
// leader is killed (SIGKILL) while tasks run and more are submitted, and
// then the next leader too, or the leader is stopped (SIGTERM): a standby takes
// the lease, rebuilds the queue from the database, the worker resumes its
// running tasks under it, and every acknowledged task ends exactly once, in its
// first attempt. The time from the kill to the first task accepted again is
// printed (bench/README.md, "Failover").
#include <sys/wait.h>

#include <csignal>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/task_state.h"
#include "gtest/gtest.h"
#include "tests/chaos/chaos_stack.h"
#include "tests/testing/postgres.h"
#include "tests/testing/test_stack.h"

namespace {

using crucible::v1::Task;
using testing_util::ChaosStack;

constexpr char kScript[] = "sleep 4; echo once";
constexpr int kRunning = 4;

class ServerFailoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_ = testing_util::TestStackFromEnv();
    REQUIRE_TEST_STACK(stack_);
    CRUCIBLE_REQUIRE_POSTGRES(uri);
    chaos_ = std::make_unique<ChaosStack>(stack_.docker_host);
    ASSERT_TRUE(chaos_->StartServers(3, uri, {"--leader_lease=2s"}).ok())
        << chaos_->Logs();
    absl::StatusOr<std::string> executor =
        chaos_->StartExecutor("executor-1", kRunning);
    ASSERT_TRUE(executor.ok()) << executor.status() << chaos_->Logs();
    ASSERT_TRUE(chaos_->StartWorker("worker-1", *executor).ok())
        << chaos_->Logs();
  }
  void TearDown() override {
    if (HasFailure() && chaos_ != nullptr) std::cerr << chaos_->Logs();
  }

  // Submits with a request id, trying again (same id) until the call
  // succeeds: every task submitted is then acknowledged, once.
  absl::StatusOr<std::string> SubmitUntilAccepted(const std::string& request) {
    absl::Status last = absl::UnknownError("not tried");
    for (absl::Time until = absl::Now() + absl::Seconds(30);
         absl::Now() < until;) {
      absl::StatusOr<std::string> id = chaos_->Submit(kScript, request);
      if (id.ok()) return id;
      last = id.status();
      absl::SleepFor(absl::Milliseconds(50));  // a standby, or no leader yet
    }
    return last;
  }

  void SubmitRunning() {
    for (int i = 0; i < kRunning; ++i) {
      absl::StatusOr<std::string> id =
          SubmitUntilAccepted(absl::StrCat("running-", i));
      ASSERT_TRUE(id.ok()) << id.status();
      ids_.push_back(*id);
    }
    for (const std::string& id : ids_) {
      ASSERT_TRUE(chaos_->AwaitTask(
          id,
          [](const Task& t) {
            return t.state() == crucible::v1::TASK_STATE_RUNNING;
          },
          absl::Seconds(30)))
          << id;
    }
  }

  // Who took over: exactly one of `standbys`.
  std::string NewLeader(const std::vector<std::string>& standbys) {
    std::string leader;
    for (absl::Time until = absl::Now() + absl::Seconds(20);
         leader.empty() && absl::Now() < until;
         absl::SleepFor(absl::Milliseconds(100))) {
      for (const std::string& name : standbys) {
        if (absl::StrContains(chaos_->Log(name),
                              "holds the leader lease (epoch")) {
          EXPECT_TRUE(leader.empty()) << "two standbys took the lease";
          leader = name;
        }
      }
    }
    return leader;
  }

  // Kills `leader` (SIGKILL) and submits `n` tasks, each tried until a
  // leader accepts it; returns who took over, of `standbys`.
  std::string KillUnderLoad(const std::string& leader, int n,
                            const std::vector<std::string>& standbys) {
    absl::StatusOr<int> status = chaos_->Stop(leader, SIGKILL);
    EXPECT_TRUE(status.ok()) << status.status();
    const absl::Time killed = absl::Now();
    for (int i = 0; i < n; ++i) {
      absl::StatusOr<std::string> id =
          SubmitUntilAccepted(absl::StrCat("after-", leader, "-", i));
      EXPECT_TRUE(id.ok()) << id.status() << chaos_->Logs();
      if (!id.ok()) return "";
      if (i == 0) {
        std::cout << "failover: first task accepted "
                  << absl::FormatDuration(absl::Now() - killed) << " after "
                  << leader << "'s kill -9 (--leader_lease=2s)\n";
      }
      ids_.push_back(*id);
    }
    return NewLeader(standbys);
  }

  void ExpectAllEndedOnce() {
    for (const std::string& id : ids_) {
      EXPECT_TRUE(chaos_->AwaitTask(
          id, [](const Task& t) { return common::IsTerminal(t.state()); },
          absl::Seconds(60)))
          << id;
    }
    EXPECT_TRUE(absl::StrContains(chaos_->Log("worker-1"), "resuming"))
        << "the worker did not name its running tasks to the new leader";
    testing_util::ExpectEachEndedOnce(*chaos_, ids_, /*attempt=*/1, "once\n");
  }

  testing_util::TestStack stack_;
  std::unique_ptr<ChaosStack> chaos_;
  std::vector<std::string> ids_;
};

// Whichever server leads is killed, twice in a row: the last one standing
// ends every task.
TEST_F(ServerFailoverTest, KillNineOfTheLeaderUnderLoadLosesNothing) {
  SubmitRunning();
  const std::string second = KillUnderLoad("ha-1", 4, {"ha-2", "ha-3"});
  ASSERT_FALSE(second.empty()) << chaos_->Logs();
  EXPECT_TRUE(absl::StrContains(chaos_->Log(second), "took back the lease"))
      << "the running tasks were not resumed under their first leases";
  const std::string third = second == "ha-2" ? "ha-3" : "ha-2";
  ASSERT_EQ(KillUnderLoad(second, 4, {third}), third) << chaos_->Logs();
  ExpectAllEndedOnce();
}

TEST_F(ServerFailoverTest, ACleanStopHandsTheLeaseOverAtOnce) {
  SubmitRunning();
  absl::StatusOr<int> status = chaos_->Stop("ha-1", SIGTERM);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << chaos_->Log("ha-1");
  EXPECT_TRUE(absl::StrContains(chaos_->Log("ha-1"), "leader lease ended"));
  const absl::Time stopped = absl::Now();
  absl::StatusOr<std::string> id = SubmitUntilAccepted("after-stop");
  ASSERT_TRUE(id.ok()) << id.status();
  std::cout << "handover: first task accepted "
            << absl::FormatDuration(absl::Now() - stopped)
            << " after the leader's clean exit\n";
  ids_.push_back(*id);
  ASSERT_FALSE(NewLeader({"ha-2", "ha-3"}).empty()) << chaos_->Logs();
  ExpectAllEndedOnce();
}

}  // namespace
