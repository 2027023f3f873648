#ifndef CRUCIBLE_CLI_COMMANDS_H_
#define CRUCIBLE_CLI_COMMANDS_H_

#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/args.h"
#include "cli/connection.h"
#include "cli/interrupts.h"
#include "cli/output.h"
#include "crucible/v1/task_service.grpc.pb.h"

namespace cli {

// What the process is attached to.
struct Terminal {
  FILE* in = stdin;
  FILE* out = stdout;
  FILE* err = stderr;
  bool in_is_tty = false;   // Ctrl-C may ask whether to cancel
  bool err_is_tty = false;  // a progress line is shown while following
};

// The subcommands. Writes results to the terminal's out, task stderr and
// diagnostics to its err; each command returns the process's exit code (see
// HelpText()). Confined to one thread (a Progress it starts has its own).
class Commands {
 public:
  // `interrupts` may be null: Ctrl-C is then not handled.
  Commands(Connection connection, Interrupts* interrupts, Terminal terminal);

  int Run(const Args& args);

 private:
  using Task = crucible::v1::Task;

  int Submit(const Args& args);
  int Get(const Args& args);
  int List(const Args& args);
  int ListWatch(const Args& args);
  int Cancel(const Args& args);
  int Logs(const Args& args);
  int Watch(const Args& args);
  int Health(const Args& args);
  int Token(const Args& args);      // tokens.cc
  int Artifacts(const Args& args);  // artifacts.cc

  // submit --from-file: the file's tasks with BatchCreateTasks, their ids
  // printed in order, each bad line said on stderr (batch_submit.cc).
  int SubmitFromFile(const Args& args);
  // Submit, after CreateTask: follows the task in the foreground.
  int Follow(const Args& args, const std::string& task_id);
  // Ctrl-C while following `task_id`: cancel (and wait) or leave it running.
  int OnInterrupt(const SubmitArgs& submit, const std::string& task_id);
  // Writes every COLLECTED artifact of `task`'s result under `dir`, each
  // fetched from `attempt` (0: the latest attempt that has it), and says on
  // stderr which were not collected. Each file written is reported on
  // stdout as its local path (`on_stdout`, -o json: its ArtifactInfo and
  // "file"), or else on stderr as "crucible: wrote ...". A failed download
  // is said and the others are still tried. Returns 0 if every collected
  // artifact was written, else the exit code of the first failure (75 on
  // Ctrl-C, which stops at once) (artifacts.cc).
  int DownloadArtifacts(const Task& task, const std::string& dir,
                        int32_t attempt, OutputFormat format, bool on_stdout);
  // One artifact through GetArtifact into DIR/PATH (see ArtifactFile); the
  // stream is opened again, from the start, after an UNAVAILABLE, up to
  // kArtifactAttempts. Returns the announced info; `written` is DIR/PATH.
  absl::StatusOr<crucible::v1::ArtifactInfo> DownloadArtifact(
      const std::string& task_id, const std::string& path, int32_t attempt,
      const std::string& dir, std::string* written);
  // Attempts of GetArtifact on UNAVAILABLE, the backoff between them, and
  // the deadline of one (an artifact is at most 256 MiB).
  static constexpr int kArtifactAttempts = 4;
  static constexpr absl::Duration kArtifactInitialBackoff =
      absl::Milliseconds(250);
  static constexpr absl::Duration kArtifactMaxBackoff = absl::Seconds(2);
  static constexpr absl::Duration kArtifactDeadline = absl::Minutes(10);

  // The exit code of an ended task, after the line that explains an ending
  // without an exit code (text) or the task itself (json).
  int Ended(const Task& task, OutputFormat format);

  // Attempts of CreateTask on UNAVAILABLE or DEADLINE_EXCEEDED, and the
  // backoff between them (doubling, capped).
  static constexpr int kCreateAttempts = 4;
  static constexpr absl::Duration kCreateInitialBackoff =
      absl::Milliseconds(250);
  static constexpr absl::Duration kCreateMaxBackoff = absl::Seconds(2);

  // CreateTask, retried with the same request (so the same request_id) on
  // UNAVAILABLE and DEADLINE_EXCEEDED, up to kCreateAttempts.
  absl::Status CreateTask(const crucible::v1::CreateTaskRequest& request,
                          crucible::v1::CreateTaskResponse* response);
  // BatchCreateTasks, retried as CreateTask is (every item has a
  // request_id).
  absl::Status BatchCreateTasks(
      const crucible::v1::BatchCreateTasksRequest& request,
      crucible::v1::BatchCreateTasksResponse* response);
  absl::StatusOr<Task> GetTask(const std::string& task_id);
  absl::StatusOr<Task> CancelTask(const std::string& task_id,
                                  const std::string& reason);
  // One ListTasks page.
  absl::StatusOr<crucible::v1::ListTasksResponse> ListPage(
      const ListArgs& list, const std::string& token, int size);
  // A stream that follows a task and ends UNAVAILABLE (its server stopped,
  // or a standby answered during a failover) is opened again, after a
  // backoff (doubling, capped), for up to kResumeFor without an answer.
  static constexpr absl::Duration kResumeFor = absl::Seconds(60);
  static constexpr absl::Duration kResumeInitialBackoff =
      absl::Milliseconds(200);
  static constexpr absl::Duration kResumeMaxBackoff = absl::Seconds(2);
  // Only a stream that was established is: one that answered once, or that
  // follows a task the server just answered for (`established`); a server
  // unreachable from the start is an error at once.
  // Whether a stream that ended with `status` is to be opened again, after
  // sleeping the backoff; says so once per outage. `outage` (infinite
  // future: none) and `backoff` carry the state between tries.
  bool Resume(const grpc::Status& status, const std::string& task_id,
              bool established, absl::Time& outage, absl::Duration& backoff);

  // Streams output to `on_chunk`; interruptible. OK when the stream ended.
  // With follow, resumes after an UNAVAILABLE (above) where it stopped.
  absl::Status StreamOutput(
      const crucible::v1::StreamTaskOutputRequest& request,
      const std::function<void(const crucible::v1::OutputChunk&)>& on_chunk,
      bool established = false);
  // Streams events to `on_event` until the task ends; interruptible (see
  // Interrupts::Scope for `if_interrupted`). Watches again after an
  // UNAVAILABLE (above), from the current state.
  absl::Status WatchEvents(
      const std::string& task_id, bool if_interrupted,
      const std::function<void(const crucible::v1::TaskEvent&)>& on_event,
      bool established = false);
  // The task once it has ended (WatchTask, then GetTask).
  absl::StatusOr<Task> WaitForEnd(const std::string& task_id,
                                  bool if_interrupted);
  // Prints the error line; returns its exit code.
  int Fail(const absl::Status& status);
  bool Interrupted() const;

  Connection connection_;
  std::unique_ptr<crucible::v1::TaskService::Stub> stub_;
  Interrupts* interrupts_;
  Terminal terminal_;
  Output output_;
};

}  // namespace cli

#endif  // CRUCIBLE_CLI_COMMANDS_H_
