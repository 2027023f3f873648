#include "cli/args.h"

#include <cctype>
#include <cstdint>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
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
  const std::string& peek() const { return args_[i_]; }
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

// Splits "--name=value" into name and value; value empty if no '='.
void SplitFlag(const std::string& word, std::string* name, std::optional<std::string>* value) {
  size_t eq = word.find('=');
  if (eq == std::string::npos) {
    *name = word;
    value->reset();
  } else {
    *name = word.substr(0, eq);
    *value = word.substr(eq + 1);
  }
}

absl::StatusOr<std::string> TakeValue(const std::string& name,
                                      const std::optional<std::string>& inline_value,
                                      Cursor& cursor) {
  if (inline_value.has_value()) return *inline_value;
  if (cursor.done()) return Usage(absl::StrCat(name, " needs a value"));
  return cursor.next();
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

// Handles a global flag; returns false if `name` is not one.
absl::StatusOr<bool> GlobalFlag(const std::string& name,
                                const std::optional<std::string>& value, Cursor& cursor,
                                Args& args, bool& server_set, bool& help) {
  if (name == "-h" || name == "--help") {
    help = true;
    return true;
  }
  if (name == "--server") {
    ASSIGN_OR_RETURN(args.server, TakeValue(name, value, cursor));
    server_set = true;
    return true;
  }
  if (name == "-o" || name == "--output") {
    ASSIGN_OR_RETURN(std::string format, TakeValue(name, value, cursor));
    if (format == "json") {
      args.output = OutputFormat::kJson;
    } else if (format == "text") {
      args.output = OutputFormat::kText;
    } else {
      return Usage(absl::StrCat("-o takes text or json, got \"", format, "\""));
    }
    return true;
  }
  return false;
}

absl::Status SubmitFlag(const std::string& name, const std::optional<std::string>& value,
                        Cursor& cursor, SubmitArgs& s) {
  if (name == "--detach" || name == "-d") {
    s.detach = true;
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(std::string v, TakeValue(name, value, cursor));
  if (name == "--image") {
    s.image = v;
  } else if (name == "--timeout") {
    ASSIGN_OR_RETURN(s.timeout, ParseTimeout(v));
  } else if (name == "--memory") {
    ASSIGN_OR_RETURN(s.memory_bytes, ParseMemory(v));
  } else if (name == "--env" || name == "-e") {
    RETURN_IF_ERROR(AddPair(name, v, s.env));
  } else if (name == "--label" || name == "-l") {
    RETURN_IF_ERROR(AddPair(name, v, s.labels));
  } else if (name == "--priority") {
    if (!absl::SimpleAtoi(v, &s.priority)) return Usage("--priority takes an integer");
  } else if (name == "--request-id") {
    s.request_id = v;
  } else {
    return Usage(absl::StrCat("unknown flag ", name, " for submit"));
  }
  return absl::OkStatus();
}

absl::Status ListFlag(const std::string& name, const std::optional<std::string>& value,
                      Cursor& cursor, ListArgs& l) {
  ASSIGN_OR_RETURN(std::string v, TakeValue(name, value, cursor));
  if (name == "--state") {
    for (absl::string_view part : absl::StrSplit(v, ',', absl::SkipEmpty())) {
      ASSIGN_OR_RETURN(crucible::v1::TaskState state, ParseState(std::string(part)));
      l.states.push_back(state);
    }
  } else if (name == "--label" || name == "-l") {
    RETURN_IF_ERROR(AddPair(name, v, l.labels));
  } else if (name == "--limit") {
    if (!absl::SimpleAtoi(v, &l.limit) || l.limit < 1) {
      return Usage("--limit takes a positive integer");
    }
  } else {
    return Usage(absl::StrCat("unknown flag ", name, " for list"));
  }
  return absl::OkStatus();
}

bool IsFlag(const std::string& word) { return word.size() > 1 && word[0] == '-'; }

absl::StatusOr<Command> ParseCommandName(const std::string& word) {
  if (word == "submit") return Command::kSubmit;
  if (word == "get") return Command::kGet;
  if (word == "list") return Command::kList;
  if (word == "help") return Command::kHelp;
  return Usage(absl::StrCat("unknown command \"", word, "\""));
}

// Checks what each command requires once everything is parsed.
absl::Status Validate(const std::vector<std::string>& positional, Args& args) {
  switch (args.command) {
    case Command::kSubmit:
      if (args.submit.image.empty()) return Usage("submit needs --image");
      return absl::OkStatus();
    case Command::kGet:
      if (positional.size() != 1) return Usage("get takes exactly one task id");
      args.task_id = positional[0];
      return absl::OkStatus();
    case Command::kList:
      if (!positional.empty()) return Usage("list takes no arguments");
      return absl::OkStatus();
    case Command::kHelp:
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& argv,
                               const std::string& env_server) {
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
      } else if (command == Command::kSubmit) {  // the task's command starts here
        args.submit.command.push_back(word);
        std::vector<std::string> rest = cursor.rest();
        args.submit.command.insert(args.submit.command.end(), rest.begin(), rest.end());
      } else {
        positional.push_back(word);
      }
      continue;
    }
    std::string name;
    std::optional<std::string> value;
    SplitFlag(word, &name, &value);
    ASSIGN_OR_RETURN(bool global, GlobalFlag(name, value, cursor, args, server_set, help));
    if (global) continue;
    if (command == Command::kSubmit) {
      RETURN_IF_ERROR(SubmitFlag(name, value, cursor, args.submit));
    } else if (command == Command::kList) {
      RETURN_IF_ERROR(ListFlag(name, value, cursor, args.list));
    } else {
      return Usage(absl::StrCat("unknown flag ", name));
    }
  }
  if (!server_set && !env_server.empty()) args.server = env_server;
  args.command = help || !command.has_value() ? Command::kHelp : *command;
  RETURN_IF_ERROR(Validate(positional, args));
  return args;
}

