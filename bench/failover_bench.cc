// Failover time of crucible-servers on one PostgreSQL store: N servers (one
// leader, the others standbys) and a worker that reaches whichever leads.
// Each trial kills the leader with SIGKILL and measures the time until a
// task submitted after the kill is dispatched to the worker by the new
// leader; the killed server is then started again (as a standby, on its
// port) for the next trial. Prints every trial, the median and the worst.
//
//   deploy/local/postgres start /tmp/pg 25440
//   build/bin/crucible-failover-bench --store=$(cat /tmp/pg/uri)
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/server_process.h"
#include "common/tls.h"
#include "crucible/v1/queue_service.grpc.pb.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "grpcpp/grpcpp.h"

ABSL_FLAG(std::string, store, "", "postgresql:// URI of the store (required)");
ABSL_FLAG(int, trials, 10, "leader kills");
ABSL_FLAG(int, servers, 3, "crucible-server processes");
ABSL_FLAG(absl::Duration, leader_lease, absl::Seconds(2),
          "the servers' --leader_lease");
ABSL_FLAG(std::string, bin_dir, "",
          "directory of crucible-server; default: this binary's");
ABSL_FLAG(std::string, dir, "/tmp/crucible-failover-bench",
          "logs and port files (emptied first)");

namespace {

namespace v1 = crucible::v1;

using bench::Serving;
using bench::Spawn;
using Server = bench::ServerProcess;

// A worker that reconnects whenever its stream ends, completes every
// assignment at once, and notes when each task was dispatched to it.
class Worker {
 public:
  explicit Worker(std::shared_ptr<grpc::Channel> channel)
      : stub_(v1::QueueService::NewStub(channel)),
        thread_([this] { Loop(); }) {}
  ~Worker() {
    stop_ = true;
    {
      absl::MutexLock lock(&mu_);
      if (ctx_ != nullptr) ctx_->TryCancel();
    }
    thread_.join();
  }
  // When `task_id` was dispatched; InfiniteFuture if not yet.
  absl::Time DispatchedAt(const std::string& task_id) {
    absl::MutexLock lock(&mu_);
    auto it = dispatched_.find(task_id);
    return it == dispatched_.end() ? absl::InfiniteFuture() : it->second;
  }

 private:
  void Loop() {
    while (!stop_) {
      grpc::ClientContext ctx;
      // Waiting for a ready server keeps the channel polled: without a call
      // in flight, gRPC notices a server that came back only at its backup
      // poll (every 5 s).
      ctx.set_wait_for_ready(true);
      {
        absl::MutexLock lock(&mu_);
        ctx_ = &ctx;
      }
      auto stream = stub_->Connect(&ctx);
      v1::ConnectRequest hello;
      hello.mutable_hello()->set_worker_id("failover-bench-worker");
      hello.mutable_hello()->set_credits(16);
      v1::ConnectResponse msg;
      if (stream->Write(hello)) {
        while (!stop_ && stream->Read(&msg)) {
          if (!msg.has_assignment()) continue;
          const v1::Assignment& a = msg.assignment();
          {
            absl::MutexLock lock(&mu_);
            dispatched_.emplace(a.task().id(), absl::Now());
          }
          v1::ConnectRequest done;
          v1::AttemptCompletion* c =
              done.mutable_completions()->add_completions();
          c->set_lease_id(a.lease_id());
          c->mutable_result()->set_reason(v1::TERMINATION_REASON_EXITED);
          v1::ConnectRequest credit;
          credit.mutable_credit()->set_credits(1);
          if (!stream->Write(done) || !stream->Write(credit)) break;
        }
      }
      ctx.TryCancel();
      stream->Finish().IgnoreError();
      {
        absl::MutexLock lock(&mu_);
        ctx_ = nullptr;
      }
      absl::SleepFor(absl::Milliseconds(20));  // no leader yet: try again
    }
  }

  std::unique_ptr<v1::QueueService::Stub> stub_;
  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  grpc::ClientContext* ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::map<std::string, absl::Time> dispatched_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string uri = absl::GetFlag(FLAGS_store);
  if (uri.empty()) {
    std::fprintf(stderr, "--store=postgresql://... is required\n");
    return 2;
  }
  const std::string bin = bench::BinDirOr(absl::GetFlag(FLAGS_bin_dir));
  const std::string dir = absl::GetFlag(FLAGS_dir);
  bench::FreshDir(dir);

