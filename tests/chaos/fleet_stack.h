#ifndef CRUCIBLE_TESTS_CHAOS_FLEET_STACK_H_
#define CRUCIBLE_TESTS_CHAOS_FLEET_STACK_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "tests/testing/process.h"

namespace chaos {

// A docker-proxy of the test's own (HAProxy with deploy/docker-proxy's
// config, and an engine guard) in front of the shared test engine, on a
// fixed port, so that it can be stopped and started again on that port
// without disturbing the shared proxy. Confined to the test thread.
class PrivateProxy {
 public:
  // Starts the guard and HAProxy on 127.0.0.1:`port`; waits until the
  // proxy answers /_ping. HAProxy's exporter listens on `metrics_bind`
  // (CRUCIBLE_PROXY_METRICS_BIND; empty: a Unix socket in `dir`).
  absl::Status Start(const std::string& dir, const std::string& engine_socket,
                     int port, const std::string& metrics_bind = "");
  // Stops HAProxy only (SIGKILL: an outage, not a drain); the guard stays.
  absl::Status StopProxy();
  // Starts HAProxy again on the same port; waits until it answers.
  absl::Status RestartProxy();
  std::string docker_host() const;

 private:
  absl::Status StartHaproxy();
  std::string dir_, engine_socket_, metrics_bind_;
  int port_ = 0, guard_port_ = 0;
  std::optional<testing_util::Process> guard_, haproxy_;
  int haproxy_starts_ = 0;
};

// crucible-server, one crucible-executor (restartable on its port, with an
// --executor_id_file) and one crucible-worker as real processes. Confined
// to the test thread; stops everything when destroyed.
class FleetStack {
 public:
  absl::Status Start(const std::string& docker_host,
                     std::vector<std::string> executor_args = {});
  // SIGKILL of the executor (no drain, its containers are left running).
  absl::Status KillExecutor();
  // Starts the executor again on the port it had, with the same id file.
  absl::Status RestartExecutor();

  crucible::v1::TaskService::Stub& tasks() { return *tasks_; }
  std::string server_address() const;
  std::string executor_address() const;
  const std::string& executor_id_file() const { return executor_id_file_; }
  std::string executor_log() const;
  std::string Logs() const;

 private:
  absl::Status StartOne(const std::string& name, std::vector<std::string> args,
                        std::optional<testing_util::Process>& process,
                        int& port);
  std::string dir_, docker_host_, executor_id_file_;
  std::vector<std::string> executor_args_;
  std::optional<testing_util::Process> server_, executor_, worker_;
  int server_port_ = 0, executor_port_ = 0, worker_port_ = 0;
  int executor_starts_ = 0;
  std::unique_ptr<crucible::v1::TaskService::Stub> tasks_;
};

// Watches tasks from their creation and counts the terminal events each
// one gets (exactly one expected). Each watch runs on a thread of its own;
// the destructor cancels and joins them. Thread-safe.
class TerminalCounter {
 public:
  explicit TerminalCounter(const std::string& server_address);
  ~TerminalCounter();
  void Watch(const std::string& task_id);
  std::map<std::string, int> Counts();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Creates a busybox task running `sh -c script`; its id.
absl::StatusOr<std::string> Submit(crucible::v1::TaskService::Stub& tasks,
                                   const std::string& script,
                                   absl::Duration timeout);
// GetTask until every task is in a terminal state or `timeout` passes; the
// last seen tasks.
std::vector<crucible::v1::Task> AwaitTerminal(
    crucible::v1::TaskService::Stub& tasks, const std::vector<std::string>& ids,
    absl::Duration timeout);
// Names of the containers on the engine carrying crucible.executor=`id`.
absl::StatusOr<std::vector<std::string>> ContainersOf(
    const std::string& engine_socket, const std::string& id);
// The id written in the executor's id file (waits for it up to 10 s).
std::string ReadExecutorId(const std::string& path);

}  // namespace chaos

#endif  // CRUCIBLE_TESTS_CHAOS_FLEET_STACK_H_
