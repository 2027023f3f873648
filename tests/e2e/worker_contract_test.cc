// The contract between crucible-worker and crucible-executor, with the real
// processes over gRPC and the real engine behind the real proxy, for what
// tests/worker checks against fakes only: an executor at capacity answers
// RESOURCE_EXHAUSTED and the task runs later, once; an executor whose own
// health says NOT_SERVING (its engine proxy down) gets no run until it says
// SERVING again; a task cancelled while it waits for a slot ends CANCELLED
// without a run; a lease that lapsed while the worker was away from a
// restarted server is refused when the worker names it, and the task ends
// once, under its next lease.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/chaos/fleet_stack.h"
#include "tests/e2e/worker_cluster.h"
#include "tests/testing/test_stack.h"

namespace {

using grpc::health::v1::HealthCheckResponse;
using worker_e2e::Cluster;
using worker_e2e::Ends;
using worker_e2e::In;
using worker_e2e::Task;

// Occurrences of `text` in `log`.
int Count(const std::string& log, const std::string& text) {
  int n = 0;
  for (size_t pos = log.find(text); pos != std::string::npos;
       pos = log.find(text, pos + text.size())) {
    ++n;
  }
  return n;
}

// What the executor at `address` says on grpc.health.v1 ("" for the whole
// server); UNKNOWN if it does not answer.
HealthCheckResponse::ServingStatus Health(const std::string& address) {
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(In(absl::Seconds(2)));
  HealthCheckResponse resp;
  if (!stub->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &resp).ok()) {
    return HealthCheckResponse::UNKNOWN;
  }
  return resp.status();
}

// Polls `done` every 50 ms until it holds or `timeout` passes.
template <typename Pred>
bool Eventually(Pred done, absl::Duration timeout = absl::Seconds(30)) {
  const absl::Time until = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() >= until) return false;
    absl::SleepFor(absl::Milliseconds(50));  // polling a condition
  }
  return true;
}

class WorkerContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_ = testing_util::TestStackFromEnv();
    REQUIRE_TEST_STACK(stack_);
    cluster_ = std::make_unique<Cluster>(stack_.docker_host);
  }
  void TearDown() override {
    if (HasFailure() && cluster_ != nullptr) std::cerr << cluster_->Logs();
  }

  testing_util::TestStack stack_;
  std::unique_ptr<Cluster> cluster_;
};

// The worker believes the executor has two slots (--executor_slots=2); the
// executor has one (--slots=1). The second run is refused by the executor
// itself with RESOURCE_EXHAUSTED: the worker places it again once the first
// is done, on the same lease, so both succeed at their first attempt and
// each runs once.
TEST_F(WorkerContractTest, ExecutorAtCapacityRefusesAndTheRunIsPlacedAgain) {
  Cluster& c = *cluster_;
  ASSERT_TRUE(c.StartServer({}).ok()) << c.Logs();
  absl::StatusOr<std::string> e1 = c.StartExecutor("executor-1", 1);
  ASSERT_TRUE(e1.ok()) << c.Logs();
  ASSERT_TRUE(
      c.StartWorker("worker-1", {"--executors=" + *e1, "--executor_slots=2"})
          .ok())
      << c.Logs();
  ASSERT_TRUE(c.WaitForLog("worker-1", "executor " + *e1 + " in rotation"))
      << c.Logs();

  const std::string a = c.Submit({"sh", "-c", "sleep 2; echo a"});
  const std::string b = c.Submit({"sh", "-c", "sleep 2; echo b"});
  // Worker logs at GLOG_v=1: the refusal came back from the executor.
  EXPECT_TRUE(c.WaitForLog("worker-1", "is full; placing it again"))
      << "no RESOURCE_EXHAUSTED from the executor";
  for (const auto& [id, out] : {std::pair{a, "a\n"}, std::pair{b, "b\n"}}) {
    EXPECT_EQ(Ends(c.Watch(id)), 1) << id;
    Task t = c.Get(id);
    EXPECT_EQ(t.state(), crucible::v1::TASK_STATE_SUCCEEDED) << t.DebugString();
    EXPECT_EQ(t.attempt(), 1) << "a refusal for capacity spent an attempt";
    EXPECT_EQ(c.Stdout(id), out);
  }
  // Each refusal was a Run call the executor answered: it saw two Runs
  // more than the refusals the worker logged, no more.
  const std::string executor_log = c.Log("executor-1");
  EXPECT_EQ(
      Count(executor_log, " task " + a) + Count(executor_log, " task " + b),
      2 + Count(c.Log("worker-1"), "is full; placing it again"))
      << executor_log;
}

