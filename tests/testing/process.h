#ifndef CRUCIBLE_TESTS_TESTING_PROCESS_H_
#define CRUCIBLE_TESTS_TESTING_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace testing_util {

// A child process started from a test: argv, extra environment, stdout and
// stderr appended to a log file. Terminated (SIGTERM, then SIGKILL) when
// destroyed. Confined to the thread that created it.
class Process {
 public:
  // Starts argv[0] (a path) with `env` added to the test's environment.
  static absl::StatusOr<Process> Start(std::vector<std::string> argv,
                                       std::string log_path,
                                       std::vector<std::string> env = {});
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  ~Process();

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  bool Running();
  // Sends `signal`, waits up to `timeout` for the exit; returns the wait
  // status (see WIFEXITED) or DEADLINE_EXCEEDED.
  absl::StatusOr<int> Stop(int signal, absl::Duration timeout);
  // Waits up to `timeout` for the process to exit by itself.
  absl::StatusOr<int> Wait(absl::Duration timeout);
  // The log's contents, for failure messages.
  std::string Log() const;

 private:
  Process(pid_t pid, std::string log_path)
      : pid_(pid), log_path_(std::move(log_path)) {}
  pid_t pid_ = -1;
  std::string log_path_;
  bool reaped_ = false;
  int wait_status_ = 0;
};

// Result of running a command to completion.
struct CommandResult {
  int exit_code = -1;  // -1 if killed by a signal or timed out
  std::string out;     // stdout
  std::string err;     // stderr
};

// Runs argv to completion (killed after `timeout`), feeding `stdin_data`.
absl::StatusOr<CommandResult> RunCommand(
    const std::vector<std::string>& argv, absl::Duration timeout,
    const std::vector<std::string>& env = {},
    const std::string& stdin_data = "");

// Waits until `path` holds a port number, or the process dies, or timeout.
absl::StatusOr<int> WaitForPortFile(const std::string& path, Process& process,
                                    absl::Duration timeout);

// A fresh empty directory under the test's temp dir.
std::string MakeTempDir(const std::string& prefix);

// Reads a whole file; empty string if missing.
std::string ReadFile(const std::string& path);

}  // namespace testing_util

#endif  // CRUCIBLE_TESTS_TESTING_PROCESS_H_
