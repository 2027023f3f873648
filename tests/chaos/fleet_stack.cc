#include "tests/chaos/fleet_stack.h"

#include <grpcpp/grpcpp.h>
#include <sys/wait.h>

#include <chrono>
#include <csignal>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/task_state.h"
#include "executor/docker/engine_client.h"
#include "executor/policy/container_policy.h"
#include "tests/testing/process_flags.h"
#include "tests/testing/test_stack.h"
#include "tests/testing/wait_ready.h"

namespace chaos {

using crucible::v1::Task;
using crucible::v1::TaskState;
using testing_util::Process;

namespace {

std::chrono::system_clock::time_point In(absl::Duration d) {
  return absl::ToChronoTime(absl::Now() + d);
}

// Pings `docker_host` until it answers or `timeout` passes.
absl::Status AwaitPing(const std::string& docker_host, absl::Duration timeout) {
  docker::EngineClientOptions o;
  o.docker_host = docker_host;
  o.request_timeout = absl::Seconds(2);
  auto engine = docker::EngineClient::Create(o);
  if (!engine.ok()) return engine.status();
  absl::Status ping;
  for (absl::Time until = absl::Now() + timeout; absl::Now() < until;) {
    ping = (*engine)->Ping();
    if (ping.ok()) return ping;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return ping;
}

}  // namespace

absl::Status PrivateProxy::Start(const std::string& dir,
                                 const std::string& engine_socket, int port,
                                 const std::string& metrics_bind) {
  dir_ = dir;
  metrics_bind_ =
      metrics_bind.empty() ? dir_ + "/proxy-metrics.sock" : metrics_bind;
  engine_socket_ = engine_socket;
  port_ = port;
  const std::string port_file = dir_ + "/guard.port";
  absl::StatusOr<Process> guard =
      Process::Start({testing_util::BinaryPath("crucible-docker-guard"),
                      "--listen=127.0.0.1:0", "--port_file=" + port_file,
                      "--engine_socket=" + engine_socket_},
                     dir_ + "/guard.log", {"GLOG_logtostderr=1"});
  if (!guard.ok()) return guard.status();
  guard_.emplace(*std::move(guard));
  absl::StatusOr<int> bound =
      testing_util::WaitForPortFile(port_file, *guard_, absl::Seconds(30));
  if (!bound.ok()) return bound.status();
  guard_port_ = *bound;
  return StartHaproxy();
}

absl::Status PrivateProxy::StartHaproxy() {
  absl::StatusOr<Process> haproxy = Process::Start(
      {"/usr/sbin/haproxy", "-db", "-f",
       testing_util::SourcePath("deploy/docker-proxy/haproxy.cfg")},
      absl::StrCat(dir_, "/haproxy-", ++haproxy_starts_, ".log"),
      {absl::StrCat("CRUCIBLE_GUARD_ADDR=127.0.0.1:", guard_port_),
       absl::StrCat("CRUCIBLE_PROXY_BIND=127.0.0.1:", port_),
       "CRUCIBLE_ENGINE_SOCKET=" + engine_socket_,
       "CRUCIBLE_PROXY_METRICS_BIND=" + metrics_bind_});
  if (!haproxy.ok()) return haproxy.status();
  haproxy_.emplace(*std::move(haproxy));
  absl::Status up = AwaitPing(docker_host(), absl::Seconds(20));
  if (!up.ok())
    return absl::UnavailableError(
        absl::StrCat("private proxy: ", up.message()));
  return absl::OkStatus();
}

absl::Status PrivateProxy::StopProxy() {
  if (!haproxy_.has_value()) return absl::OkStatus();
  absl::StatusOr<int> status = haproxy_->Stop(SIGKILL, absl::Seconds(10));
  haproxy_.reset();
  return status.status();
}

absl::Status PrivateProxy::RestartProxy() { return StartHaproxy(); }

std::string PrivateProxy::docker_host() const {
  return absl::StrCat("tcp://127.0.0.1:", port_);
}

absl::Status FleetStack::StartOne(const std::string& name,
                                  std::vector<std::string> args,
                                  std::optional<Process>& process, int& port) {
  const std::string port_file = absl::StrCat(dir_, "/", name, ".port");
  std::remove(port_file.c_str());
  args.insert(args.begin(), testing_util::BinaryPath("crucible-" + name));
  args.push_back(absl::StrCat("--listen=127.0.0.1:", port));
  args.push_back("--port_file=" + port_file);
  args = testing_util::WithTestFlags(std::move(args));
  const int n = name == "executor" ? ++executor_starts_ : 1;
  absl::StatusOr<Process> started =
      Process::Start(args, absl::StrCat(dir_, "/", name, "-", n, ".log"),
                     {"GLOG_logtostderr=1"});
  if (!started.ok()) return started.status();
  process.emplace(*std::move(started));
  absl::StatusOr<int> bound =
      testing_util::WaitForPortFile(port_file, *process, absl::Seconds(30));
  if (!bound.ok()) return bound.status();
  port = *bound;
  return absl::OkStatus();
}

absl::Status FleetStack::Start(const std::string& docker_host,
                               std::vector<std::string> executor_args) {
  dir_ = testing_util::MakeTempDir("fleet");
  docker_host_ = docker_host;
  executor_id_file_ = dir_ + "/executor.id";
  executor_args_ = std::move(executor_args);
  executor_args_.push_back("--docker_host=" + docker_host_);
  executor_args_.push_back("--executor_id_file=" + executor_id_file_);
  absl::Status s = StartOne("server", {"--db=" + dir_ + "/crucible.db"},
                            server_, server_port_);
  if (!s.ok()) return s;
  s = StartOne("executor", executor_args_, executor_, executor_port_);
  if (!s.ok()) return s;
  s = StartOne("worker",
               {absl::StrCat("--server=127.0.0.1:", server_port_),
                absl::StrCat("--executors=127.0.0.1:", executor_port_)},
               worker_, worker_port_);
  if (!s.ok()) return s;
  // Tasks are admitted once the worker has reported its executor.
  s = testing_util::WaitReady("worker", worker_port_, absl::Seconds(60));
  if (!s.ok()) return s;
  tasks_ = crucible::v1::TaskService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_port_),
                          grpc::InsecureChannelCredentials()));
  return absl::OkStatus();
}