// A task the worker holds but could not place: its executor (one slot, taken
// by a running task) refused it with RESOURCE_EXHAUSTED and the worker waits
// for a slot. Cancelled then, it ends CANCELLED ("stopped before it reached
// an executor"), exactly once, and never runs: every Run of it the executor
// saw was a refusal. The server ends a leased task only on the worker's
// report (or a lapsed lease, which the worker's heartbeats prevent), and
// neither a's slot (its 60 s timeout) nor the placement timeout (10m) comes
// free during the watch of b: only the worker's handling of the cancel can
// end it.
TEST_F(WorkerContractTest, CancelOfATaskWaitingForASlotEndsItWithoutARun) {
  Cluster& c = *cluster_;
  ASSERT_TRUE(c.StartServer({}).ok()) << c.Logs();
  absl::StatusOr<std::string> e1 = c.StartExecutor("executor-1", 1);
  ASSERT_TRUE(e1.ok()) << c.Logs();
  // A placement timeout beyond the test: only the cancel can end b.
  ASSERT_TRUE(
      c.StartWorker("worker-1", {"--executors=" + *e1, "--executor_slots=2",
                                 "--placement_timeout=10m"})
          .ok())
      << c.Logs();
  ASSERT_TRUE(c.WaitForLog("worker-1", "executor " + *e1 + " in rotation"))
      << c.Logs();

  const std::string a = c.Submit({"sleep", "300"});  // until its 60 s timeout
  const std::vector<crucible::v1::TaskState> a_states =
      c.Watch(a, crucible::v1::TASK_STATE_RUNNING);
  ASSERT_FALSE(a_states.empty()) << c.Logs();
  ASSERT_EQ(a_states.back(), crucible::v1::TASK_STATE_RUNNING) << c.Logs();
  const std::string b = c.Submit({"sh", "-c", "echo b-ran"});
  ASSERT_TRUE(c.WaitForLog("worker-1", "is full; placing it again"))
      << "no RESOURCE_EXHAUSTED from the executor\n"
      << c.Logs();
  ASSERT_TRUE(c.Cancel(b).ok());

  // Within a's 60 s: a task whose cancel the worker ignored would end only
  // when a's slot came free (and run) or never.
  EXPECT_EQ(
      Ends(c.Watch(b, crucible::v1::TASK_STATE_UNSPECIFIED, absl::Seconds(45))),
      1)
      << b;
  Task t = c.Get(b);
  EXPECT_EQ(t.state(), crucible::v1::TASK_STATE_CANCELLED) << t.DebugString();
  EXPECT_EQ(t.attempt(), 1) << t.DebugString();
  EXPECT_EQ(c.Stdout(b), "");
  EXPECT_TRUE(c.WaitForLog("worker-1", "server cancelled lease")) << c.Logs();
  // Every Run of b the executor saw it refused (a's was the only run).
  const std::string executor_log = c.Log("executor-1");
  EXPECT_EQ(Count(executor_log, " task " + b),
            Count(c.Log("worker-1"), "is full; placing it again"))
      << executor_log;
  EXPECT_EQ(c.Get(a).state(), crucible::v1::TASK_STATE_RUNNING)
      << "the running task is untouched";
  ASSERT_TRUE(c.Cancel(a).ok());
  EXPECT_EQ(Ends(c.Watch(a)), 1) << a;
}

// executor-1 reaches the engine through a proxy of the test's own; with the
// proxy stopped, its health says NOT_SERVING, the worker takes it out of
// rotation and every task runs on executor-2; with the proxy back it says
// SERVING, the worker puts it back, and it gets runs again.
TEST_F(WorkerContractTest, ExecutorOutOfRotationGetsNoRunsUntilItIsBack) {
  const char* port_env = std::getenv("CRUCIBLE_TEST_CONTRACT_PROXY_PORT");
  int proxy_port = 0;
  ASSERT_TRUE(port_env != nullptr && absl::SimpleAtoi(port_env, &proxy_port))
      << "run through ctest";
  Cluster& c = *cluster_;
  chaos::PrivateProxy proxy;
  ASSERT_TRUE(proxy.Start(c.dir(), stack_.engine_socket, proxy_port).ok());
  ASSERT_TRUE(c.StartServer({}).ok()) << c.Logs();
  absl::StatusOr<int> p1 =
      c.Start("executor-1", "executor",
              {"--docker_host=" + proxy.docker_host(), "--slots=2",
               absl::StrCat("--executor_id=executor-1-", getpid()),
               "--ping_interval=500ms", "--unhealthy_ping_interval=200ms"});
  ASSERT_TRUE(p1.ok()) << c.Logs();
  const std::string e1 = absl::StrCat("127.0.0.1:", *p1);
  absl::StatusOr<std::string> e2 = c.StartExecutor("executor-2", 2);
  ASSERT_TRUE(e2.ok()) << c.Logs();
  ASSERT_TRUE(c.StartWorker("worker-1", {"--executors=" + e1 + "," + *e2,
                                         "--executor_slots=2"})
                  .ok())
      << c.Logs();
  const std::string in_rotation = "executor " + e1 + " in rotation";
  ASSERT_TRUE(c.WaitForLog("worker-1", in_rotation)) << c.Logs();
  ASSERT_TRUE(c.WaitForLog("worker-1", "executor " + *e2 + " in rotation"))
      << c.Logs();

  ASSERT_TRUE(proxy.StopProxy().ok());
  EXPECT_TRUE(Eventually([&] {
    return Health(e1) == HealthCheckResponse::NOT_SERVING;
  })) << "the executor says SERVING with its engine unreachable";
  ASSERT_TRUE(c.WaitForLog("worker-1", "executor " + e1 + " out of rotation"))
      << c.Logs();
  std::vector<std::string> away;
  for (int i = 0; i < 3; ++i) away.push_back(c.Submit({"echo", "away"}));
  for (const std::string& id : away) {
    EXPECT_EQ(Ends(c.Watch(id)), 1) << id;
    Task t = c.Get(id);
    EXPECT_EQ(t.state(), crucible::v1::TASK_STATE_SUCCEEDED) << t.DebugString();
    EXPECT_EQ(t.attempt(), 1) << "a run was sent to the executor out of "
                                 "rotation and failed there";
    EXPECT_THAT(c.RanOn(id, {"executor-1", "executor-2"}),
                testing::ElementsAre("executor-2"));
  }

  ASSERT_TRUE(proxy.RestartProxy().ok());
  EXPECT_TRUE(Eventually([&] {
    return Health(e1) == HealthCheckResponse::SERVING;
  })) << "the executor did not say SERVING once its engine answered";
  ASSERT_TRUE(Eventually([&] {
    return Count(c.Log("worker-1"), in_rotation) == 2;
  })) << c.Logs();
  // Two overlapping runs on 2 + 2 free slots: the most-free rule puts one
  // of them on each executor, so executor-1 gets one.
  std::vector<std::string> back = {c.Submit({"sh", "-c", "sleep 2; echo 1"}),
                                   c.Submit({"sh", "-c", "sleep 2; echo 2"})};
  int on_e1 = 0;
  for (const std::string& id : back) {
    EXPECT_EQ(Ends(c.Watch(id)), 1) << id;
    EXPECT_EQ(c.Get(id).state(), crucible::v1::TASK_STATE_SUCCEEDED);
    on_e1 += c.RanOn(id, {"executor-1"}).size();
  }
  EXPECT_EQ(on_e1, 1) << "executor-1 back in rotation got no run";
}

