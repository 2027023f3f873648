// The worker end to end: real crucible-server, several crucible-executors
// and one or two crucible-workers as processes, the real engine behind the
// real docker-proxy. Executors are killed and added, a worker is killed, its
// server stream is cut, and it is drained, with tasks running. And one
// task's trace id is followed through every process onto its container.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/task_state.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/local_stack.h"
#include "tests/e2e/worker_cluster.h"
#include "tests/testing/process.h"
#include "tests/testing/process_flags.h"
#include "tests/testing/test_stack.h"

namespace {

using worker_e2e::Cluster;
using worker_e2e::Ends;
using worker_e2e::In;
using worker_e2e::Task;
using worker_e2e::TaskState;

// Forwards TCP connections from an ephemeral 127.0.0.1 port to `target`
// and can cut them all, as a broken network would. Owns and joins its
// threads. Thread-safe.
class TcpRelay {
 public:
  explicit TcpRelay(int target) : target_(target) {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (bind(listener_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        listen(listener_, 16) != 0 ||
        getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return;
    }
    port_ = ntohs(addr.sin_port);
    accepter_ = std::thread([this] { AcceptLoop(); });
  }
  ~TcpRelay() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    CutAll();
    if (accepter_.joinable()) accepter_.join();
    for (std::thread& t : pumps_) t.join();  // the accepter is gone: no more
    close(listener_);
  }
  int port() const { return port_; }
  // Closes every open connection; new ones are still accepted.
  void CutAll() {
    absl::MutexLock lock(&mu_);
    for (int fd : open_) shutdown(fd, SHUT_RDWR);
  }

 private:
  void AcceptLoop() {
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        if (stop_) return;
      }
      pollfd p{listener_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      const int client = accept(listener_, nullptr, nullptr);
      if (client < 0) continue;
      const int upstream = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(target_);
      if (connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
          0) {
        close(client);
        close(upstream);
        continue;
      }
      absl::MutexLock lock(&mu_);
      open_.push_back(client);
      open_.push_back(upstream);
      pumps_.emplace_back([this, client, upstream] { Pump(client, upstream); });
    }
  }
  void Pump(int a, int b) {
    pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    char buf[16384];
    bool open = true;
    while (open && poll(fds, 2, -1) > 0) {
      for (int i = 0; i < 2 && open; ++i) {
        if (fds[i].revents == 0) continue;
        const ssize_t n = read(fds[i].fd, buf, sizeof(buf));
        open = n > 0 && write(fds[1 - i].fd, buf, n) == n;
      }
    }
    absl::MutexLock lock(&mu_);
    shutdown(a, SHUT_RDWR);
    shutdown(b, SHUT_RDWR);
    std::erase(open_, a);
    std::erase(open_, b);
    close(a);
    close(b);
  }

  const int target_;
  int listener_ = -1;
  int port_ = 0;
  std::thread accepter_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<int> open_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> pumps_ ABSL_GUARDED_BY(mu_);
};

class WorkerEndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_ = testing_util::TestStackFromEnv();
    REQUIRE_TEST_STACK(stack_);
    cluster_ = std::make_unique<Cluster>(stack_.docker_host);
  }
  void TearDown() override {
    if (HasFailure() && cluster_ != nullptr) std::cerr << cluster_->Logs();
  }
  // Removes the containers of `task_id` that a killed executor left behind.
  void RemoveLeftovers(const std::string& task_id) {
    const std::string filter =
        absl::StrCat(R"({"label":["crucible.task=)", task_id, R"("]})");
    absl::StatusOr<testing_util::CommandResult> list = testing_util::RunCommand(
        {"/usr/bin/curl", "-fsS", "-G", "--unix-socket", stack_.engine_socket,
         "--data-urlencode", "all=1", "--data-urlencode", "filters=" + filter,
         "http://engine/v1.41/containers/json"},
        absl::Seconds(10));
    if (!list.ok() || list->exit_code != 0) return;
    // The ids are the 64-hex "Id" fields; crude but dependency-free.
    size_t pos = 0;
    while ((pos = list->out.find(R"("Id":")", pos)) != std::string::npos) {
      pos += 6;
      const std::string id = list->out.substr(pos, 64);
      absl::StatusOr<testing_util::CommandResult> removed =
          testing_util::RunCommand(
              {"/usr/bin/curl", "-fsS", "-X", "DELETE", "--unix-socket",
               stack_.engine_socket,
               "http://engine/v1.41/containers/" + id + "?force=1"},
              absl::Seconds(20));
      if (!removed.ok())
        std::cerr << "leftover " << id << ": " << removed.status() << "\n";
    }
  }

  testing_util::TestStack stack_;
  std::unique_ptr<Cluster> cluster_;
};

