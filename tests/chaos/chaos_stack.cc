#include "tests/chaos/chaos_stack.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "common/tls.h"
#include "gtest/gtest.h"
#include "tests/testing/process_flags.h"
#include "tests/testing/test_stack.h"
#include "tests/testing/wait_ready.h"

namespace testing_util {
namespace {

constexpr char kImage[] = "localhost/crucible/busybox:latest";

std::chrono::system_clock::time_point In(absl::Duration d) {
  return absl::ToChronoTime(absl::Now() + d);
}

}  // namespace

ChaosStack::ChaosStack(std::string docker_host)
    : docker_host_(std::move(docker_host)), dir_(MakeTempDir("chaos")) {}

ChaosStack::~ChaosStack() {
  for (auto it = started_.rbegin(); it != started_.rend(); ++it) {
    auto p = processes_.find(*it);
    if (p != processes_.end() && p->second.Running()) {
      p->second.Stop(SIGTERM, absl::Seconds(30)).IgnoreError();
    }
  }
}

std::string ChaosStack::LogPath(const std::string& log_name) const {
  return absl::StrCat(dir_, "/", log_name, ".log");
}

absl::StatusOr<int> ChaosStack::Start(const std::string& name,
                                      const std::string& log_name,
                                      const std::string& binary,
                                      std::vector<std::string> args, int port) {
  const std::string port_file = absl::StrCat(dir_, "/", log_name, ".port");
  args.insert(args.begin(), BinaryPath("crucible-" + binary));
  args.push_back(absl::StrCat("--listen=127.0.0.1:", port));
  args.push_back("--port_file=" + port_file);
  args = testing_util::WithTestFlags(std::move(args));
  // GLOG_v=1: the executor logs every Run with its task id.
  absl::StatusOr<Process> p = Process::Start(
      args, LogPath(log_name), {"GLOG_v=1", "GLOG_logtostderr=1"});
  if (!p.ok()) return p.status();
  processes_.erase(name);
  std::erase(started_, name);
  started_.push_back(name);
  auto [it, added] = processes_.emplace(name, *std::move(p));
  log_names_[name] = log_name;
  return WaitForPortFile(port_file, it->second, absl::Seconds(30));
}

absl::Status ChaosStack::StartServer(std::vector<std::string> args) {
  args.push_back(absl::StrCat("--db=", dir_, "/crucible.db"));
  server_args_ = std::move(args);
  server_runs_ = 0;
  server_port_ = 0;
  return RestartServer();
}

absl::Status ChaosStack::RestartServer() {
  ++server_runs_;
  const std::string log_name =
      server_runs_ == 1 ? "server" : absl::StrCat("server-", server_runs_);
  absl::StatusOr<int> port =
      Start("server", log_name, "server", server_args_, server_port_);
  if (!port.ok()) return port.status();
  if (server_port_ == 0) {
    server_port_ = *port;
    server_target_ = absl::StrCat("127.0.0.1:", server_port_);
    tasks_ = crucible::v1::TaskService::NewStub(grpc::CreateChannel(
        server_target_, grpc::InsecureChannelCredentials()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int>> ChaosStack::StartServers(
    int n, const std::string& uri, std::vector<std::string> args) {
  std::vector<int> ports;
  std::vector<std::string> addresses;
  for (int i = 1; i <= n; ++i) {
    const std::string name = absl::StrCat("ha-", i);
    std::vector<std::string> a = args;
    a.push_back("--store=" + uri);
    a.push_back("--server_id=" + name);
    absl::StatusOr<int> port = Start(name, name, "server", a, 0);
    if (!port.ok()) return port.status();
    if (i == 1 &&
        !WaitForLog(name, "holds the leader lease (epoch", absl::Seconds(20))) {
      return absl::DeadlineExceededError("ha-1 did not take the leader lease");
    }
    ports.push_back(*port);
    addresses.push_back(absl::StrCat("127.0.0.1:", *port));
  }
  server_target_ = absl::StrCat("ipv4:", absl::StrJoin(addresses, ","));
  grpc::ChannelArguments channel_args;
  common::RouteToServingServer(server_target_, channel_args);
  tasks_ = crucible::v1::TaskService::NewStub(grpc::CreateCustomChannel(
      server_target_, grpc::InsecureChannelCredentials(), channel_args));
  return ports;
}

absl::StatusOr<std::string> ChaosStack::StartExecutor(const std::string& name,
                                                      int slots) {
  absl::StatusOr<int> port =
      Start(name, name, "executor",
            {"--docker_host=" + docker_host_, absl::StrCat("--slots=", slots),
             // Unique on the shared test engine: an executor reaps every
             // container carrying its id, so another test's "executor-1"
             // running at the same time would remove ours.
             absl::StrCat("--executor_id=chaos-", getpid(), "-", name)},
            0);
  if (!port.ok()) return port.status();
  executors_.push_back(name);
  return absl::StrCat("127.0.0.1:", *port);
}

absl::Status ChaosStack::StartWorker(const std::string& name,
                                     const std::string& executor,
                                     std::vector<std::string> args) {
  args.push_back("--server=" + server_target_);
  args.push_back("--executors=" + executor);
  args.push_back("--worker_id=" + name);
  args.push_back("--health_interval=200ms");
  args.push_back("--health_retry_max=1s");
  absl::StatusOr<int> port = Start(name, name, "worker", args, 0);
  if (!port.ok()) return port.status();
  // Tasks are admitted once the worker has reported its executor.
  return WaitReady(name, *port, absl::Seconds(60));
}

absl::StatusOr<int> ChaosStack::Stop(const std::string& name, int signal,
                                     absl::Duration timeout) {
  auto it = processes_.find(name);
  if (it == processes_.end()) return absl::NotFoundError(name);
  return it->second.Stop(signal, timeout);
}

absl::StatusOr<std::string> ChaosStack::Submit(const std::string& script,
                                               const std::string& request_id) {
  crucible::v1::CreateTaskRequest req;
  req.set_request_id(request_id);
  // Several servers (StartServers): wait for the leader, as a client of a
  // failing-over store should; the call keeps the channel polled.
  const bool listed = absl::StartsWith(server_target_, "ipv4:");
  req.mutable_spec()->set_image(kImage);
  for (const char* arg : {"sh", "-c"}) req.mutable_spec()->add_command(arg);
  req.mutable_spec()->add_command(script);
  req.mutable_spec()->mutable_timeout()->set_seconds(60);
  crucible::v1::CreateTaskResponse resp;
  grpc::ClientContext ctx;
  ctx.set_wait_for_ready(listed);
  ctx.set_deadline(In(absl::Seconds(10)));
  grpc::Status s = tasks_->CreateTask(&ctx, req, &resp);
  if (!s.ok()) return common::FromGrpcStatus(s);
  return resp.task().id();
}

absl::StatusOr<crucible::v1::Task> ChaosStack::Get(const std::string& id) {
  crucible::v1::GetTaskRequest req;
  req.set_task_id(id);
  crucible::v1::GetTaskResponse resp;
  grpc::ClientContext ctx;
  ctx.set_wait_for_ready(absl::StartsWith(server_target_, "ipv4:"));
  ctx.set_deadline(In(absl::Seconds(5)));
  grpc::Status s = tasks_->GetTask(&ctx, req, &resp);
  if (!s.ok()) return common::FromGrpcStatus(s);
  return resp.task();
}

bool ChaosStack::AwaitTask(
    const std::string& id,
    const std::function<bool(const crucible::v1::Task&)>& done,
    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    // Calls fail while the server restarts: poll on.
    absl::StatusOr<crucible::v1::Task> task = Get(id);
    if (task.ok() && done(*task)) return true;
    absl::SleepFor(absl::Milliseconds(100));  // polling a condition
  }
  return false;
}

absl::StatusOr<std::vector<crucible::v1::Task>> ChaosStack::ListAll() {
  std::vector<crucible::v1::Task> all;
  std::string token;
  do {
    crucible::v1::ListTasksRequest req;
    req.set_page_size(1000);
    req.set_page_token(token);
    crucible::v1::ListTasksResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(In(absl::Seconds(10)));
    grpc::Status s = tasks_->ListTasks(&ctx, req, &resp);
    if (!s.ok()) return common::FromGrpcStatus(s);
    all.insert(all.end(), resp.tasks().begin(), resp.tasks().end());
    token = resp.next_page_token();
  } while (!token.empty());
  return all;
}

absl::StatusOr<std::string> ChaosStack::Stdout(const std::string& id,
                                               int attempt) {
  crucible::v1::StreamTaskOutputRequest req;
  req.set_task_id(id);
  req.set_attempt(attempt);
  req.set_stream(crucible::v1::OUTPUT_STREAM_STDOUT);
  grpc::ClientContext ctx;
  ctx.set_deadline(In(absl::Seconds(10)));
  auto reader = tasks_->StreamTaskOutput(&ctx, req);
  crucible::v1::StreamTaskOutputResponse chunk;
  std::string out;
  while (reader->Read(&chunk)) out += chunk.chunk().data();
  grpc::Status s = reader->Finish();
  if (!s.ok()) return common::FromGrpcStatus(s);
  return out;
}

int ChaosStack::Runs(const std::string& task_id) const {
  // The executor's "Run <run id> task <task id>" line, one per Run call.
  const std::string needle = absl::StrCat(" task ", task_id);
  int runs = 0;
  for (const std::string& name : executors_) {
    const std::string log = Log(name);
    for (size_t pos = log.find(needle); pos != std::string::npos;
         pos = log.find(needle, pos + 1)) {
      ++runs;
    }
  }
  return runs;
}

std::string ChaosStack::Log(const std::string& name) const {
  auto it = log_names_.find(name);
  return ReadFile(LogPath(it == log_names_.end() ? name : it->second));
}

std::string ChaosStack::Logs() const {
  std::string out;
  std::vector<std::string> names;
  for (const auto& [name, log_name] : log_names_) names.push_back(name);
  for (int run = 1; run < server_runs_; ++run) {
    const std::string log_name =
        run == 1 ? "server" : absl::StrCat("server-", run);
    absl::StrAppend(&out, "==== ", log_name, " log\n",
                    ReadFile(LogPath(log_name)), "\n");
  }
  for (const std::string& name : names) {
    absl::StrAppend(&out, "==== ", log_names_.at(name), " log\n", Log(name),
                    "\n");
  }
  return out;
}

bool ChaosStack::WaitForLog(const std::string& name, const std::string& text,
                            absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (absl::StrContains(Log(name), text)) return true;
    absl::SleepFor(absl::Milliseconds(50));  // polling a condition
  }
  return false;
}

void ExpectEachEndedOnce(ChaosStack& stack,
                         const std::vector<std::string>& acked, int attempt,
                         const std::string& stdout) {
  absl::StatusOr<std::vector<crucible::v1::Task>> all = stack.ListAll();
  ASSERT_TRUE(all.ok()) << all.status();
  std::map<std::string, int> listed;
  for (const crucible::v1::Task& t : *all) ++listed[t.id()];
  EXPECT_EQ(all->size(), acked.size())
      << "tasks nobody submitted, or listed twice";
  for (const std::string& id : acked) {
    EXPECT_EQ(listed[id], 1) << "task " << id << " lost or listed twice";
    absl::StatusOr<crucible::v1::Task> t = stack.Get(id);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(t->state(), crucible::v1::TASK_STATE_SUCCEEDED)
        << t->DebugString();
    EXPECT_EQ(t->attempt(), attempt) << t->DebugString();
    EXPECT_EQ(t->result().exit_code(), 0) << t->DebugString();
    absl::StatusOr<std::string> out = stack.Stdout(id, attempt);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(*out, stdout) << "task " << id << ": its attempt ran once";
    EXPECT_EQ(stack.Runs(id), attempt)
        << "task " << id << ": runs on the executors";
  }
}

}  // namespace testing_util
