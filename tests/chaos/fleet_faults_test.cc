// Faults of the executor fleet (issue 16): a docker-proxy outage while tasks
// run and wait, and a kill -9 of an executor mid-task followed by its
// restart on the same address. Real crucible-server, worker and executor
// processes, a real proxy and the shared test engine. Each scenario ends
// with every task SUCCEEDED, ended exactly once, and no container of the
// test's executor left on the engine.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/chaos/fleet_stack.h"
#include "tests/testing/process.h"
#include "tests/testing/test_stack.h"

namespace chaos {
namespace {

using crucible::v1::Task;

// Polls GetTask until `id` is RUNNING (true) or `timeout` passes.
bool AwaitRunning(crucible::v1::TaskService::Stub& tasks, const std::string& id,
                  absl::Duration timeout) {
  for (absl::Time until = absl::Now() + timeout; absl::Now() < until;) {
    crucible::v1::GetTaskRequest request;
    request.set_task_id(id);
    crucible::v1::GetTaskResponse response;
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    if (tasks.GetTask(&ctx, request, &response).ok() &&
        response.task().state() == crucible::v1::TASK_STATE_RUNNING) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return false;
}

// Waits up to `timeout` for the engine to hold no container of executor
// `id`; what is left.
std::vector<std::string> AwaitNoContainers(const std::string& engine_socket,
                                           const std::string& id,
                                           absl::Duration timeout) {
  std::vector<std::string> left = {"(not listed)"};
  for (absl::Time until = absl::Now() + timeout; absl::Now() < until;) {
    auto listed = ContainersOf(engine_socket, id);
    if (listed.ok()) {
      left = *listed;
      if (left.empty()) return left;
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  return left;
}

void ExpectEachSucceededOnce(const std::vector<Task>& tasks,
                             TerminalCounter& counter) {
  for (const Task& t : tasks) {
    EXPECT_EQ(t.state(), crucible::v1::TASK_STATE_SUCCEEDED)
        << t.id() << " " << crucible::v1::TaskState_Name(t.state())
        << " attempt " << t.attempt() << ": " << t.result().error_message()
        << " / " << t.last_error();
  }
  // The watches see the terminal event a moment after GetTask does.
  std::map<std::string, int> counts;
  for (absl::Time until = absl::Now() + absl::Seconds(5);
       absl::Now() < until;) {
    counts = counter.Counts();
    bool all = true;
    for (const auto& [id, n] : counts) all = all && n >= 1;
    if (all) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  for (const auto& [id, n] : counts)
    EXPECT_EQ(n, 1) << "terminal events of " << id;
}

class FleetFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_ = testing_util::TestStackFromEnv();
    REQUIRE_TEST_STACK(stack_);
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << fleet_.Logs();
  }
  testing_util::TestStack stack_;
  FleetStack fleet_;
};

// The proxy between executor and engine goes away for 10 s while 4 tasks
// run and 4 wait: the runs in flight end UNAVAILABLE (infrastructure), the
// executor says NOT_SERVING at once so the worker stops placing runs on it,
// and once the proxy is back every task runs to SUCCEEDED; the containers
// the lost runs left are reaped as soon as the engine answers again.
TEST_F(FleetFaultsTest, ProxyOutageFailsNoTask) {
  const char* port_env = std::getenv("CRUCIBLE_TEST_FLEET_PROXY_PORT");
  int port = 0;
  ASSERT_TRUE(port_env != nullptr && absl::SimpleAtoi(port_env, &port))
      << "run through ctest";
  PrivateProxy proxy;
  const std::string dir = testing_util::MakeTempDir("fleet-proxy");
  ASSERT_TRUE(proxy.Start(dir, stack_.engine_socket, port).ok());
  ASSERT_TRUE(fleet_.Start(proxy.docker_host(), {"--slots=4"}).ok())
      << fleet_.Logs();
  const std::string executor_id = ReadExecutorId(fleet_.executor_id_file());
  ASSERT_FALSE(executor_id.empty());

  TerminalCounter counter(fleet_.server_address());
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i) {
    auto id = Submit(fleet_.tasks(), "sleep 3; echo ok", absl::Seconds(60));
    ASSERT_TRUE(id.ok()) << id.status();
    counter.Watch(*id);
    ids.push_back(*id);
  }
  ASSERT_TRUE(AwaitRunning(fleet_.tasks(), ids[0], absl::Seconds(30)))
      << fleet_.Logs();

  // What the executor process itself answers on grpc.health.v1 (the
  // worker's view of it), polled through the outage and after.
  auto health = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
      fleet_.executor_address(), grpc::InsecureChannelCredentials()));
  auto serving = [&] {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(2));
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status s = health->Check(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.status();
  };
  auto await = [&](grpc::health::v1::HealthCheckResponse::ServingStatus want,
                   absl::Duration within) {
    const absl::Time until = absl::Now() + within;
    while (serving() != want && absl::Now() < until) {
      absl::SleepFor(absl::Milliseconds(100));
    }
    return serving() == want;
  };
  ASSERT_EQ(serving(), grpc::health::v1::HealthCheckResponse::SERVING);