TEST_F(WorkerEndToEndTest, TasksSpreadOverExecutorsAndOneAddedLaterGetsWork) {
  Cluster& c = *cluster_;
  ASSERT_TRUE(c.StartServer({}).ok()) << c.Logs();
  absl::StatusOr<std::string> e1 = c.StartExecutor("executor-1", 2);
  absl::StatusOr<std::string> e2 = c.StartExecutor("executor-2", 2);
  ASSERT_TRUE(e1.ok() && e2.ok()) << c.Logs();
  const std::string file = c.dir() + "/executors.txt";
  std::ofstream(file) << *e1 << "\n" << *e2 << "\n";
  ASSERT_TRUE(c.StartWorker("worker-1",
                            {"--executors_file=" + file, "--executor_slots=2",
                             "--resolve_interval=200ms"})
                  .ok())
      << c.Logs();

  // Four tasks at once on 2 x 2 slots: the most-free rule spreads them.
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i)
    ids.push_back(c.Submit({"sh", "-c", "sleep 1; echo ok"}));
  std::map<std::string, int> per_executor;
  for (const std::string& id : ids) {
    EXPECT_EQ(Ends(c.Watch(id)), 1);
    Task t = c.Get(id);
    EXPECT_EQ(t.state(), crucible::v1::TASK_STATE_SUCCEEDED) << t.DebugString();
    for (const std::string& e : c.RanOn(id, {"executor-1", "executor-2"}))
      ++per_executor[e];
  }
  EXPECT_GE(per_executor["executor-1"], 1);
  EXPECT_GE(per_executor["executor-2"], 1);
  EXPECT_EQ(per_executor["executor-1"] + per_executor["executor-2"], 4);

  // A third executor appears in the list, the first two go away: the next
  // task runs on the newcomer, without a restart of the worker.
  absl::StatusOr<std::string> e3 = c.StartExecutor("executor-3", 2);
  ASSERT_TRUE(e3.ok()) << c.Logs();
  std::ofstream(file, std::ios::trunc) << *e3 << "\n";
  ASSERT_TRUE(c.WaitForLog("worker-1", "executor " + *e3 + " in rotation"))
      << c.Logs();
  const std::string late = c.Submit({"sh", "-c", "echo late"});
  EXPECT_EQ(Ends(c.Watch(late)), 1);
  EXPECT_EQ(c.Get(late).state(), crucible::v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(c.Stdout(late), "late\n");
  EXPECT_THAT(c.RanOn(late, {"executor-1", "executor-2", "executor-3"}),
              testing::ElementsAre("executor-3"));
}

TEST_F(WorkerEndToEndTest, ExecutorKilledMidTaskIsRetriedOnAnotherAtOnce) {
  Cluster& c = *cluster_;
  // A lease far longer than the test: a retry cannot come from its lapse.
  ASSERT_TRUE(c.StartServer({"--lease_ttl=300s"}).ok()) << c.Logs();
  absl::StatusOr<std::string> e1 = c.StartExecutor("executor-1", 2);
  absl::StatusOr<std::string> e2 = c.StartExecutor("executor-2", 2);
  ASSERT_TRUE(e1.ok() && e2.ok()) << c.Logs();
  ASSERT_TRUE(c.StartWorker("worker-1", {"--executors=" + *e1 + "," + *e2,
                                         "--executor_slots=2"})
                  .ok())
      << c.Logs();

  const std::string id = c.Submit({"sh", "-c", "sleep 2; echo done"});
  ASSERT_THAT(c.Watch(id, crucible::v1::TASK_STATE_RUNNING),
              testing::Contains(crucible::v1::TASK_STATE_RUNNING));
  const std::vector<std::string> first =
      c.RanOn(id, {"executor-1", "executor-2"});
  ASSERT_EQ(first.size(), 1u) << c.Logs();
  const std::string other =
      first[0] == "executor-1" ? "executor-2" : "executor-1";
  ASSERT_TRUE(c.process(first[0]).Stop(SIGKILL, absl::Seconds(10)).ok());

  // Watch deadline well under the 300 s lease: the worker reported the loss.
  const std::vector<TaskState> states =
      c.Watch(id, crucible::v1::TASK_STATE_UNSPECIFIED, absl::Seconds(60));
  EXPECT_EQ(Ends(states), 1);
  Task t = c.Get(id);
  EXPECT_EQ(t.state(), crucible::v1::TASK_STATE_SUCCEEDED) << t.DebugString();
  EXPECT_EQ(t.attempt(), 2);
  EXPECT_EQ(c.Stdout(id), "done\n");
  EXPECT_THAT(c.RanOn(id, {other}), testing::ElementsAre(other));
  RemoveLeftovers(id);
}

