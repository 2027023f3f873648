// Chaos: crucible-server killed (SIGKILL) or stopped (SIGTERM) while tasks
// run, then started again on the same port and database. The worker keeps
// running them, reconnects and takes their leases back: no attempt is spent
// and each task ends SUCCEEDED once, under its first lease.
#include <sys/wait.h>

#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/chaos/chaos_stack.h"
#include "tests/testing/test_stack.h"

namespace {

using crucible::v1::Task;
using testing_util::ChaosStack;

constexpr int kTasks = 4;
constexpr char kScript[] = "sleep 6; echo once";

class ServerRestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_ = testing_util::TestStackFromEnv();
    REQUIRE_TEST_STACK(stack_);
    chaos_ = std::make_unique<ChaosStack>(stack_.docker_host);
    ASSERT_TRUE(chaos_->StartServer().ok()) << chaos_->Logs();
    absl::StatusOr<std::string> executor =
        chaos_->StartExecutor("executor-1", kTasks);
    ASSERT_TRUE(executor.ok()) << executor.status() << chaos_->Logs();
    ASSERT_TRUE(chaos_->StartWorker("worker-1", *executor).ok())
        << chaos_->Logs();
  }
  void TearDown() override {
    if (HasFailure() && chaos_ != nullptr) std::cerr << chaos_->Logs();
  }

  // Submits kTasks tasks and waits until all run.
  void SubmitAndAwaitRunning() {
    for (int i = 0; i < kTasks; ++i) {
      absl::StatusOr<std::string> id = chaos_->Submit(kScript);
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

  // The server is back: every task ends SUCCEEDED in its first attempt.
  void ExpectFinishedUnderTheFirstLease() {
    for (const std::string& id : ids_) {
      EXPECT_TRUE(chaos_->AwaitTask(
          id,
          [](const Task& t) {
            return t.state() != crucible::v1::TASK_STATE_QUEUED &&
                   t.state() != crucible::v1::TASK_STATE_LEASED &&
                   t.state() != crucible::v1::TASK_STATE_RUNNING;
          },
          absl::Seconds(40)))
          << id;
    }
    EXPECT_TRUE(
        absl::StrContains(chaos_->Log("worker-1"),
                          absl::StrCat("resuming ", kTasks, " running tasks")));
    EXPECT_TRUE(
        absl::StrContains(chaos_->Log("server"), "took back the lease"));
    testing_util::ExpectEachEndedOnce(*chaos_, ids_, /*attempt=*/1, "once\n");
  }

  testing_util::TestStack stack_;
  std::unique_ptr<ChaosStack> chaos_;
  std::vector<std::string> ids_;
};

TEST_F(ServerRestartTest, KillNineCostsNoAttempt) {
  SubmitAndAwaitRunning();
  if (HasFatalFailure()) return;
  absl::StatusOr<int> killed = chaos_->Stop("server", SIGKILL);
  ASSERT_TRUE(killed.ok()) << killed.status();
  ASSERT_TRUE(chaos_->RestartServer().ok()) << chaos_->Logs();
  ExpectFinishedUnderTheFirstLease();
}

TEST_F(ServerRestartTest, SigtermTellsTheWorkerAndCostsNoAttempt) {
  SubmitAndAwaitRunning();
  if (HasFatalFailure()) return;
  const absl::Time start = absl::Now();
  absl::StatusOr<int> stopped = chaos_->Stop("server", SIGTERM);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_TRUE(WIFEXITED(*stopped) && WEXITSTATUS(*stopped) == 0) << *stopped;
  // The worker half-closed at once: no wait for --shutdown_grace (10 s).
  EXPECT_LT(absl::Now() - start, absl::Seconds(8));
  EXPECT_TRUE(chaos_->WaitForLog("worker-1", "the server is going away",
                                 absl::Seconds(5)));
  EXPECT_TRUE(
      chaos_->WaitForLog("worker-1", "reconnecting in 0", absl::Seconds(5)));
  ASSERT_TRUE(chaos_->RestartServer().ok()) << chaos_->Logs();
  ExpectFinishedUnderTheFirstLease();
}

}  // namespace