  const absl::Time outage = absl::Now();
  ASSERT_TRUE(proxy.StopProxy().ok());
  // Runs in flight fail at once; the next engine call, or the first ping
  // (--unhealthy_ping_interval 1s), says the engine is gone.
  EXPECT_TRUE(await(grpc::health::v1::HealthCheckResponse::NOT_SERVING,
                    absl::Seconds(8)))
      << "the executor kept saying SERVING with its engine unreachable";
  absl::SleepFor(absl::Seconds(10) - (absl::Now() - outage));  // the outage
  ASSERT_TRUE(proxy.RestartProxy().ok());
  EXPECT_TRUE(
      await(grpc::health::v1::HealthCheckResponse::SERVING, absl::Seconds(15)))
      << "the executor did not say SERVING again once its engine answered";

  const std::vector<Task> ended =
      AwaitTerminal(fleet_.tasks(), ids, absl::Seconds(40));
  ExpectEachSucceededOnce(ended, counter);
  std::cerr << "all ended " << absl::FormatDuration(absl::Now() - outage)
            << " after the outage began\n";
  EXPECT_TRUE(absl::StrContains(fleet_.executor_log(), "NOT_SERVING"));
  EXPECT_EQ(
      AwaitNoContainers(stack_.engine_socket, executor_id, absl::Seconds(15)),
      std::vector<std::string>{});
}

// kill -9 of the executor while a task runs, then a restart on the same
// address: the restarted executor has the same id (kept in its
// --executor_id_file), so its start-up reaper removes the container its
// predecessor left; the task is retried and succeeds, once.
TEST_F(FleetFaultsTest, KilledExecutorRestartedReapsItsOrphan) {
  ASSERT_TRUE(fleet_.Start(stack_.docker_host, {"--slots=2"}).ok())
      << fleet_.Logs();
  const std::string executor_id = ReadExecutorId(fleet_.executor_id_file());
  ASSERT_FALSE(executor_id.empty());

  TerminalCounter counter(fleet_.server_address());
  auto id = Submit(fleet_.tasks(), "sleep 5; echo ok", absl::Seconds(60));
  ASSERT_TRUE(id.ok()) << id.status();
  counter.Watch(*id);
  ASSERT_TRUE(AwaitRunning(fleet_.tasks(), *id, absl::Seconds(30)))
      << fleet_.Logs();
  auto before = ContainersOf(stack_.engine_socket, executor_id);
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_EQ(before->size(), 1u);
  const std::string orphan = (*before)[0];

  ASSERT_TRUE(fleet_.KillExecutor().ok());
  auto left = ContainersOf(stack_.engine_socket, executor_id);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(*left, std::vector<std::string>{orphan});  // still there, running
  const absl::Time restart = absl::Now();
  ASSERT_TRUE(fleet_.RestartExecutor().ok()) << fleet_.Logs();
  EXPECT_EQ(ReadExecutorId(fleet_.executor_id_file()), executor_id);

  // The orphan goes at once (the reaper's first round), long before the
  // task's own sleep would have ended it.
  bool reaped = false;
  for (absl::Time until = absl::Now() + absl::Seconds(10);
       !reaped && absl::Now() < until;) {
    auto now = ContainersOf(stack_.engine_socket, executor_id);
    reaped =
        now.ok() && std::find(now->begin(), now->end(), orphan) == now->end();
    if (!reaped) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(reaped) << orphan << " still on the engine";
  std::cerr << "orphan reaped " << absl::FormatDuration(absl::Now() - restart)
            << " after the restart\n";

  const std::vector<Task> ended =
      AwaitTerminal(fleet_.tasks(), {*id}, absl::Seconds(40));
  ExpectEachSucceededOnce(ended, counter);
  // Read after the retry ended, seconds later: the reaper logs its round
  // once the removal returned, which can come after the engine shows the
  // container gone.
  EXPECT_TRUE(
      absl::StrContains(fleet_.executor_log(), "reaped 1 orphaned containers"));
  EXPECT_EQ(
      AwaitNoContainers(stack_.engine_socket, executor_id, absl::Seconds(10)),
      std::vector<std::string>{});
}

}  // namespace
}  // namespace chaos
