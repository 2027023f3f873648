#include "tests/docs/transcript.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace docs_testing {
namespace {

constexpr char kBegin[] = "@@crucible-docs-begin@@";
constexpr char kEnd[] = "@@crucible-docs-end ";

// Matches one line against a pattern where "..." stands for any characters.
bool LineMatches(absl::string_view pattern, absl::string_view line) {
  std::vector<absl::string_view> parts = absl::StrSplit(pattern, "...");
  if (parts.size() == 1) return pattern == line;
  if (!absl::ConsumePrefix(&line, parts.front())) return false;
  for (size_t i = 1; i + 1 < parts.size(); ++i) {
    size_t at = line.find(parts[i]);
    if (at == absl::string_view::npos) return false;
    line.remove_prefix(at + parts[i].size());
  }
  return line.size() >= parts.back().size() &&
         absl::EndsWith(line, parts.back());
}

bool Match(const std::vector<std::string>& expected, size_t e,
           const std::vector<std::string>& actual, size_t a) {
  if (e == expected.size()) return a == actual.size();
  if (expected[e] == "...") {
    for (size_t skip = a; skip <= actual.size(); ++skip) {
      if (Match(expected, e + 1, actual, skip)) return true;
    }
    return false;
  }
  return a < actual.size() && LineMatches(expected[e], actual[a]) &&
         Match(expected, e + 1, actual, a + 1);
}

}  // namespace

std::vector<Step> ParseConsoleBlocks(const std::string& markdown) {
  std::vector<Step> steps;
  bool in_console = false, in_other = false, continued = false;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(markdown, '\n')) {
    ++number;
    if (absl::StartsWith(line, "```")) {
      if (in_console || in_other) {
        in_console = in_other = continued = false;
      } else {
        in_console = absl::StripAsciiWhitespace(line.substr(3)) == "console";
        in_other = !in_console;
      }
      continue;
    }
    if (!in_console) continue;
    if (continued) {
      absl::StrAppend(&steps.back().command, "\n", line);
    } else if (absl::StartsWith(line, "> ") && !steps.empty() &&
               steps.back().expected.empty()) {
      // bash's secondary prompt: the command goes on (e.g. inside quotes).
      absl::StrAppend(&steps.back().command, "\n", line.substr(2));
    } else if (absl::StartsWith(line, "$ ")) {
      steps.push_back(Step{std::string(line.substr(2)), {}, number});
    } else if (!steps.empty()) {
      steps.back().expected.emplace_back(line);
    }
    continued = absl::EndsWith(line, "\\") && !steps.empty();
  }
  // A blank line before the closing fence is layout, not output.
  for (Step& step : steps) {
    while (!step.expected.empty() && step.expected.back().empty())
      step.expected.pop_back();
  }
  return steps;
}

std::string BuildScript(const std::vector<Step>& steps) {
  // Each step's status is kept and restored with (exit N), so that a
  // documented "echo $?" sees the status of the command before it.
  std::string script = "exec 2>&1\n";
  for (const Step& step : steps) {
    absl::StrAppend(&script, "printf '%s\\n' '", kBegin,
                    "'; (exit ${__rc:-0})\n", step.command,
                    "\n__rc=$?; printf '\\n", kEnd, "%d@@\\n' \"$__rc\"\n");
  }
  return script;
}

std::vector<Ran> ParseRun(const std::string& output) {
  std::vector<Ran> runs;
  size_t at = 0;
  while (true) {
    size_t begin = output.find(absl::StrCat(kBegin, "\n"), at);
    if (begin == std::string::npos) break;
    begin += sizeof(kBegin);  // the marker and its newline
    size_t end = output.find(kEnd, begin);
    if (end == std::string::npos) break;
    Ran ran;
    ran.output = output.substr(begin, end - begin);
    // BuildScript put a newline before the end marker.
    if (absl::EndsWith(ran.output, "\n")) ran.output.pop_back();
    size_t close = output.find("@@", end + sizeof(kEnd) - 1);
    if (close == std::string::npos) break;
    const size_t code_at = end + sizeof(kEnd) - 1;
    if (!absl::SimpleAtoi(output.substr(code_at, close - code_at),
                          &ran.exit_code))
      break;
    runs.push_back(std::move(ran));
    at = close;
  }
  return runs;
}

bool OutputMatches(const std::vector<std::string>& expected,
                   const std::string& actual) {
  std::vector<std::string> lines;
  if (!actual.empty()) {
    lines = absl::StrSplit(actual, '\n');
    if (absl::EndsWith(actual, "\n")) lines.pop_back();
  }
  return Match(expected, 0, lines, 0);
}

}  // namespace docs_testing
