#include "cli/args.h"

#include <cmath>
#include <cstdint>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace cli {
namespace {

absl::Status Usage(absl::string_view message) {
  return absl::InvalidArgumentError(std::string(message));
}

// Walks the arguments; a flag's value is either after '=' or the next word.
class Cursor {
 public:
  explicit Cursor(const std::vector<std::string>& args) : args_(args) {}
  bool done() const { return i_ >= args_.size(); }
  std::string next() { return args_[i_++]; }
  std::vector<std::string> rest() {
    std::vector<std::string> out(args_.begin() + i_, args_.end());
    i_ = args_.size();
    return out;
  }

 private:
  const std::vector<std::string>& args_;
  size_t i_ = 0;
};

// One flag as written: its name ("--memory", with '_' read as '-'), the
// value after '=' if any, and the cursor to take a separate value from.
struct Flag {
  std::string name;
  std::optional<std::string> inline_value;
  Cursor* cursor;

  bool Is(absl::string_view a, absl::string_view b = "") const {
    return name == a || (!b.empty() && name == b);
  }
  absl::StatusOr<std::string> Value() const {
    if (inline_value.has_value()) return *inline_value;
    if (cursor->done()) return Usage(absl::StrCat(name, " needs a value"));
    return cursor->next();
  }
  // A flag without a value must not be given one.
  absl::Status NoValue() const {
    if (inline_value.has_value())
      return Usage(absl::StrCat(name, " takes no value"));
    return absl::OkStatus();
  }
};

Flag SplitFlag(const std::string& word, Cursor& cursor) {
  Flag flag{word, std::nullopt, &cursor};
  if (size_t eq = word.find('='); eq != std::string::npos) {
    flag.name = word.substr(0, eq);
    flag.inline_value = word.substr(eq + 1);
  }
  if (absl::StartsWith(flag.name, "--")) {
    flag.name = "--" + absl::StrReplaceAll(flag.name.substr(2), {{"_", "-"}});
  }
  return flag;
}

absl::Status AddPair(const std::string& flag, const std::string& text,
                     std::map<std::string, std::string>& into) {
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    return Usage(absl::StrCat(flag, " takes KEY=VALUE, got \"", text, "\""));
  }
  into[text.substr(0, eq)] = text.substr(eq + 1);
  return absl::OkStatus();
}

template <typename Int>
absl::StatusOr<Int> ParseCount(const std::string& flag, const std::string& text,
                               Int min) {
  Int n = 0;
  if (!absl::SimpleAtoi(text, &n) || n < min) {
    return Usage(absl::StrCat(flag, " takes an integer of at least ", min,
                              ", got \"", text, "\""));
  }
  return n;
}

// Handles a global flag; returns false if `flag` is not one.
absl::StatusOr<bool> GlobalFlag(const Flag& flag, Args& args, bool& server_set,
                                bool& help) {
  if (flag.Is("-h", "--help")) {
    help = true;
  } else if (flag.Is("--server")) {
    ASSIGN_OR_RETURN(args.connection.server, flag.Value());
    server_set = true;
  } else if (flag.Is("--token")) {
    ASSIGN_OR_RETURN(args.connection.token, flag.Value());
  } else if (flag.Is("--tls")) {
    RETURN_IF_ERROR(flag.NoValue());
    args.connection.tls = true;
  } else if (flag.Is("--tls-ca", "--ca-cert")) {
    ASSIGN_OR_RETURN(args.connection.ca_cert, flag.Value());
    args.connection.tls = true;
  } else if (flag.Is("--tls-cert")) {
    ASSIGN_OR_RETURN(args.connection.tls_cert, flag.Value());
    args.connection.tls = true;
  } else if (flag.Is("--tls-key")) {
    ASSIGN_OR_RETURN(args.connection.tls_key, flag.Value());
    args.connection.tls = true;
  } else if (flag.Is("--tls-server-name")) {
    ASSIGN_OR_RETURN(args.connection.tls_server_name, flag.Value());
    args.connection.tls = true;
  } else if (flag.Is("-o", "--output")) {
    ASSIGN_OR_RETURN(std::string format, flag.Value());
    if (format == "json") {
      args.output = OutputFormat::kJson;
    } else if (format == "text") {
      args.output = OutputFormat::kText;
    } else {
      return Usage(absl::StrCat("-o takes text or json, got \"", format, "\""));
    }
  } else {
    return false;
  }
  return true;
}