absl::StatusOr<absl::Duration> ParseTimeout(const std::string& text) {
  absl::Duration d;
  int64_t seconds = 0;
  if (absl::SimpleAtoi(text, &seconds)) {
    d = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(text, &d)) {
    return Usage(absl::StrCat("bad duration \"", text, "\" (try 30s, 5m, 1h30m)"));
  }
  if (d <= absl::ZeroDuration() || d == absl::InfiniteDuration()) {
    return Usage(absl::StrCat("the timeout must be positive, got \"", text, "\""));
  }
  return d;
}

absl::StatusOr<int64_t> ParseMemory(const std::string& text) {
  static const std::pair<const char*, int64_t> kUnits[] = {
      {"Ki", int64_t{1} << 10}, {"Mi", int64_t{1} << 20}, {"Gi", int64_t{1} << 30},
      {"Ti", int64_t{1} << 40}, {"k", 1000},  {"K", 1000}, {"M", 1000'000},
      {"G", 1000'000'000},      {"T", 1000'000'000'000}};
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
    return Usage(absl::StrCat("bad memory size \"", text, "\" (try 64Mi, 1Gi, 500M)"));
  }
  return n * unit;
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

namespace cli {

std::string HelpText() {
  return R"(crucible: run tasks in hardened containers on a Crucible server.

Usage:
  crucible [--server HOST:PORT] [-o text|json] COMMAND [FLAGS] [-- ARGS]

Commands:
  submit --image IMG [FLAGS] -- CMD ARGS...
      Creates a task, streams its stdout/stderr to this process's stdout/stderr
      and exits with the task's exit code (see below).
        --image IMG          container image (required)
        --timeout DUR        wall-clock limit, e.g. 30s, 5m (default: executor's)
        --memory SIZE        memory limit, e.g. 64Mi, 1Gi, 500M (default: executor's)
        --env K=V            environment variable (repeatable)
        --label k=v          label (repeatable)
        --priority N         higher runs first (default 0)
        --request-id ID      idempotency key: a retry returns the same task
        --detach, -d         print the task id and exit 0 without waiting
      Interrupting (Ctrl-C) stops following; the task keeps running.
  get ID                 shows one task (-o json: the Task as JSON)
  list [--state S] [--label k=v] [--limit N]
                         lists tasks, newest first (default limit 50); S is one
                         of queued, leased, running, succeeded, failed,
                         timed_out, cancelled (repeatable or comma-separated);
                         -o json prints one task per line
  help                   this text

Global flags (anywhere before "--"):
  --server HOST:PORT     server address; default $CRUCIBLE_SERVER, else 127.0.0.1:8080
  -o, --output FORMAT    text (default) or json
  -h, --help             this text

Exit codes:
  0     success (submit: the task SUCCEEDED)
  1-255 submit: the task FAILED and its process exited with this code
  1     a request failed (the server's error is printed)
  2     usage error
  69    the server is unavailable or did not answer in time
  124   submit: the task TIMED_OUT
  125   submit: the task FAILED without an exit code (out of memory, output
        limit, refused by the executor, infrastructure failures)
  130   submit: the task was CANCELLED
A task's own exit code may coincide with these; `crucible get ID` tells.
)";
}

}  // namespace cli
