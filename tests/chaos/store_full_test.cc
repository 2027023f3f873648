// Chaos: the disk under crucible-server's SQLite file fills up while tasks
// run (a real tmpfs, filled to the last byte), with a real worker and
// executor running them through the real proxy and engine. The server
// degrades instead of dying: CreateTask and CancelTask answer
// RESOURCE_EXHAUSTED ("the task store is full: ..."), reads go on, health
// "crucible.store" says NOT_SERVING, the running tasks finish and their
// results are stored once space is back, which the server notices by itself;
// then it takes new tasks again. Nothing acknowledged is lost, nothing ends
// twice, no attempt is spent, and the file passes PRAGMA integrity_check.
#include <grpcpp/grpcpp.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"
#include "tests/testing/process_flags.h"
#include "tests/testing/small_disk.h"
#include "tests/testing/sqlite_check.h"
#include "tests/testing/test_stack.h"
#include "tests/testing/wait_ready.h"

namespace {

namespace v1 = crucible::v1;
using grpc::health::v1::HealthCheckResponse;
using testing_util::Process;

constexpr char kImage[] = "localhost/crucible/busybox:latest";
constexpr int kTasks = 3;
constexpr int kTicks = 6;  // seconds each task runs, printing a line a second

void SetDeadline(grpc::ClientContext& ctx, int seconds = 10) {
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::seconds(seconds));
}

// Polls `done` every 100 ms until it holds or `timeout` passes.
bool Eventually(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return true;
}

using ::testing_util::IntegrityCheck;

