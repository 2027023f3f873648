// crucible: the command-line client of TaskService. See `crucible --help`.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"

int main(int argc, char** argv) {
  std::vector<std::string> words(argv + 1, argv + argc);
  const char* env_server = std::getenv("CRUCIBLE_SERVER");
  absl::StatusOr<cli::Args> args = cli::ParseArgs(words, env_server ? env_server : "");
  if (!args.ok()) {
    std::fprintf(stderr, "crucible: %s\nRun `crucible --help` for usage.\n",
                 std::string(args.status().message()).c_str());
    return cli::kExitUsage;
  }
  if (args->command == cli::Command::kHelp) {
    std::fputs(cli::HelpText().c_str(), stdout);
    return cli::kExitOk;
  }
  cli::Commands commands(
      grpc::CreateChannel(args->server, grpc::InsecureChannelCredentials()), stdout, stderr);
  return commands.Run(*args);
}