TEST_F(WorkerEndToEndTest,
       KilledWorkersTasksRunAgainOnASecondWorkerEachEndingOnce) {
  Cluster& c = *cluster_;
  ASSERT_TRUE(c.StartServer({"--lease_ttl=3s", "--sweep_interval=200ms"}).ok())
      << c.Logs();
  absl::StatusOr<std::string> e1 = c.StartExecutor("executor-1", 4);
  ASSERT_TRUE(e1.ok()) << c.Logs();
  ASSERT_TRUE(c.StartWorker("worker-1", {"--executors=" + *e1}).ok())
      << c.Logs();

  std::vector<std::string> ids;
  for (int i = 0; i < 2; ++i)
    ids.push_back(c.Submit({"sh", "-c", "sleep 2; echo once"}));
  for (const std::string& id : ids) {
    ASSERT_THAT(c.Watch(id, crucible::v1::TASK_STATE_RUNNING),
                testing::Contains(crucible::v1::TASK_STATE_RUNNING));
  }
  ASSERT_TRUE(c.process("worker-1").Stop(SIGKILL, absl::Seconds(10)).ok());
  ASSERT_TRUE(c.StartWorker("worker-2", {"--executors=" + *e1}).ok())
      << c.Logs();

  for (const std::string& id : ids) {
    EXPECT_EQ(Ends(c.Watch(id)), 1) << id;
    Task t = c.Get(id);
    EXPECT_EQ(t.state(), crucible::v1::TASK_STATE_SUCCEEDED) << t.DebugString();
    EXPECT_EQ(t.attempt(), 2) << "the first attempt's lease lapsed";
    EXPECT_EQ(c.Stdout(id), "once\n");
  }
}

TEST_F(WorkerEndToEndTest, LostServerStreamResumesTheRunningTaskUnderItsLease) {
  Cluster& c = *cluster_;
  ASSERT_TRUE(c.StartServer({}).ok()) << c.Logs();
  absl::StatusOr<std::string> e1 = c.StartExecutor("executor-1", 2);
  ASSERT_TRUE(e1.ok()) << c.Logs();
  TcpRelay relay(c.port("server"));
  ASSERT_GT(relay.port(), 0);
  ASSERT_TRUE(
      c.StartWorker("worker-1", {"--executors=" + *e1}, relay.port()).ok())
      << c.Logs();

  const std::string id =
      c.Submit({"sh", "-c", "echo before; sleep 3; echo after"});
  ASSERT_THAT(c.Watch(id, crucible::v1::TASK_STATE_RUNNING),
              testing::Contains(crucible::v1::TASK_STATE_RUNNING));
  relay.CutAll();  // the worker's stream breaks; the task keeps running
  ASSERT_TRUE(c.WaitForLog("worker-1", "resuming 1 running tasks")) << c.Logs();

  EXPECT_EQ(Ends(c.Watch(id)), 1);
  Task t = c.Get(id);
  EXPECT_EQ(t.state(), crucible::v1::TASK_STATE_SUCCEEDED) << t.DebugString();
  EXPECT_EQ(t.attempt(), 1) << "resumed, not retried";
  EXPECT_EQ(c.Stdout(id), "before\nafter\n");
}

TEST_F(WorkerEndToEndTest, SigtermDrainLetsTheRunningTaskFinishThenExitsZero) {
  Cluster& c = *cluster_;
  ASSERT_TRUE(c.StartServer({}).ok()) << c.Logs();
  absl::StatusOr<std::string> e1 = c.StartExecutor("executor-1", 2);
  ASSERT_TRUE(e1.ok()) << c.Logs();
  ASSERT_TRUE(
      c.StartWorker("worker-1", {"--executors=" + *e1, "--drain_grace=60s"})
          .ok())
      << c.Logs();

  const std::string id = c.Submit({"sh", "-c", "sleep 3; echo drained"});
  ASSERT_THAT(c.Watch(id, crucible::v1::TASK_STATE_RUNNING),
              testing::Contains(crucible::v1::TASK_STATE_RUNNING));
  ASSERT_EQ(kill(c.process("worker-1").pid(), SIGTERM), 0);
  ASSERT_TRUE(c.WaitForLog("worker-1", "draining: no more credits; 1 running"))
      << c.Logs();
  // Meanwhile its health says NOT_SERVING (the task still runs: 3 s).
  auto health = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", c.port("worker-1")),
                          grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(In(absl::Seconds(5)));
  grpc::health::v1::HealthCheckResponse serving;
  ASSERT_TRUE(
      health->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &serving)
          .ok());
  EXPECT_EQ(serving.status(),
            grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  EXPECT_NE(c.Get(id).state(), crucible::v1::TASK_STATE_SUCCEEDED)
      << "drain checked too late";
  absl::StatusOr<int> status = c.process("worker-1").Wait(absl::Seconds(60));
  ASSERT_TRUE(status.ok()) << c.Logs();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  Task t = c.Get(id);
  EXPECT_EQ(t.state(), crucible::v1::TASK_STATE_SUCCEEDED) << t.DebugString();
  EXPECT_EQ(t.attempt(), 1) << "drained, not retried";
  EXPECT_EQ(c.Stdout(id), "drained\n");
}

