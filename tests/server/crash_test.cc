// Durability against a real crucible-server process killed with SIGKILL in
// the middle of a stream of CreateTask calls, with a worker completing tasks
// as they come: after a restart on the same SQLite file every task whose
// CreateTask returned OK is there, and each ends in exactly one terminal
// state.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "crucible/v1/queue_service.grpc.pb.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"
#include "tests/testing/process_flags.h"

namespace {

namespace v1 = crucible::v1;

void SetDeadline(grpc::ClientContext& ctx, int seconds = 10) {
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::seconds(seconds));
}

class ServerProcess {
 public:
  ServerProcess(const std::string& dir, int run) : dir_(dir), run_(run) {}
  void Start() {
    std::string port_file = absl::StrCat(dir_, "/port-", run_);
    auto p = testing_util::Process::Start(
        testing_util::WithTestFlags(
            {absl::StrCat(getenv("CRUCIBLE_BIN_DIR"), "/crucible-server"),
             "--listen=127.0.0.1:0", absl::StrCat("--port_file=", port_file),
             absl::StrCat("--db=", dir_, "/tasks.db"), "--lease_ttl=2s",
             "--restart_lease_grace=1s", "--sweep_interval=100ms",
             "--shutdown_grace=30s"}),
        absl::StrCat(dir_, "/server-", run_, ".log"));
    ASSERT_TRUE(p.ok()) << p.status();
    process_ = std::make_unique<testing_util::Process>(*std::move(p));
    auto port =
        testing_util::WaitForPortFile(port_file, *process_, absl::Seconds(20));
    ASSERT_TRUE(port.ok()) << port.status();
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", *port),
                                   grpc::InsecureChannelCredentials());
  }
  testing_util::Process& process() { return *process_; }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }

 private:
  const std::string dir_;
  const int run_;
  std::unique_ptr<testing_util::Process> process_;
  std::shared_ptr<grpc::Channel> channel_;
};

// A worker that completes every assignment at once with exit 0 and gives
// the credit back, until its stream breaks or `stop` is set. Records what it
// was assigned and any rejected report.
class TestWorker {
 public:
  TestWorker(std::shared_ptr<grpc::Channel> channel, std::string id)
      : stub_(v1::QueueService::NewStub(channel)), id_(std::move(id)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~TestWorker() { Stop(); }
  void Stop() {
    stop_ = true;
    ctx_.TryCancel();
    if (thread_.joinable()) thread_.join();
  }
  std::multiset<std::string> assigned() {
    absl::MutexLock lock(&mu_);
    return assigned_;
  }
  int rejected() { return rejected_.load(); }

 private:
  void Run() {
    auto stream = stub_->Connect(&ctx_);
    v1::ConnectRequest hello;
    hello.mutable_hello()->set_worker_id(id_);
    hello.mutable_hello()->set_credits(8);
    if (!stream->Write(hello)) return;
    v1::ConnectResponse msg;
    while (!stop_ && stream->Read(&msg)) {
      if (msg.has_rejected()) ++rejected_;
      if (!msg.has_assignment()) continue;
      {
        absl::MutexLock lock(&mu_);
        assigned_.insert(msg.assignment().task().id());
      }
      v1::ConnectRequest done;
      done.mutable_completion()->set_lease_id(msg.assignment().lease_id());
      done.mutable_completion()->mutable_result()->set_reason(
          v1::TERMINATION_REASON_EXITED);
      v1::ConnectRequest credit;
      credit.mutable_credit()->set_credits(1);
      if (!stream->Write(done) || !stream->Write(credit)) break;
    }
    stream->Finish().IgnoreError();
  }

  std::unique_ptr<v1::QueueService::Stub> stub_;
  const std::string id_;
  grpc::ClientContext ctx_;
  std::atomic<bool> stop_{false};
  std::atomic<int> rejected_{0};
  absl::Mutex mu_;
  std::multiset<std::string> assigned_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

TEST(ServerCrashTest, AcknowledgedTasksSurviveSigkillAndEndOnce) {
  // This process's channels, once no call of theirs runs, are never polled
  // (gRPC's backup poller, every 5 s by default, is off): like a client busy
  // elsewhere, it keeps its connection open after the server's GOAWAY. The
  // server's SIGTERM below must not wait for that.
  setenv("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "0", 1);
  std::string dir = testing_util::MakeTempDir("crucible-crash");
  ServerProcess first(dir, 1);
  first.Start();
  if (HasFatalFailure()) return;

  // request_id -> task id of every CreateTask that returned OK.
  absl::Mutex mu;
  std::map<std::string, std::string> acked;
  std::atomic<bool> failed{false};
  auto worker = std::make_unique<TestWorker>(first.channel(), "crash-worker");
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      auto stub = v1::TaskService::NewStub(first.channel());
      for (int i = 0; !failed; ++i) {
        grpc::ClientContext ctx;
        SetDeadline(ctx);
        v1::CreateTaskRequest req;
        req.mutable_spec()->set_image("localhost/crucible/busybox:latest");
        req.set_request_id(absl::StrCat("c", c, "-", i));
        v1::CreateTaskResponse resp;
        if (!stub->CreateTask(&ctx, req, &resp).ok()) {
          failed = true;  // the server is gone
          return;
        }
        absl::MutexLock lock(&mu);
        acked[req.request_id()] = resp.task().id();
      }
    });
  }
  // Kill it mid-stream, once a good number of calls went through.
  auto enough = [&] {
    absl::MutexLock lock(&mu);
    return acked.size() >= 400;
  };
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (!enough() && absl::Now() < deadline)
    absl::SleepFor(absl::Milliseconds(5));
  ASSERT_TRUE(enough()) << first.process().Log();
  ASSERT_EQ(kill(first.process().pid(), SIGKILL), 0);
  for (std::thread& t : clients) t.join();
  worker->Stop();
  ASSERT_TRUE(first.process().Wait(absl::Seconds(10)).ok());