// Fills what no flag set from CRUCIBLE_TLS_*; INVALID_ARGUMENT for a
// client certificate without its key or the other way round.
absl::Status TlsFromEnvironment(const Environment& env, ConnectionArgs& c) {
  const std::pair<std::string*, const std::string*> from_env[] = {
      {&c.ca_cert, &env.tls_ca},
      {&c.tls_cert, &env.tls_cert},
      {&c.tls_key, &env.tls_key},
      {&c.tls_server_name, &env.tls_server_name}};
  for (const auto& [field, value] : from_env) {
    if (field->empty() && !value->empty()) {
      *field = *value;
      c.tls = true;
    }
  }
  if (c.tls_cert.empty() != c.tls_key.empty()) {
    return Usage(
        "--tls-cert and --tls-key go together (or CRUCIBLE_TLS_CERT and "
        "CRUCIBLE_TLS_KEY)");
  }
  return absl::OkStatus();
}

absl::Status SubmitSwitch(const Flag& flag, SubmitArgs& s, bool& handled) {
  handled = true;
  if (flag.Is("--detach", "-d")) {
    s.detach = true;
  } else if (flag.Is("--retry-on-nonzero-exit")) {
    s.retry_on_nonzero_exit = true;
  } else if (flag.Is("--cancel-on-interrupt")) {
    s.cancel_on_interrupt = true;
  } else {
    handled = false;
    return absl::OkStatus();
  }
  return flag.NoValue();
}

