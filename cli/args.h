#ifndef CRUCIBLE_CLI_ARGS_H_
#define CRUCIBLE_CLI_ARGS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crucible/v1/task.pb.h"
#include "crucible/v1/token_service.pb.h"

namespace cli {

inline constexpr char kDefaultServer[] = "127.0.0.1:8080";

enum class Command {
  kHelp,
  kSubmit,
  kGet,
  kList,
  kCancel,
  kLogs,
  kWatch,
  kHealth,
  kToken,
  kArtifacts
};
enum class OutputFormat { kText, kJson };

// How to reach the server, and as whom.
struct ConnectionArgs {
  std::string server = kDefaultServer;
  // An API token or a JWT, sent as "authorization: Bearer TOKEN" on every
  // call when not empty.
  std::string token;
  // Connect with TLS (system roots, or ca_cert).
  bool tls = false;
  // PEM file of the roots that sign the server's certificate (--tls-ca,
  // alias --ca-cert); implies tls.
  std::string ca_cert;
  // PEM client certificate chain and its key (--tls-cert, --tls-key), for
  // a server that asks for one (an executor, a worker's identity); both or
  // neither; imply tls.
  std::string tls_cert;
  std::string tls_key;
  // The name the server's certificate must carry instead of the host of
  // `server` (--tls-server-name), e.g. through a port-forward; implies tls.
  std::string tls_server_name;
};

struct SubmitArgs {
  std::string image;
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> labels;
  // File whose bytes become the task's stdin; "-" is this process's stdin.
  std::optional<std::string> stdin_path;
  std::string working_dir;
  // --file LOCAL=REMOTE: a local file put at REMOTE (relative to the
  // working directory) before the task starts, in flag order.
  std::vector<std::pair<std::string, std::string>> files;
  // --artifact PATTERN: files collected from the working directory after
  // the task exits.
  std::vector<std::string> artifacts;
  // --scratch SIZE: size of the scratch working directory.
  int64_t scratch_bytes = 0;
  // --out DIR: once the task has ended, its collected artifacts are written
  // under DIR (as `crucible artifacts ID --out DIR` does). Needs --artifact.
  std::string out_dir;
  std::optional<absl::Duration> timeout;
  int64_t memory_bytes = 0;
  int64_t cpu_millis = 0;
  int64_t pids_limit = 0;
  int64_t tmpfs_bytes = 0;
  int64_t max_output_bytes = 0;
  int32_t priority = 0;
  // Total attempts (RetryPolicy.max_attempts); 0 means the server's default.
  int32_t max_attempts = 0;
  bool retry_on_nonzero_exit = false;
  std::string request_id;
  bool detach = false;
  // On Ctrl-C while following, cancel the task without asking.
  bool cancel_on_interrupt = false;
  // --from-file: a file of tasks, one TaskSpec in JSON per line ("-" is
  // this process's stdin), submitted in batches and not followed. Excludes
  // every other submit flag but --request-id (which then names the run).
  std::optional<std::string> from_file;

  bool operator==(const SubmitArgs&) const = default;
};

struct ListArgs {
  std::vector<crucible::v1::TaskState> states;
  std::map<std::string, std::string> labels;
  // Tasks shown at most; pages are fetched until this many.
  int limit = 50;
  // Start from this page token (printed by a previous list that stopped at
  // its limit).
  std::string page_token;
  // Keep polling and print tasks whose state changed, until interrupted.
  bool watch = false;
  absl::Duration interval = absl::Seconds(2);
  // Every tenant's tasks (admins only).
  bool all_tenants = false;
};

struct CancelArgs {
  std::string reason;
  // Wait until the task has ended (a running task ends once its container
  // is gone) and exit like `watch`.
  bool wait = false;
};

struct LogsArgs {
  bool follow = false;
  crucible::v1::OutputStream stream = crucible::v1::OUTPUT_STREAM_UNSPECIFIED;
  int64_t offset = 0;
  int32_t attempt = 0;  // 0: the latest
};

// `crucible artifacts ID [--out DIR] [--attempt N]`.
struct ArtifactsArgs {
  // Where to write the collected artifacts; empty: only list them.
  std::string out_dir;
  // The attempt whose bytes to fetch; 0: the latest that has each. Only
  // with out_dir (a task's result lists its latest attempt's artifacts).
  int32_t attempt = 0;
};

// `crucible token create|list|revoke` (admins only).
struct TokenArgs {
  enum class Action { kCreate, kList, kRevoke };
  Action action = Action::kList;
  // create:
  std::string name;
  std::string tenant;
  crucible::v1::Role role = crucible::v1::ROLE_USER;
  std::optional<absl::Duration> ttl;
  // revoke:
  std::string id;
};

struct HealthArgs {
  // The service asked about; empty asks about the whole process.
  std::string service;
};

// A parsed command line.
struct Args {
  Command command = Command::kHelp;
  ConnectionArgs connection;
  OutputFormat output = OutputFormat::kText;
  std::string task_id;  // get, cancel, logs, watch, artifacts
  SubmitArgs submit;
  ArtifactsArgs artifacts;
  ListArgs list;
  CancelArgs cancel;
  LogsArgs logs;
  HealthArgs health;
  TokenArgs token;
};

// What the environment provides: CRUCIBLE_SERVER, CRUCIBLE_TOKEN,
// CRUCIBLE_TLS_CA, CRUCIBLE_TLS_CERT, CRUCIBLE_TLS_KEY,
// CRUCIBLE_TLS_SERVER_NAME.
struct Environment {
  std::string server;
  std::string token;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_server_name;
};

// Parses argv[1..] (`args`). Flags win over `env`, which wins over the
// defaults. Global flags (--server, --token, --tls, --tls-ca/--ca-cert,
// --tls-cert, --tls-key, --tls-server-name, -o/--output,
// -h/--help) may stand anywhere before "--". Flags take their value as
// "--flag=v" or "--flag v"; "_" and "-" are the same in flag names.
// INVALID_ARGUMENT with a readable message on a usage error. Pure.
absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& args,
                               const Environment& env);

// "30s", "1m30s", "2h", "500ms"; a bare number means seconds.
absl::StatusOr<absl::Duration> ParseTimeout(const std::string& text);
// "64Mi", "1Gi", "512Ki", "100M", "1G", "1000k", "1048576" (bytes).
absl::StatusOr<int64_t> ParseMemory(const std::string& text);
// "0.5", "2" (cores) or "500m" (thousandths of a core) -> thousandths.
absl::StatusOr<int64_t> ParseCpu(const std::string& text);
// "running", "RUNNING", "TASK_STATE_RUNNING".
absl::StatusOr<crucible::v1::TaskState> ParseState(const std::string& text);

// The text of `crucible --help`.
std::string HelpText();

}  // namespace cli

#endif  // CRUCIBLE_CLI_ARGS_H_