// Issue 20: one trace id per task. The traceparent the client sends names
// the task's trace: GetTask returns it, the server's, the worker's and the
// executor's log lines about the task carry it (at GLOG_v=1, as the
// cluster runs them: every request logged), and so does the task's
// container, as its crucible.trace-id label.
TEST_F(WorkerEndToEndTest, OneTraceIdInEveryProcessLogAndOnTheContainer) {
  Cluster& c = *cluster_;
  ASSERT_TRUE(c.StartServer({}).ok()) << c.Logs();
  absl::StatusOr<std::string> executor = c.StartExecutor("executor-1", 1);
  ASSERT_TRUE(executor.ok()) << c.Logs();
  ASSERT_TRUE(c.StartWorker("worker-1", {"--executors=" + *executor}).ok())
      << c.Logs();

  // This run's own trace, so no other test's logs or containers match.
  absl::BitGen gen;
  const std::string trace =
      absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(gen),
                      absl::Uniform<uint64_t>(gen) | 1);
  auto tasks = crucible::v1::TaskService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", c.port("server")),
                          grpc::InsecureChannelCredentials()));
  crucible::v1::CreateTaskRequest req;
  req.mutable_spec()->set_image(worker_e2e::kImage);
  req.mutable_spec()->add_command("sleep");
  req.mutable_spec()->add_command("60");
  req.mutable_spec()->mutable_timeout()->set_seconds(120);
  crucible::v1::CreateTaskResponse created;
  grpc::ClientContext ctx;
  ctx.set_deadline(In(absl::Seconds(10)));
  ctx.AddMetadata("traceparent",
                  absl::StrCat("00-", trace, "-00f067aa0ba902b7-01"));
  grpc::Status s = tasks->CreateTask(&ctx, req, &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const std::string id = created.task().id();
  EXPECT_EQ(created.task().trace_id(), trace);

  // While it runs, its container carries the label.
  ASSERT_EQ(c.Watch(id, crucible::v1::TASK_STATE_RUNNING).back(),
            crucible::v1::TASK_STATE_RUNNING)
      << c.Logs();
  const std::string filter =
      absl::StrCat(R"({"label":["crucible.trace-id=)", trace, R"("]})");
  absl::StatusOr<testing_util::CommandResult> list = testing_util::RunCommand(
      {"/usr/bin/curl", "-fsS", "-G", "--unix-socket", stack_.engine_socket,
       "--data-urlencode", "filters=" + filter,
       "http://engine/v1.41/containers/json"},
      absl::Seconds(10));
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->exit_code, 0) << list->out;
  const nlohmann::json containers =
      nlohmann::json::parse(list->out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(containers.is_array()) << list->out;
  ASSERT_EQ(containers.size(), 1u) << list->out;
  const nlohmann::json& labels = containers[0]["Labels"];
  ASSERT_TRUE(labels.is_object()) << list->out;
  EXPECT_EQ(labels.value("crucible.trace-id", ""), trace) << list->out;
  EXPECT_EQ(labels.value("crucible.task", ""), id) << list->out;

  ASSERT_TRUE(c.Cancel(id).ok());
  EXPECT_EQ(c.Watch(id).back(), crucible::v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(c.Get(id).trace_id(), trace);
  // Every process's log tells its part of the story under that trace.
  for (const char* process : {"server", "worker-1", "executor-1"}) {
    EXPECT_TRUE(
        c.WaitForLog(process, absl::StrCat("task ", id, " trace=", trace)))
        << process << " log has no line naming the trace:\n"
        << c.Log(process);
  }
}

}  // namespace
