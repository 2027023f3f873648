#ifndef CRUCIBLE_TESTS_E2E_WORKER_CLUSTER_H_
#define CRUCIBLE_TESTS_E2E_WORKER_CLUSTER_H_

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/task_state.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/e2e/local_stack.h"
#include "tests/testing/process.h"
#include "tests/testing/process_flags.h"

// The worker end-to-end tests' harness (worker_e2e_test,
// worker_contract_test): real crucible-server, -executor and -worker
// processes of one test, each on its own 127.0.0.1 port.
namespace worker_e2e {

using crucible::v1::Task;
using crucible::v1::TaskState;
using testing_util::Process;

inline constexpr char kImage[] = "localhost/crucible/busybox:latest";

inline std::chrono::system_clock::time_point In(absl::Duration d) {
  return absl::ToChronoTime(absl::Now() + d);
}

// Processes of one test, each on an ephemeral 127.0.0.1 port, logs in a
// temp dir. Confined to the test thread; kills what is left when destroyed.
class Cluster {
 public:
  explicit Cluster(std::string docker_host)
      : docker_host_(std::move(docker_host)),
        dir_(testing_util::MakeTempDir("workers")) {}

  // Starts crucible-<binary> as `name`; returns its port.
  // `listen_port` 0: an ephemeral one. A name started again (the process
  // before it gone) appends to the same log.
  absl::StatusOr<int> Start(const std::string& name, const std::string& binary,
                            std::vector<std::string> args,
                            int listen_port = 0) {
    const std::string port_file = absl::StrCat(dir_, "/", name, ".port");
    std::remove(port_file.c_str());  // a restart's, not the last run's
    args.insert(args.begin(), testing_util::BinaryPath("crucible-" + binary));
    args.push_back(absl::StrCat("--listen=127.0.0.1:", listen_port));
    args.push_back("--port_file=" + port_file);
    args = testing_util::WithTestFlags(std::move(args));
    // GLOG_v=1: the executor logs every Run with its task id.
    absl::StatusOr<Process> p =
        Process::Start(args, absl::StrCat(dir_, "/", name, ".log"),
                       {"GLOG_v=1", "GLOG_logtostderr=1"});
    if (!p.ok()) return p.status();
    auto [it, added] = processes_.insert_or_assign(name, *std::move(p));
    absl::StatusOr<int> port =
        testing_util::WaitForPortFile(port_file, it->second, absl::Seconds(30));
    if (port.ok()) ports_[name] = *port;
    return port;
  }

  // The server on `listen_port` (0: an ephemeral one), always on the same
  // database: started again on its port, it is a restart.
  absl::Status StartServer(std::vector<std::string> args, int listen_port = 0) {
    args.push_back("--db=" + dir_ + "/crucible.db");
    absl::StatusOr<int> port = Start("server", "server", args, listen_port);
    if (!port.ok()) return port.status();
    tasks_ = crucible::v1::TaskService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", *port), grpc::InsecureChannelCredentials()));
    return absl::OkStatus();
  }
  // An executor with `slots`; returns its address. Its id is `name` and
  // this process's pid: executors of tests running at once share one engine,
  // and an executor removes (reaps, probes) the containers of its id.
  absl::StatusOr<std::string> StartExecutor(const std::string& name,
                                            int slots) {
    absl::StatusOr<int> port =
        Start(name, "executor",
              {"--docker_host=" + docker_host_, absl::StrCat("--slots=", slots),
               absl::StrCat("--executor_id=", name, "-", getpid())});
    if (!port.ok()) return port.status();
    return absl::StrCat("127.0.0.1:", *port);
  }
  // A worker of the server (or of `server_port`, e.g. a relay's).
  absl::Status StartWorker(const std::string& name,
                           std::vector<std::string> args, int server_port = 0) {
    args.push_back(absl::StrCat("--server=127.0.0.1:", server_port != 0
                                                           ? server_port
                                                           : ports_["server"]));
    args.push_back("--worker_id=" + name);
    args.push_back("--heartbeat_interval=500ms");
    args.push_back("--health_interval=200ms");
    args.push_back("--health_retry_max=1s");
    return Start(name, "worker", args).status();
  }

