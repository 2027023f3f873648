#ifndef CRUCIBLE_TESTS_CHAOS_CHAOS_STACK_H_
#define CRUCIBLE_TESTS_CHAOS_CHAOS_STACK_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "tests/testing/process.h"

namespace testing_util {

// Real crucible processes for the chaos scenarios: one crucible-server whose
// port and SQLite file survive its restarts, and executors and workers by
// name, any of which a test may kill with any signal. Every process logs
// with GLOG_v=1 to NAME.log in a temp dir (a restarted server to
// server-2.log, ...). Confined to the test thread; what is still running is
// stopped when destroyed.
class ChaosStack {
 public:
  explicit ChaosStack(std::string docker_host);
  // SIGTERM to what still runs, the last started first.
  ~ChaosStack();

  // Starts the server on an ephemeral port with `args` added.
  absl::Status StartServer(std::vector<std::string> args = {});
  // Starts the server again (it must have exited) on the same port, with
  // the same database and arguments.
  absl::Status RestartServer();
  // Instead of StartServer: `n` servers named ha-1 ... ha-n on the
  // PostgreSQL store `uri`, each on a port of its own, started in order
  // (ha-1 leads: the next starts once it holds the lease); workers and this
  // stack's client reach whichever server leads
  // (common::RouteToServingServer). Returns their ports.
  absl::StatusOr<std::vector<int>> StartServers(
      int n, const std::string& uri, std::vector<std::string> args = {});
  // An executor with `slots`; returns its address.
  absl::StatusOr<std::string> StartExecutor(const std::string& name, int slots);
  // A worker of the server on `executor` (an address), `args` added;
  // returns once it is ready (its stream up, the executor in rotation).
  absl::Status StartWorker(const std::string& name, const std::string& executor,
                           std::vector<std::string> args = {});
  // Sends `signal` to the process and waits up to `timeout` for it to exit;
  // returns its wait status.
  absl::StatusOr<int> Stop(const std::string& name, int signal,
                           absl::Duration timeout = absl::Seconds(20));

  // Submits `sh -c script` in the busybox test image (with `request_id`, if
  // set); returns the task id, or an error if CreateTask failed.
  absl::StatusOr<std::string> Submit(const std::string& script,
                                     const std::string& request_id = "");
  // GetTask; an error if the call failed.
  absl::StatusOr<crucible::v1::Task> Get(const std::string& id);
  // Polls GetTask (100 ms) until `done` holds for the task; false on timeout.
  bool AwaitTask(const std::string& id,
                 const std::function<bool(const crucible::v1::Task&)>& done,
                 absl::Duration timeout);
  // Every task the server lists (all pages).
  absl::StatusOr<std::vector<crucible::v1::Task>> ListAll();
  // Stdout of one attempt of the task.
  absl::StatusOr<std::string> Stdout(const std::string& id, int attempt);
  // How many Run calls for the task the executors' logs show.
  int Runs(const std::string& task_id) const;

  // The log of `name` (the server's current run for "server").
  std::string Log(const std::string& name) const;
  // Every log, for failure messages.
  std::string Logs() const;
  // Polls `name`'s log until it contains `text`; false on timeout.
  bool WaitForLog(const std::string& name, const std::string& text,
                  absl::Duration timeout);

 private:
  // Starts crucible-<binary> as `name` (log NAME.log), listening on
  // 127.0.0.1:`port` (0: ephemeral); returns the bound port.
  absl::StatusOr<int> Start(const std::string& name,
                            const std::string& log_name,
                            const std::string& binary,
                            std::vector<std::string> args, int port);
  std::string LogPath(const std::string& log_name) const;

  const std::string docker_host_;
  const std::string dir_;
  std::map<std::string, Process> processes_;
  std::vector<std::string> started_;              // names, in start order
  std::map<std::string, std::string> log_names_;  // process name -> log name
  std::vector<std::string> executors_;
  std::vector<std::string> server_args_;
  int server_port_ = 0;
  // What workers and the client dial: 127.0.0.1:<port>, or the ipv4: list
  // of StartServers.
  std::string server_target_;
  int server_runs_ = 0;
  std::unique_ptr<crucible::v1::TaskService::Stub> tasks_;
};

// How every scenario ends: each task of `acked` (every CreateTask that
// returned OK) is listed exactly once and SUCCEEDED in attempt `attempt`,
// its stdout in that attempt is `stdout`, and the executors ran it `attempt`
// times in all. None lost, none completed twice. Fails the test otherwise.
void ExpectEachEndedOnce(ChaosStack& stack,
                         const std::vector<std::string>& acked, int attempt,
                         const std::string& stdout);

}  // namespace testing_util

#endif  // CRUCIBLE_TESTS_CHAOS_CHAOS_STACK_H_