  ServerProcess second(dir, 2);
  second.Start();
  if (HasFatalFailure()) return;
  auto stub = v1::TaskService::NewStub(second.channel());
  std::map<std::string, std::string> acked_copy;
  {
    absl::MutexLock lock(&mu);
    acked_copy = acked;
  }
  // Every acknowledged task is there, and its request_id still names it.
  for (const auto& [request_id, id] : acked_copy) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    v1::GetTaskRequest req;
    req.set_task_id(id);
    v1::GetTaskResponse resp;
    grpc::Status s = stub->GetTask(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << "task " << id << " lost: " << s.error_message();
    EXPECT_EQ(resp.task().request_id(), request_id);
  }
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    v1::CreateTaskRequest req;
    req.mutable_spec()->set_image("localhost/crucible/busybox:latest");
    req.set_request_id(acked_copy.begin()->first);
    v1::CreateTaskResponse resp;
    ASSERT_TRUE(stub->CreateTask(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.task().id(), acked_copy.begin()->second);
  }

  // A new worker finishes everything that is left (leases live at the kill
  // lapse after the 1 s restart grace: this worker does not name them).
  TestWorker again(second.channel(), "crash-worker-2");
  std::vector<v1::Task> all;
  deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    all.clear();
    std::string token;
    bool unfinished = false;
    do {
      grpc::ClientContext ctx;
      SetDeadline(ctx);
      v1::ListTasksRequest req;
      req.set_page_size(1000);
      req.set_page_token(token);
      v1::ListTasksResponse resp;
      ASSERT_TRUE(stub->ListTasks(&ctx, req, &resp).ok());
      for (const v1::Task& t : resp.tasks()) {
        all.push_back(t);
        if (t.state() != v1::TASK_STATE_SUCCEEDED) unfinished = true;
      }
      token = resp.next_page_token();
    } while (!token.empty());
    if (!unfinished) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  std::set<std::string> ids;
  for (const v1::Task& t : all) {
    EXPECT_TRUE(ids.insert(t.id()).second) << "listed twice: " << t.id();
    EXPECT_EQ(t.state(), v1::TASK_STATE_SUCCEEDED) << t.ShortDebugString();
    EXPECT_TRUE(t.has_end_time());
  }
  for (const auto& [request_id, id] : acked_copy) {
    EXPECT_TRUE(ids.count(id)) << id;
  }
  // After the restart, each task was handed out (and completed) once, and
  // no report was refused: nothing completed twice.
  std::multiset<std::string> assigned = again.assigned();
  for (const std::string& id : assigned) {
    EXPECT_EQ(assigned.count(id), 1u) << id;
  }
  EXPECT_EQ(again.rejected(), 0);
  again.Stop();
  // Nothing runs now (the worker's stream was cancelled, this process's
  // connection stays open): the server stops at once and exits 0, without
  // waiting out its --shutdown_grace (30s) for the idle connection, as it
  // did (3.5 to 10 s here, with the 10 s default).
  const absl::Time stopping = absl::Now();
  absl::StatusOr<int> status =
      second.process().Stop(SIGTERM, absl::Seconds(20));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 0) << "wait status; log:\n" << second.process().Log();
  EXPECT_LT(absl::Now() - stopping, absl::Seconds(5));
}

}  // namespace