absl::Status FleetStack::KillExecutor() {
  if (!executor_.has_value())
    return absl::FailedPreconditionError("no executor");
  absl::StatusOr<int> status = executor_->Stop(SIGKILL, absl::Seconds(10));
  executor_.reset();
  return status.status();
}

absl::Status FleetStack::RestartExecutor() {
  return StartOne("executor", executor_args_, executor_, executor_port_);
}

std::string FleetStack::server_address() const {
  return absl::StrCat("127.0.0.1:", server_port_);
}

std::string FleetStack::executor_address() const {
  return absl::StrCat("127.0.0.1:", executor_port_);
}

std::string FleetStack::executor_log() const {
  std::string out;
  for (int i = 1; i <= executor_starts_; ++i) {
    absl::StrAppend(&out, testing_util::ReadFile(
                              absl::StrCat(dir_, "/executor-", i, ".log")));
  }
  return out;
}

std::string FleetStack::Logs() const {
  std::string out;
  for (const char* name : {"server-1", "worker-1"}) {
    absl::StrAppend(
        &out, "==== ", name, " log\n",
        testing_util::ReadFile(absl::StrCat(dir_, "/", name, ".log")), "\n");
  }
  absl::StrAppend(&out, "==== executor logs\n", executor_log());
  return out;
}

struct TerminalCounter::Impl {
  std::unique_ptr<crucible::v1::TaskService::Stub> stub;
  absl::Mutex mu;
  std::map<std::string, int> counts ABSL_GUARDED_BY(mu);
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts
      ABSL_GUARDED_BY(mu);
  std::vector<std::thread> threads;  // the test thread's
};

