#ifndef CRUCIBLE_CLI_COMMANDS_H_
#define CRUCIBLE_CLI_COMMANDS_H_

#include <cstdio>
#include <memory>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/args.h"
#include "crucible/v1/task_service.grpc.pb.h"

namespace cli {

// The subcommands, over a TaskService stub. Writes results to `out`, task
// stderr and diagnostics to `err`; each method returns the process's exit
// code. Confined to one thread.
class Commands {
 public:
  // Deadline of every unary call.
  static constexpr absl::Duration kUnaryDeadline = absl::Seconds(10);

  Commands(std::shared_ptr<grpc::ChannelInterface> channel, FILE* out, FILE* err);

  int Run(const Args& args);
  int Submit(const Args& args);
  int Get(const Args& args);
  int List(const Args& args);

 private:
  // Streams the task's output (follow) until it ends; OK at the end.
  absl::Status FollowOutput(const std::string& task_id);
  // The task once terminal: GetTask, and WatchTask while it is not.
  absl::StatusOr<crucible::v1::Task> WaitForEnd(const std::string& task_id);
  absl::StatusOr<crucible::v1::Task> GetTask(const std::string& task_id);
  int Fail(const absl::Status& status);

  std::unique_ptr<crucible::v1::TaskService::Stub> stub_;
  FILE* out_;
  FILE* err_;
};

}  // namespace cli

#endif  // CRUCIBLE_CLI_COMMANDS_H_
