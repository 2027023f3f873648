#include "tests/e2e/local_stack.h"

#include <grpcpp/grpcpp.h>
#include <sys/wait.h>

#include <chrono>
#include <csignal>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/process_flags.h"
#include "tests/testing/test_stack.h"
#include "tests/testing/wait_ready.h"

namespace testing_util {

absl::Status LocalStack::StartOne(const std::string& name,
                                  std::vector<std::string> args,
                                  std::optional<Process>& process, int& port) {
  const std::string port_file = absl::StrCat(dir_, "/", name, ".port");
  args.insert(args.begin(), BinaryPath("crucible-" + name));
  args.push_back("--listen=127.0.0.1:0");
  args.push_back("--port_file=" + port_file);
  args = WithTestFlags(std::move(args));
  absl::StatusOr<Process> started =
      Process::Start(args, absl::StrCat(dir_, "/", name, ".log"));
  if (!started.ok()) return started.status();
  process.emplace(*std::move(started));
  absl::StatusOr<int> bound =
      WaitForPortFile(port_file, *process, absl::Seconds(30));
  if (!bound.ok()) return bound.status();
  port = *bound;
  return absl::OkStatus();
}

absl::Status LocalStack::Start(const std::string& docker_host) {
  dir_ = MakeTempDir("stack");
  absl::Status s = StartOne("server", {"--db=" + dir_ + "/crucible.db"},
                            server_, server_port_);
  if (!s.ok()) return s;
  s = StartOne("executor", {"--docker_host=" + docker_host}, executor_,
               executor_port_);
  if (!s.ok()) return s;
  s = StartOne("worker",
               {absl::StrCat("--server=127.0.0.1:", server_port_),
                absl::StrCat("--executors=127.0.0.1:", executor_port_)},
               worker_, worker_port_);
  if (!s.ok()) return s;
  // Ready: the executor's engine answers, the worker has its stream to the
  // server and the executor in rotation.
  for (const auto& [name, port] :
       {std::pair<const char*, int>{"executor", executor_port_},
        {"worker", worker_port_}}) {
    s = WaitReady(name, port, absl::Seconds(60));
    if (!s.ok()) return s;
  }
  tasks_ = crucible::v1::TaskService::NewStub(grpc::CreateChannel(
      server_address(), grpc::InsecureChannelCredentials()));
  return absl::OkStatus();
}

absl::Status LocalStack::Stop() {
  absl::Status first = absl::OkStatus();
  const std::pair<const char*, std::optional<Process>*> order[] = {
      {"worker", &worker_}, {"executor", &executor_}, {"server", &server_}};
  for (const auto& [name, process] : order) {
    if (!process->has_value()) continue;
    absl::StatusOr<int> status = (*process)->Stop(SIGTERM, absl::Seconds(15));
    if (first.ok()) {
      if (!status.ok()) {
        first =
            absl::DeadlineExceededError(absl::StrCat(name, " ignored SIGTERM"));
      } else if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
        first = absl::InternalError(
            absl::StrCat(name, " exited with wait status ", *status));
      }
    }
  }
  return first;
}

std::string LocalStack::server_address() const {
  return absl::StrCat("127.0.0.1:", server_port_);
}

std::string LocalStack::Logs() const {
  std::string out;
  for (const char* name : {"server", "executor", "worker"}) {
    absl::StrAppend(&out, "==== ", name, " log\n",
                    ReadFile(absl::StrCat(dir_, "/", name, ".log")), "\n");
  }
  return out;
}

crucible::v1::Task GetTaskOrFail(crucible::v1::TaskService::Stub& tasks,
                                 const std::string& id) {
  crucible::v1::GetTaskRequest request;
  request.set_task_id(id);
  crucible::v1::GetTaskResponse response;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Status s = tasks.GetTask(&ctx, request, &response);
  EXPECT_TRUE(s.ok()) << "GetTask " << id << ": " << s.error_message();
  return response.task();
}

}  // namespace testing_util
