#ifndef CRUCIBLE_CLI_ARGS_H_
#define CRUCIBLE_CLI_ARGS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crucible/v1/task.pb.h"

namespace cli {

inline constexpr char kDefaultServer[] = "127.0.0.1:8080";

enum class Command { kHelp, kSubmit, kGet, kList };
enum class OutputFormat { kText, kJson };

struct SubmitArgs {
  std::string image;
  std::vector<std::string> command;
  std::optional<absl::Duration> timeout;
  int64_t memory_bytes = 0;
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> labels;
  int32_t priority = 0;
  std::string request_id;
  bool detach = false;
};

struct ListArgs {
  std::vector<crucible::v1::TaskState> states;
  std::map<std::string, std::string> labels;
  int limit = 50;
};

// A parsed command line.
struct Args {
  Command command = Command::kHelp;
  std::string server = kDefaultServer;
  OutputFormat output = OutputFormat::kText;
  SubmitArgs submit;
  std::string task_id;  // get
  ListArgs list;
};

// Parses argv[1..] (`args`). The server comes from --server, else
// `env_server` (CRUCIBLE_SERVER) if not empty, else kDefaultServer. Global
// flags (--server, -o/--output, -h/--help) may stand anywhere before "--".
// Flags take their value as "--flag=v" or "--flag v". INVALID_ARGUMENT with
// a readable message on a usage error. Pure.
absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& args,
                               const std::string& env_server);

// "30s", "1m30s", "2h", "500ms"; a bare number means seconds.
absl::StatusOr<absl::Duration> ParseTimeout(const std::string& text);
// "64Mi", "1Gi", "512Ki", "100M", "1G", "1000k", "1048576" (bytes).
absl::StatusOr<int64_t> ParseMemory(const std::string& text);
// "running", "RUNNING", "TASK_STATE_RUNNING".
absl::StatusOr<crucible::v1::TaskState> ParseState(const std::string& text);

// The text of `crucible --help`.
std::string HelpText();

}  // namespace cli

#endif  // CRUCIBLE_CLI_ARGS_H_