absl::Status SubmitFlag(const Flag& flag, SubmitArgs& s) {
  bool handled = false;
  RETURN_IF_ERROR(SubmitSwitch(flag, s, handled));
  if (handled) return absl::OkStatus();
  if (!flag.Is("--image") && !flag.Is("--env", "-e") &&
      !flag.Is("--label", "-l") && !flag.Is("--stdin") &&
      !flag.Is("--workdir", "-w") && !flag.Is("--timeout") &&
      !flag.Is("--memory") && !flag.Is("--cpu") && !flag.Is("--pids") &&
      !flag.Is("--tmpfs") && !flag.Is("--max-output") &&
      !flag.Is("--priority") && !flag.Is("--attempts") &&
      !flag.Is("--request-id") && !flag.Is("--from-file") &&
      !flag.Is("--file") && !flag.Is("--artifact") && !flag.Is("--scratch") &&
      !flag.Is("--out")) {
    return Usage(absl::StrCat("unknown flag ", flag.name, " for submit"));
  }
  ASSIGN_OR_RETURN(std::string v, flag.Value());
  if (flag.Is("--image")) {
    s.image = v;
  } else if (flag.Is("--env", "-e")) {
    RETURN_IF_ERROR(AddPair(flag.name, v, s.env));
  } else if (flag.Is("--label", "-l")) {
    RETURN_IF_ERROR(AddPair(flag.name, v, s.labels));
  } else if (flag.Is("--stdin")) {
    s.stdin_path = v;
  } else if (flag.Is("--workdir", "-w")) {
    s.working_dir = v;
  } else if (flag.Is("--timeout")) {
    ASSIGN_OR_RETURN(s.timeout, ParseTimeout(v));
  } else if (flag.Is("--memory")) {
    ASSIGN_OR_RETURN(s.memory_bytes, ParseMemory(v));
  } else if (flag.Is("--cpu")) {
    ASSIGN_OR_RETURN(s.cpu_millis, ParseCpu(v));
  } else if (flag.Is("--pids")) {
    ASSIGN_OR_RETURN(s.pids_limit, ParseCount<int64_t>(flag.name, v, 1));
  } else if (flag.Is("--tmpfs")) {
    ASSIGN_OR_RETURN(s.tmpfs_bytes, ParseMemory(v));
  } else if (flag.Is("--max-output")) {
    ASSIGN_OR_RETURN(s.max_output_bytes, ParseMemory(v));
  } else if (flag.Is("--priority")) {
    ASSIGN_OR_RETURN(s.priority,
                     ParseCount<int32_t>(flag.name, v, -1'000'000'000));
  } else if (flag.Is("--attempts")) {
    ASSIGN_OR_RETURN(s.max_attempts, ParseCount<int32_t>(flag.name, v, 1));
  } else if (flag.Is("--from-file")) {
    if (v.empty()) return Usage("--from-file needs a file name, or -");
    s.from_file = v;
  } else if (flag.Is("--file")) {
    const size_t eq = v.find('=');
    if (eq == 0 || eq == std::string::npos || eq + 1 == v.size()) {
      return Usage(absl::StrCat(
          "--file wants LOCAL=REMOTE (a local file, and its path relative to "
          "the task's working directory), got \"",
          v, "\""));
    }
    s.files.emplace_back(v.substr(0, eq), v.substr(eq + 1));
  } else if (flag.Is("--artifact")) {
    if (v.empty()) return Usage("--artifact needs a path or pattern");
    s.artifacts.push_back(v);
  } else if (flag.Is("--scratch")) {
    ASSIGN_OR_RETURN(s.scratch_bytes, ParseMemory(v));
  } else if (flag.Is("--out")) {
    if (v.empty()) return Usage("--out needs a directory");
    s.out_dir = v;
  } else {
    s.request_id = v;
  }
  return absl::OkStatus();
}

absl::Status ListFlag(const Flag& flag, ListArgs& l) {
  if (flag.Is("--watch", "-w")) {
    l.watch = true;
    return flag.NoValue();
  }
  if (flag.Is("--all-tenants")) {
    l.all_tenants = true;
    return flag.NoValue();
  }
  ASSIGN_OR_RETURN(std::string v, flag.Value());
  if (flag.Is("--state")) {
    for (absl::string_view part : absl::StrSplit(v, ',', absl::SkipEmpty())) {
      ASSIGN_OR_RETURN(crucible::v1::TaskState state,
                       ParseState(std::string(part)));
      l.states.push_back(state);
    }
  } else if (flag.Is("--label", "-l")) {
    RETURN_IF_ERROR(AddPair(flag.name, v, l.labels));
  } else if (flag.Is("--limit")) {
    ASSIGN_OR_RETURN(l.limit, ParseCount<int>(flag.name, v, 1));
  } else if (flag.Is("--page-token")) {
    l.page_token = v;
  } else if (flag.Is("--interval")) {
    ASSIGN_OR_RETURN(l.interval, ParseTimeout(v));
  } else {
    return Usage(absl::StrCat("unknown flag ", flag.name, " for list"));
  }
  return absl::OkStatus();
}

absl::Status CancelFlag(const Flag& flag, CancelArgs& c) {
  if (flag.Is("--wait")) {
    c.wait = true;
    return flag.NoValue();
  }
  if (!flag.Is("--reason"))
    return Usage(absl::StrCat("unknown flag ", flag.name, " for cancel"));
  ASSIGN_OR_RETURN(c.reason, flag.Value());
  return absl::OkStatus();
}

absl::Status LogsFlag(const Flag& flag, LogsArgs& l) {
  if (flag.Is("--follow", "-f")) {
    l.follow = true;
    return flag.NoValue();
  }
  if (flag.Is("--stdout") || flag.Is("--stderr")) {
    l.stream = flag.Is("--stdout") ? crucible::v1::OUTPUT_STREAM_STDOUT
                                   : crucible::v1::OUTPUT_STREAM_STDERR;
    return flag.NoValue();
  }
  if (flag.Is("--offset")) {
    ASSIGN_OR_RETURN(std::string v, flag.Value());
    ASSIGN_OR_RETURN(l.offset, ParseCount<int64_t>(flag.name, v, 0));
  } else if (flag.Is("--attempt")) {
    ASSIGN_OR_RETURN(std::string v, flag.Value());
    ASSIGN_OR_RETURN(l.attempt, ParseCount<int32_t>(flag.name, v, 1));
  } else {
    return Usage(absl::StrCat("unknown flag ", flag.name, " for logs"));
  }
  return absl::OkStatus();
}

absl::Status ArtifactsFlag(const Flag& flag, ArtifactsArgs& a) {
  if (!flag.Is("--out") && !flag.Is("--attempt")) {
    return Usage(absl::StrCat("unknown flag ", flag.name, " for artifacts"));
  }
  ASSIGN_OR_RETURN(std::string v, flag.Value());
  if (flag.Is("--out")) {
    if (v.empty()) return Usage("--out needs a directory");
    a.out_dir = v;
  } else {
    ASSIGN_OR_RETURN(a.attempt, ParseCount<int32_t>(flag.name, v, 1));
  }
  return absl::OkStatus();
}

absl::Status TokenFlag(const Flag& flag, TokenArgs& t) {
  ASSIGN_OR_RETURN(std::string v, flag.Value());
  if (flag.Is("--name")) {
    t.name = v;
  } else if (flag.Is("--tenant")) {
    t.tenant = v;
  } else if (flag.Is("--role")) {
    if (v == "reader") {
      t.role = crucible::v1::ROLE_READER;
    } else if (v == "user") {
      t.role = crucible::v1::ROLE_USER;
    } else if (v == "admin") {
      t.role = crucible::v1::ROLE_ADMIN;
    } else {
      return Usage(
          absl::StrCat("--role: reader, user or admin, not \"", v, "\""));
    }
  } else if (flag.Is("--ttl")) {
    ASSIGN_OR_RETURN(t.ttl, ParseTimeout(v));
  } else {
    return Usage(absl::StrCat("unknown flag ", flag.name, " for token"));
  }
  return absl::OkStatus();
}

absl::Status CommandFlag(const Flag& flag, Command command, Args& args) {
  switch (command) {
    case Command::kSubmit:
      return SubmitFlag(flag, args.submit);
    case Command::kList:
      return ListFlag(flag, args.list);
    case Command::kCancel:
      return CancelFlag(flag, args.cancel);
    case Command::kLogs:
      return LogsFlag(flag, args.logs);
    case Command::kToken:
      return TokenFlag(flag, args.token);
    case Command::kArtifacts:
      return ArtifactsFlag(flag, args.artifacts);
    case Command::kHealth:
      if (flag.Is("--service")) {
        ASSIGN_OR_RETURN(args.health.service, flag.Value());
        return absl::OkStatus();
      }
      break;
    default:
      break;
  }
  return Usage(absl::StrCat("unknown flag ", flag.name));
}

bool IsFlag(const std::string& word) {
  return word.size() > 1 && word[0] == '-';
}

absl::StatusOr<Command> ParseCommandName(const std::string& word) {
  static const std::pair<const char*, Command> kNames[] = {
      {"submit", Command::kSubmit},       {"get", Command::kGet},
      {"list", Command::kList},           {"cancel", Command::kCancel},
      {"logs", Command::kLogs},           {"watch", Command::kWatch},
      {"health", Command::kHealth},       {"token", Command::kToken},
      {"artifacts", Command::kArtifacts}, {"help", Command::kHelp}};
  for (const auto& [name, command] : kNames) {
    if (word == name) return command;
  }
  return Usage(absl::StrCat("unknown command \"", word, "\""));
}

// Checks what each command requires once everything is parsed.
absl::Status Validate(const std::vector<std::string>& positional,
                      bool server_set, Args& args) {
  switch (args.command) {
    case Command::kSubmit:
      if (args.submit.from_file.has_value()) {
        // The file says everything about its tasks.
        if (args.submit != SubmitArgs{.request_id = args.submit.request_id,
                                      .from_file = args.submit.from_file}) {
          return Usage(
              "submit --from-file takes its tasks from the file: no --image, "
              "command or other task flags (only --request-id)");
        }
        return absl::OkStatus();
      }
      if (args.submit.image.empty()) return Usage("submit needs --image");
      if (args.submit.detach && args.submit.cancel_on_interrupt) {
        return Usage(
            "--cancel-on-interrupt needs a followed task, not --detach");
      }
      if (!args.submit.out_dir.empty()) {
        if (args.submit.artifacts.empty()) {
          return Usage("--out writes the task's artifacts: give --artifact");
        }
        if (args.submit.detach) {
          return Usage(
              "--out needs a followed task, not --detach (then: crucible "
              "artifacts ID --out DIR)");
        }
      }
      return absl::OkStatus();
    case Command::kArtifacts:
      if (args.artifacts.attempt != 0 && args.artifacts.out_dir.empty()) {
        return Usage(
            "--attempt goes with --out (the task's result lists the artifacts "
            "of its latest attempt)");
      }
      [[fallthrough]];
    case Command::kGet:
    case Command::kCancel:
    case Command::kLogs:
    case Command::kWatch:
      if (positional.size() != 1)
        return Usage("this command takes exactly one task id");
      args.task_id = positional[0];
      return absl::OkStatus();
    case Command::kList:
      if (!positional.empty()) return Usage("list takes no arguments");
      return absl::OkStatus();
    case Command::kHealth:
      if (positional.size() > 1)
        return Usage("health takes at most one address");
      if (positional.size() == 1) {
        if (server_set)
          return Usage("health: give the address or --server, not both");
        args.connection.server = positional[0];
      }
      return absl::OkStatus();
    case Command::kToken: {
      using Action = TokenArgs::Action;
      TokenArgs& t = args.token;
      const std::string action = positional.empty() ? "" : positional[0];
      if (action == "create" && positional.size() == 1) {
        t.action = Action::kCreate;
        if (t.name.empty() || t.tenant.empty()) {
          return Usage("token create needs --name and --tenant");
        }
      } else if (action == "list" && positional.size() == 1) {
        t.action = Action::kList;
      } else if (action == "revoke" && positional.size() == 2) {
        t.action = Action::kRevoke;
        t.id = positional[1];
      } else {
        return Usage(
            "token: create --name N --tenant T [--role R] [--ttl D], list, "
            "or revoke ID");
      }
      if (t.action != Action::kCreate &&
          (!t.name.empty() || !t.tenant.empty() || t.ttl.has_value())) {
        return Usage("--name, --tenant, --role and --ttl are for token create");
      }
      return absl::OkStatus();
    }
    case Command::kHelp:
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& argv,
                               const Environment& env) {
  Args args;
  bool server_set = false;
  bool help = false;
  std::optional<Command> command;
  std::vector<std::string> positional;
  Cursor cursor(argv);
  while (!cursor.done()) {
    std::string word = cursor.next();
    if (word == "--") {  // the rest is the task's command (or positional)
      std::vector<std::string> rest = cursor.rest();
      std::vector<std::string>& into =
          command == Command::kSubmit ? args.submit.command : positional;
      into.insert(into.end(), rest.begin(), rest.end());
      break;
    }
    if (!IsFlag(word)) {
      if (!command.has_value()) {
        ASSIGN_OR_RETURN(command, ParseCommandName(word));
      } else if (command ==
                 Command::kSubmit) {  // the task's command starts here
        args.submit.command.push_back(word);
        std::vector<std::string> rest = cursor.rest();
        args.submit.command.insert(args.submit.command.end(), rest.begin(),
                                   rest.end());
      } else {
        positional.push_back(word);
      }
      continue;
    }
    const Flag flag = SplitFlag(word, cursor);
    ASSIGN_OR_RETURN(bool global, GlobalFlag(flag, args, server_set, help));
    if (global) continue;
    if (!command.has_value())
      return Usage(absl::StrCat("unknown flag ", flag.name));
    RETURN_IF_ERROR(CommandFlag(flag, *command, args));
  }
  if (!server_set && !env.server.empty()) args.connection.server = env.server;
  if (args.connection.token.empty()) args.connection.token = env.token;
  RETURN_IF_ERROR(TlsFromEnvironment(env, args.connection));
  args.command = help || !command.has_value() ? Command::kHelp : *command;
  RETURN_IF_ERROR(Validate(positional, server_set, args));
  return args;
}

absl::StatusOr<absl::Duration> ParseTimeout(const std::string& text) {
  absl::Duration d;
  int64_t seconds = 0;
  if (absl::SimpleAtoi(text, &seconds)) {
    d = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(text, &d)) {
    return Usage(
        absl::StrCat("bad duration \"", text, "\" (try 30s, 5m, 1h30m)"));
  }
  if (d <= absl::ZeroDuration() || d == absl::InfiniteDuration()) {
    return Usage(
        absl::StrCat("the duration must be positive, got \"", text, "\""));
  }
  return d;
}

absl::StatusOr<int64_t> ParseMemory(const std::string& text) {
  static const std::pair<const char*, int64_t> kUnits[] = {
      {"Ki", int64_t{1} << 10},
      {"Mi", int64_t{1} << 20},
      {"Gi", int64_t{1} << 30},
      {"Ti", int64_t{1} << 40},
      {"k", 1000},
      {"K", 1000},
      {"M", 1000'000},
      {"G", 1000'000'000},
      {"T", 1000'000'000'000}};
  std::string number = text;
  int64_t unit = 1;
  for (const auto& [suffix, factor] : kUnits) {
    if (absl::EndsWith(text, suffix)) {
      number = text.substr(0, text.size() - std::string(suffix).size());
      unit = factor;
      break;
    }
  }
  int64_t n = 0;
  if (!absl::SimpleAtoi(number, &n) || n <= 0 ||
      n > std::numeric_limits<int64_t>::max() / unit) {
    return Usage(absl::StrCat("bad size \"", text, "\" (try 64Mi, 1Gi, 500M)"));
  }
  return n * unit;
}

absl::StatusOr<int64_t> ParseCpu(const std::string& text) {
  int64_t millis = 0;
  if (absl::EndsWith(text, "m")) {
    if (absl::SimpleAtoi(text.substr(0, text.size() - 1), &millis) &&
        millis > 0) {
      return millis;
    }
  } else if (double cores = 0; absl::SimpleAtod(text, &cores) &&
                               std::isfinite(cores) && cores > 0 &&
                               cores < 1e6) {
    millis = std::llround(cores * 1000);
    if (millis > 0) return millis;
  }
  return Usage(
      absl::StrCat("bad CPU amount \"", text, "\" (try 0.5, 2 or 250m)"));
}

absl::StatusOr<crucible::v1::TaskState> ParseState(const std::string& text) {
  std::string upper = absl::AsciiStrToUpper(text);
  if (!absl::StartsWith(upper, "TASK_STATE_")) upper = "TASK_STATE_" + upper;
  crucible::v1::TaskState state;
  if (!crucible::v1::TaskState_Parse(upper, &state) ||
      state == crucible::v1::TASK_STATE_UNSPECIFIED) {
    return Usage(absl::StrCat("unknown state \"", text,
                              "\" (queued, leased, running, succeeded, failed, "
                              "timed_out, cancelled)"));
  }
  return state;
}

}  // namespace cli
