// crucible: the command-line client of TaskService. See `crucible --help`.
#include <grpc/support/log.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/connection.h"
#include "cli/exit_codes.h"
#include "cli/interrupts.h"

namespace {

std::string Getenv(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

// gRPC's own log lines ("Handshake failed ...") would come before the
// CLI's error line, which already says what went wrong. GRPC_VERBOSITY set
// in the environment brings them back for debugging.
void QuietGrpcLogs() {
  if (std::getenv("GRPC_VERBOSITY") != nullptr) return;
  gpr_set_log_function([](gpr_log_func_args*) {});
}

}  // namespace

int main(int argc, char** argv) {
  // First, so that every thread started later (gRPC's) leaves SIGINT to it.
  cli::Interrupts interrupts;
  QuietGrpcLogs();
  std::vector<std::string> words(argv + 1, argv + argc);
  absl::StatusOr<cli::Args> args = cli::ParseArgs(
      words,
      cli::Environment{Getenv("CRUCIBLE_SERVER"), Getenv("CRUCIBLE_TOKEN"),
                       Getenv("CRUCIBLE_TLS_CA"), Getenv("CRUCIBLE_TLS_CERT"),
                       Getenv("CRUCIBLE_TLS_KEY"),
                       Getenv("CRUCIBLE_TLS_SERVER_NAME")});
  if (!args.ok()) {
    std::fprintf(stderr, "crucible: %s\nRun `crucible --help` for usage.\n",
                 std::string(args.status().message()).c_str());
    return cli::kExitUsage;
  }
  if (args->command == cli::Command::kHelp) {
    std::fputs(cli::HelpText().c_str(), stdout);
    return cli::kExitOk;
  }
  absl::StatusOr<cli::Connection> connection =
      cli::Connection::Open(args->connection);
  if (!connection.ok()) {
    std::fprintf(stderr, "crucible: %s\n",
                 std::string(connection.status().message()).c_str());
    return cli::kExitUsage;
  }
  cli::Terminal terminal;
  terminal.in_is_tty = isatty(STDIN_FILENO) == 1;
  terminal.err_is_tty = isatty(STDERR_FILENO) == 1;
  cli::Commands commands(*std::move(connection), &interrupts, terminal);
  return commands.Run(*args);
}