// The worker is frozen (SIGSTOP) with a task running while the server is
// killed and restarted on the same port and database; the restarted server
// lets the lease lapse after its restart grace and queues the task again.
// Thawed, the worker reconnects and names its lease: the server refuses it
// (fenced), the worker abandons that run, and the task runs again under a
// new lease and ends once; nothing of the fenced run is stored after the
// lapse.
TEST_F(WorkerContractTest, LeaseLapsedWhileAwayIsRefusedAfterTheReconnect) {
  Cluster& c = *cluster_;
  const std::vector<std::string> server_args = {
      "--lease_ttl=2s", "--restart_lease_grace=1s", "--sweep_interval=100ms"};
  ASSERT_TRUE(c.StartServer(server_args).ok()) << c.Logs();
  const int server_port = c.port("server");
  absl::StatusOr<std::string> e1 = c.StartExecutor("executor-1", 2);
  ASSERT_TRUE(e1.ok()) << c.Logs();
  ASSERT_TRUE(c.StartWorker("worker-1", {"--executors=" + *e1}).ok())
      << c.Logs();

  const std::string id =
      c.Submit({"sh", "-c", "echo start; sleep 4; echo end"});
  ASSERT_THAT(c.Watch(id, crucible::v1::TASK_STATE_RUNNING),
              testing::Contains(crucible::v1::TASK_STATE_RUNNING));
  // Its first line stored under the live lease, before the worker freezes.
  ASSERT_TRUE(Eventually([&] { return c.Stdout(id, 1) == "start\n"; }))
      << c.Logs();
  const pid_t worker = c.process("worker-1").pid();
  ASSERT_EQ(kill(worker, SIGSTOP), 0);
  absl::Cleanup thaw = [worker] { kill(worker, SIGCONT); };
  ASSERT_TRUE(c.process("server").Stop(SIGKILL, absl::Seconds(10)).ok());
  ASSERT_TRUE(c.StartServer(server_args, server_port).ok()) << c.Logs();
  // The lease lapsed (nobody named it within the restart grace): queued.
  ASSERT_TRUE(Eventually([&] {
    return c.Get(id).state() == crucible::v1::TASK_STATE_QUEUED;
  })) << c.Get(id).DebugString();
  std::move(thaw).Invoke();

  ASSERT_TRUE(c.WaitForLog("worker-1", "server rejected a report on lease"))
      << c.Logs();
  EXPECT_EQ(Ends(c.Watch(id)), 1);
  Task t = c.Get(id);
  EXPECT_EQ(t.state(), crucible::v1::TASK_STATE_SUCCEEDED) << t.DebugString();
  EXPECT_EQ(t.attempt(), 2) << t.DebugString();
  EXPECT_EQ(c.Stdout(id), "start\nend\n");
  // What the first attempt wrote before the lapse is kept; nothing it
  // reported after (its end, or the rest of its output) was taken.
  EXPECT_EQ(c.Stdout(id, 1), "start\n");
}

}  // namespace