class StoreFullChaosTest : public testing::Test {
 protected:
  void SetUp() override {
    stack_ = testing_util::TestStackFromEnv();
    REQUIRE_TEST_STACK(stack_);
    dir_ = testing_util::MakeTempDir("chaos-store-full");
    disk_or_ = testing_util::SmallDisk::Mount(dir_ + "/disk", 16 << 20);
    REQUIRE_SMALL_DISK(disk_or_);
    disk_ = disk_or_->get();
    db_ = disk_->dir() + "/crucible.db";
    int port = 0;
    Start("server",
          {"--db=" + db_, "--sweep_interval=200ms", "--store_full_retry=200ms"},
          server_, port);
    if (HasFatalFailure()) return;
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                   grpc::InsecureChannelCredentials());
    tasks_ = v1::TaskService::NewStub(channel_);
    health_ = grpc::health::v1::Health::NewStub(channel_);
    int executor_port = 0;
    Start("executor", {"--docker_host=" + stack_.docker_host}, executor_,
          executor_port);
    if (HasFatalFailure()) return;
    int worker_port = 0;
    Start("worker",
          {absl::StrCat("--server=127.0.0.1:", port),
           absl::StrCat("--executors=127.0.0.1:", executor_port)},
          worker_, worker_port);
    if (HasFatalFailure()) return;
    // Tasks are admitted once a worker has reported its executor.
    absl::Status ready =
        testing_util::WaitReady("worker", worker_port, absl::Seconds(60));
    ASSERT_TRUE(ready.ok()) << ready;
  }
  void TearDown() override {
    if (HasFailure()) {
      for (const char* name : {"server", "executor", "worker"}) {
        std::cerr << "==== " << name << " log\n"
                  << testing_util::ReadFile(
                         absl::StrCat(dir_, "/", name, ".log"))
                  << "\n";
      }
    }
    if (disk_ != nullptr) disk_->Free().IgnoreError();
    // Stopped before the disk under the server goes (Process dtors).
    for (std::optional<Process>* p : {&worker_, &executor_, &server_})
      p->reset();
  }
  void Start(const std::string& name, std::vector<std::string> args,
             std::optional<Process>& process, int& port) {
    const std::string port_file = absl::StrCat(dir_, "/", name, ".port");
    args.insert(args.begin(), testing_util::BinaryPath("crucible-" + name));
    args.push_back("--listen=127.0.0.1:0");
    args.push_back("--port_file=" + port_file);
    args = testing_util::WithTestFlags(std::move(args));
    auto started = Process::Start(args, absl::StrCat(dir_, "/", name, ".log"));
    ASSERT_TRUE(started.ok()) << started.status();
    process.emplace(*std::move(started));
    auto bound =
        testing_util::WaitForPortFile(port_file, *process, absl::Seconds(30));
    ASSERT_TRUE(bound.ok()) << name << ": " << bound.status();
    port = *bound;
  }

  grpc::Status Create(const std::string& request_id, const std::string& script,
                      v1::Task* task) {
    v1::CreateTaskRequest req;
    req.set_request_id(request_id);
    req.mutable_spec()->set_image(kImage);
    req.mutable_spec()->add_command("sh");
    req.mutable_spec()->add_command("-c");
    req.mutable_spec()->add_command(script);
    req.mutable_spec()->mutable_timeout()->set_seconds(60);
    v1::CreateTaskResponse resp;
    grpc::ClientContext ctx;
    SetDeadline(ctx, 20);
    grpc::Status s = tasks_->CreateTask(&ctx, req, &resp);
    if (s.ok()) *task = resp.task();
    return s;
  }
  grpc::Status Get(const std::string& id, v1::Task* task) {
    v1::GetTaskRequest req;
    req.set_task_id(id);
    v1::GetTaskResponse resp;
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    grpc::Status s = tasks_->GetTask(&ctx, req, &resp);
    if (s.ok()) *task = resp.task();
    return s;
  }
  v1::TaskState State(const std::string& id) {
    v1::Task task;
    return Get(id, &task).ok() ? task.state() : v1::TASK_STATE_UNSPECIFIED;
  }
  HealthCheckResponse::ServingStatus Health(const std::string& service) {
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    HealthCheckResponse resp;
    grpc::ClientContext ctx;
    SetDeadline(ctx, 5);
    if (!health_->Check(&ctx, req, &resp).ok())
      return HealthCheckResponse::UNKNOWN;
    return resp.status();
  }
  std::string Output(const std::string& id) {
    v1::StreamTaskOutputRequest req;
    req.set_task_id(id);
    grpc::ClientContext ctx;
    SetDeadline(ctx, 30);
    auto reader = tasks_->StreamTaskOutput(&ctx, req);
    v1::StreamTaskOutputResponse chunk;
    std::string out;
    while (reader->Read(&chunk)) out += chunk.chunk().data();
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }
  std::vector<v1::Task> List() {
    v1::ListTasksRequest req;
    req.set_page_size(1000);
    v1::ListTasksResponse resp;
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    grpc::Status s = tasks_->ListTasks(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return {resp.tasks().begin(), resp.tasks().end()};
  }

  testing_util::TestStack stack_;
  std::string dir_;
  absl::StatusOr<std::unique_ptr<testing_util::SmallDisk>> disk_or_;
  testing_util::SmallDisk* disk_ = nullptr;
  std::string db_;
  std::optional<Process> server_, executor_, worker_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TaskService::Stub> tasks_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

TEST_F(StoreFullChaosTest, FullDiskDegradesThenResumesWithNothingLost) {
  const std::string script =
      absl::StrCat("echo start; i=0; while [ $i -lt ", kTicks,
                   " ]; do echo tick $i; sleep 1; i=$((i+1)); done; echo done");
  std::string expected_output = "start\n";
  for (int i = 0; i < kTicks; ++i)
    absl::StrAppend(&expected_output, "tick ", i, "\n");
  expected_output += "done\n";

  // request_id -> task of every CreateTask that returned OK.
  std::map<std::string, v1::Task> acked;
  for (int i = 0; i < kTasks; ++i) {
    v1::Task task;
    const std::string request_id = absl::StrCat("before-", i);
    grpc::Status s = Create(request_id, script, &task);
    ASSERT_TRUE(s.ok()) << s.error_message();
    acked[request_id] = task;
  }
  for (const auto& [rid, task] : acked) {
    const std::string id = task.id();
    ASSERT_TRUE(Eventually([&] { return State(id) == v1::TASK_STATE_RUNNING; },
                           absl::Seconds(30)))
        << id << " never ran";
  }
  const absl::Time running = absl::Now();

  // The disk fills up; the next commit (the tasks' output) finds it full.
  auto filled = disk_->Fill();
  ASSERT_TRUE(filled.ok()) << filled.status();
  ASSERT_TRUE(Eventually(
      [&] {
        return Health("crucible.store") == HealthCheckResponse::NOT_SERVING;
      },
      absl::Seconds(10)))
      << "the store never said it is full";
  // The process serves on: "" stays SERVING (a liveness probe must not
  // restart it), and new work is refused with the reason.
  EXPECT_EQ(Health(""), HealthCheckResponse::SERVING);
  v1::Task refused;
  grpc::Status s = Create("during", "echo never", &refused);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "the task store is full"))
      << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), db_)) << s.error_message();
  {
    v1::CancelTaskRequest req;
    req.set_task_id(acked.begin()->second.id());
    v1::CancelTaskResponse resp;
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    grpc::Status c = tasks_->CancelTask(&ctx, req, &resp);
    EXPECT_EQ(c.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << c.error_message();
  }
  // Reads go on while the tasks finish in their containers (their results
  // wait in the server's memory), and the server stays up.
  while (absl::Now() < running + absl::Seconds(kTicks + 3)) {
    ASSERT_TRUE(server_->Running()) << "crucible-server exited on a full disk";
    for (const auto& [rid, task] : acked) {
      v1::Task got;
      grpc::Status g = Get(task.id(), &got);
      ASSERT_TRUE(g.ok()) << g.error_message();
      EXPECT_FALSE(got.state() == v1::TASK_STATE_SUCCEEDED)
          << "not stored yet, not shown";
    }
    EXPECT_EQ(List().size(), size_t{kTasks});
    absl::SleepFor(absl::Milliseconds(500));
  }
  EXPECT_EQ(Health("crucible.store"), HealthCheckResponse::NOT_SERVING);

  // Space comes back: the server notices by itself, stores what it kept.
  ASSERT_TRUE(disk_->Free().ok());
  ASSERT_TRUE(Eventually(
      [&] { return Health("crucible.store") == HealthCheckResponse::SERVING; },
      absl::Seconds(10)))
      << "the store never resumed";
  for (const auto& [rid, task] : acked) {
    const std::string id = task.id();
    ASSERT_TRUE(
        Eventually([&] { return State(id) == v1::TASK_STATE_SUCCEEDED; },
                   absl::Seconds(15)))
        << id << " ended " << v1::TaskState_Name(State(id));
    v1::Task got;
    ASSERT_TRUE(Get(id, &got).ok());
    EXPECT_EQ(got.attempt(), 1) << "the full disk cost an attempt";
    EXPECT_EQ(Output(id), expected_output);
  }
  // And new work is taken again, without a restart.
  v1::Task after;
  s = Create("after", "echo after", &after);
  ASSERT_TRUE(s.ok()) << s.error_message();
  acked["after"] = after;
  ASSERT_TRUE(
      Eventually([&] { return State(after.id()) == v1::TASK_STATE_SUCCEEDED; },
                 absl::Seconds(30)));
  EXPECT_EQ(Output(after.id()), "after\n");

  // Every acknowledged task is there, exactly once, ended once.
  std::map<std::string, int> seen;
  for (const v1::Task& t : List()) {
    ++seen[t.id()];
    EXPECT_EQ(t.state(), v1::TASK_STATE_SUCCEEDED) << t.id();
    EXPECT_EQ(t.attempt(), 1) << t.id();
  }
  EXPECT_EQ(seen.size(), acked.size());
  for (const auto& [rid, task] : acked) EXPECT_EQ(seen[task.id()], 1) << rid;
  EXPECT_TRUE(server_->Running());

  for (std::optional<Process>* p : {&worker_, &executor_}) {
    auto status = (*p)->Stop(SIGTERM, absl::Seconds(15));
    EXPECT_TRUE(status.ok()) << status.status();
  }
  auto status = server_->Stop(SIGTERM, absl::Seconds(15));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  EXPECT_EQ(IntegrityCheck(db_), "ok");
}

}  // namespace