TerminalCounter::TerminalCounter(const std::string& server_address)
    : impl_(new Impl) {
  impl_->stub = crucible::v1::TaskService::NewStub(
      grpc::CreateChannel(server_address, grpc::InsecureChannelCredentials()));
}

TerminalCounter::~TerminalCounter() {
  {
    absl::MutexLock lock(&impl_->mu);
    for (auto& ctx : impl_->contexts) ctx->TryCancel();
  }
  for (std::thread& t : impl_->threads) t.join();
}

void TerminalCounter::Watch(const std::string& task_id) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(In(absl::Minutes(2)));
  grpc::ClientContext* raw = ctx.get();
  {
    absl::MutexLock lock(&impl_->mu);
    impl_->counts[task_id] = 0;
    impl_->contexts.push_back(std::move(ctx));
  }
  impl_->threads.emplace_back([this, raw, task_id] {
    crucible::v1::WatchTaskRequest request;
    request.set_task_id(task_id);
    auto reader = impl_->stub->WatchTask(raw, request);
    crucible::v1::WatchTaskResponse response;
    while (reader->Read(&response)) {
      if (!common::IsTerminal(response.event().state())) continue;
      absl::MutexLock lock(&impl_->mu);
      ++impl_->counts[task_id];
    }
    (void)reader->Finish();
  });
}

std::map<std::string, int> TerminalCounter::Counts() {
  absl::MutexLock lock(&impl_->mu);
  return impl_->counts;
}

absl::StatusOr<std::string> Submit(crucible::v1::TaskService::Stub& tasks,
                                   const std::string& script,
                                   absl::Duration timeout) {
  crucible::v1::CreateTaskRequest request;
  crucible::v1::TaskSpec& spec = *request.mutable_spec();
  spec.set_image("localhost/crucible/busybox:latest");
  spec.add_command("sh");
  spec.add_command("-c");
  spec.add_command(script);
  spec.mutable_timeout()->set_seconds(absl::ToInt64Seconds(timeout));
  crucible::v1::CreateTaskResponse response;
  grpc::ClientContext ctx;
  ctx.set_deadline(In(absl::Seconds(10)));
  grpc::Status s = tasks.CreateTask(&ctx, request, &response);
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                        s.error_message());
  }
  return response.task().id();
}

std::vector<Task> AwaitTerminal(crucible::v1::TaskService::Stub& tasks,
                                const std::vector<std::string>& ids,
                                absl::Duration timeout) {
  std::vector<Task> last(ids.size());
  const absl::Time until = absl::Now() + timeout;
  while (true) {
    bool all = true;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (common::IsTerminal(last[i].state())) continue;
      crucible::v1::GetTaskRequest request;
      request.set_task_id(ids[i]);
      crucible::v1::GetTaskResponse response;
      grpc::ClientContext ctx;
      ctx.set_deadline(In(absl::Seconds(5)));
      if (tasks.GetTask(&ctx, request, &response).ok())
        last[i] = response.task();
      all = all && common::IsTerminal(last[i].state());
    }
    if (all || absl::Now() >= until) return last;
    absl::SleepFor(absl::Milliseconds(200));
  }
}

absl::StatusOr<std::vector<std::string>> ContainersOf(
    const std::string& engine_socket, const std::string& id) {
  docker::EngineClientOptions o;
  o.docker_host = "unix://" + engine_socket;
  o.request_timeout = absl::Seconds(10);
  auto engine = docker::EngineClient::Create(o);
  if (!engine.ok()) return engine.status();
  auto listed = (*engine)->ListContainers(policy::kExecutorLabel, id);
  if (!listed.ok()) return listed.status();
  std::vector<std::string> names;
  for (const docker::ContainerSummary& c : *listed) names.push_back(c.name);
  return names;
}

std::string ReadExecutorId(const std::string& path) {
  for (absl::Time until = absl::Now() + absl::Seconds(10);
       absl::Now() < until;) {
    std::string id(absl::StripAsciiWhitespace(testing_util::ReadFile(path)));
    if (!id.empty()) return id;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return "";
}

}  // namespace chaos