  std::vector<Server> servers(absl::GetFlag(FLAGS_servers));
  std::vector<std::string> addresses;
  for (size_t i = 0; i < servers.size(); ++i) {
    Server& s = servers[i];
    s.port_file = absl::StrCat(dir, "/server-", i, ".port");
    s.args = {
        bin + "/crucible-server",
        "--insecure",
        "--allow_anonymous",
        "--fleet_admission=false",
        "--store=" + uri,
        absl::StrCat("--server_id=server-", i),
        absl::StrCat("--leader_lease=",
                     absl::FormatDuration(absl::GetFlag(FLAGS_leader_lease))),
        "--listen=127.0.0.1:0",
        "--port_file=" + s.port_file};
    if (!Spawn(s, absl::StrCat(dir, "/server-", i, ".log"))) {
      std::fprintf(stderr, "server %zu did not start; see %s\n", i,
                   dir.c_str());
      return 1;
    }
    // From now on on the same port, so that the address list holds.
    s.args.back() = "--port_file=" + s.port_file;
    s.args[s.args.size() - 2] = absl::StrCat("--listen=127.0.0.1:", s.port);
    addresses.push_back(absl::StrCat("127.0.0.1:", s.port));
  }
  const std::string target =
      absl::StrCat("ipv4:", absl::StrJoin(addresses, ","));
  grpc::ChannelArguments args;
  common::RouteToServingServer(target, args);
  // As the worker's defaults (--initial_reconnect_backoff and
  // --max_reconnect_backoff): a server that comes back is found at once.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  auto channel = grpc::CreateCustomChannel(
      target, grpc::InsecureChannelCredentials(), args);
  auto tasks = v1::TaskService::NewStub(channel);
  Worker worker(channel);

  std::vector<absl::Duration> times;
  int failures = 0;
  for (int trial = 0; trial < absl::GetFlag(FLAGS_trials); ++trial) {
    // The leader: the one server whose health is SERVING.
    int leader = -1;
    for (absl::Time until = absl::Now() + absl::Seconds(30);
         leader < 0 && absl::Now() < until;
         absl::SleepFor(absl::Milliseconds(50))) {
      for (size_t i = 0; i < servers.size(); ++i) {
        if (Serving(servers[i].port)) leader = static_cast<int>(i);
      }
    }
    if (leader < 0) {
      std::fprintf(stderr, "no leader; see %s\n", dir.c_str());
      return 1;
    }
    Server& dead = servers[leader];
    kill(dead.pid, SIGKILL);
    waitpid(dead.pid, nullptr, 0);
    const absl::Time killed = absl::Now();
    std::string task_id;
    while (task_id.empty() && absl::Now() - killed < absl::Seconds(60)) {
      v1::CreateTaskRequest req;
      req.set_request_id(absl::StrCat("failover-", getpid(), "-", trial));
      req.mutable_spec()->set_image("localhost/crucible/busybox:latest");
      req.mutable_spec()->add_command("true");
      v1::CreateTaskResponse resp;
      grpc::ClientContext ctx;
      ctx.set_wait_for_ready(true);
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(2));
      if (tasks->CreateTask(&ctx, req, &resp).ok()) {
        task_id = resp.task().id();
      } else {
        absl::SleepFor(absl::Milliseconds(20));
      }
    }
    absl::Time dispatched = absl::InfiniteFuture();
    while (!task_id.empty() && dispatched == absl::InfiniteFuture() &&
           absl::Now() - killed < absl::Seconds(60)) {
      dispatched = worker.DispatchedAt(task_id);
      if (dispatched == absl::InfiniteFuture()) {
        absl::SleepFor(absl::Milliseconds(5));
      }
    }
    if (dispatched == absl::InfiniteFuture()) {
      ++failures;
      std::printf("trial %d: server-%d killed; no task dispatched in 60s\n",
                  trial, leader);
    } else {
      times.push_back(dispatched - killed);
      std::printf(
          "trial %d: server-%d killed; first task dispatched %s later\n", trial,
          leader, absl::FormatDuration(dispatched - killed).c_str());
    }
    std::fflush(stdout);
    if (!Spawn(dead, absl::StrCat(dir, "/server-", leader, ".log"))) {
      std::fprintf(stderr, "server-%d did not start again\n", leader);
      return 1;
    }
  }
  for (Server& s : servers) {
    kill(s.pid, SIGTERM);
    waitpid(s.pid, nullptr, 0);
  }
  if (times.empty()) return 1;
  std::sort(times.begin(), times.end());
  std::printf("%zu trials, --leader_lease=%s: median %s, worst %s, failed %d\n",
              times.size(),
              absl::FormatDuration(absl::GetFlag(FLAGS_leader_lease)).c_str(),
              absl::FormatDuration(times[times.size() / 2]).c_str(),
              absl::FormatDuration(times.back()).c_str(), failures);
  return failures == 0 ? 0 : 1;
}
