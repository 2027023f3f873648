// Chaos: a crucible-worker killed (SIGKILL) while its tasks run. The server
// sees its stream break without a goodbye and lapses its leases after
// --lost_worker_grace (5 s), far sooner than the 30 s lease TTL; the tasks
// run again on another worker and each ends SUCCEEDED once.
#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/chaos/chaos_stack.h"
#include "tests/testing/test_stack.h"

namespace {

using crucible::v1::Task;
using testing_util::ChaosStack;

constexpr int kTasks = 3;

TEST(WorkerLossTest, KillNineRequeuesItsTasksWithinSecondsNotTheLeaseTtl) {
  const testing_util::TestStack stack = testing_util::TestStackFromEnv();
  REQUIRE_TEST_STACK(stack);
  ChaosStack chaos(stack.docker_host);
  // Default lease TTL (30 s) and lost-worker grace (5 s).
  ASSERT_TRUE(chaos.StartServer().ok()) << chaos.Logs();
  absl::StatusOr<std::string> e1 = chaos.StartExecutor("executor-1", kTasks);
  absl::StatusOr<std::string> e2 = chaos.StartExecutor("executor-2", kTasks);
  ASSERT_TRUE(e1.ok() && e2.ok()) << chaos.Logs();
  ASSERT_TRUE(chaos.StartWorker("worker-1", *e1).ok()) << chaos.Logs();

  std::vector<std::string> ids;
  for (int i = 0; i < kTasks; ++i) {
    absl::StatusOr<std::string> id = chaos.Submit("sleep 3; echo once");
    ASSERT_TRUE(id.ok()) << id.status();
    ids.push_back(*id);
  }
  for (const std::string& id : ids) {
    ASSERT_TRUE(chaos.AwaitTask(
        id,
        [](const Task& t) {
          return t.state() == crucible::v1::TASK_STATE_RUNNING;
        },
        absl::Seconds(30)))
        << id << chaos.Logs();
  }
  // Only now a second worker, so that the first holds every task.
  ASSERT_TRUE(chaos.StartWorker("worker-2", *e2).ok()) << chaos.Logs();
  const absl::Time killed = absl::Now();
  ASSERT_TRUE(chaos.Stop("worker-1", SIGKILL).ok());

  for (const std::string& id : ids) {
    ASSERT_TRUE(chaos.AwaitTask(
        id, [](const Task& t) { return t.attempt() == 2; }, absl::Seconds(20)))
        << id << chaos.Logs();
  }
  const absl::Duration requeued = absl::Now() - killed;
  // Grace (5 s) + sweep (1 s) + backoff (1 s +-20%), with room for a busy
  // machine; the lease TTL alone would be 30 s.
  EXPECT_LT(requeued, absl::Seconds(12));
  std::cerr << "requeued " << requeued << " after the kill\n";
  EXPECT_TRUE(absl::StrContains(chaos.Log("server"), "worker worker-1 lost"));

  for (const std::string& id : ids) {
    EXPECT_TRUE(chaos.AwaitTask(
        id,
        [](const Task& t) {
          return t.state() == crucible::v1::TASK_STATE_SUCCEEDED;
        },
        absl::Seconds(30)))
        << id;
    absl::StatusOr<Task> t = chaos.Get(id);
    ASSERT_TRUE(t.ok());
    EXPECT_TRUE(absl::StrContains(t->last_error(), "worker worker-1 lost"))
        << t->last_error();
  }
  testing_util::ExpectEachEndedOnce(chaos, ids, /*attempt=*/2, "once\n");
  if (HasFailure()) std::cerr << chaos.Logs();
}

}  // namespace