  Process& process(const std::string& name) { return processes_.at(name); }
  std::string Log(const std::string& name) const {
    return testing_util::ReadFile(absl::StrCat(dir_, "/", name, ".log"));
  }
  std::string Logs() const {
    std::string out;
    for (const auto& [name, p] : processes_) {
      absl::StrAppend(&out, "==== ", name, " log\n", Log(name), "\n");
    }
    return out;
  }
  // Waits until `name`'s log contains `text`.
  bool WaitForLog(const std::string& name, const std::string& text,
                  absl::Duration timeout = absl::Seconds(30)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (absl::StrContains(Log(name), text)) return true;
      absl::SleepFor(absl::Milliseconds(50));  // polling a condition
    }
    return false;
  }
  const std::string& dir() const { return dir_; }
  int port(const std::string& name) { return ports_[name]; }

  std::string Submit(const std::vector<std::string>& argv) {
    crucible::v1::CreateTaskRequest req;
    req.mutable_spec()->set_image(kImage);
    for (const std::string& a : argv) req.mutable_spec()->add_command(a);
    req.mutable_spec()->mutable_timeout()->set_seconds(60);
    crucible::v1::CreateTaskResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(In(absl::Seconds(10)));
    grpc::Status s = tasks_->CreateTask(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.task().id();
  }

  // CancelTask of `id`; the call's status.
  grpc::Status Cancel(const std::string& id) {
    crucible::v1::CancelTaskRequest req;
    req.set_task_id(id);
    crucible::v1::CancelTaskResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(In(absl::Seconds(10)));
    return tasks_->CancelTask(&ctx, req, &resp);
  }

  // Every state the task's watch shows until it ends (or until `until`).
  std::vector<TaskState> Watch(
      const std::string& id,
      TaskState until = crucible::v1::TASK_STATE_UNSPECIFIED,
      absl::Duration timeout = absl::Seconds(90)) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(timeout));
    crucible::v1::WatchTaskRequest req;
    req.set_task_id(id);
    auto reader = tasks_->WatchTask(&ctx, req);
    crucible::v1::WatchTaskResponse event;
    std::vector<TaskState> states;
    while (reader->Read(&event)) {
      states.push_back(event.event().state());
      if (states.back() == until) {
        ctx.TryCancel();
        break;
      }
    }
    reader->Finish().ok();  // CANCELLED when we stopped early; the states tell
    return states;
  }

  Task Get(const std::string& id) {
    return testing_util::GetTaskOrFail(*tasks_, id);
  }

  // The stdout of `attempt` (0: the latest).
  std::string Stdout(const std::string& id, int attempt = 0) {
    crucible::v1::StreamTaskOutputRequest req;
    req.set_task_id(id);
    req.set_attempt(attempt);
    grpc::ClientContext ctx;
    ctx.set_deadline(In(absl::Seconds(30)));
    auto reader = tasks_->StreamTaskOutput(&ctx, req);
    crucible::v1::StreamTaskOutputResponse chunk;
    std::string out;
    while (reader->Read(&chunk)) {
      if (chunk.chunk().stream() == crucible::v1::OUTPUT_STREAM_STDOUT) {
        out += chunk.chunk().data();
      }
    }
    EXPECT_TRUE(reader->Finish().ok());
    return out;
  }

  // The executors whose log shows a Run of `task_id`.
  std::vector<std::string> RanOn(
      const std::string& task_id,
      const std::vector<std::string>& executors) const {
    std::vector<std::string> out;
    for (const std::string& e : executors) {
      if (absl::StrContains(Log(e), absl::StrCat(" task ", task_id)))
        out.push_back(e);
    }
    return out;
  }

 private:
  const std::string docker_host_;
  const std::string dir_;
  std::map<std::string, Process> processes_;
  std::map<std::string, int> ports_;
  std::unique_ptr<crucible::v1::TaskService::Stub> tasks_;
};

inline  // Number of terminal states in a watch: a task ends exactly once.
    int
    Ends(const std::vector<TaskState>& states) {
  int n = 0;
  for (TaskState s : states) n += common::IsTerminal(s);
  return n;
}

}  // namespace worker_e2e

#endif  // CRUCIBLE_TESTS_E2E_WORKER_CLUSTER_H_
