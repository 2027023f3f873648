// Runs every example of the docs against a real local stack, so the docs
// cannot drift: each ```console block of README.md and docs/*.md is a
// transcript ("$ command", then its output) executed by bash with the stack's
// addresses in place of the local stack's fixed ones
// (127.0.0.1:8080/8081/8082). And checks that the operator guide lists every
// flag of every process (the engine guard's too), and that every test
// deploy/SECURITY.md and docs/TESTS.md name exists.
#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/docs/transcript.h"
#include "tests/e2e/local_stack.h"
#include "tests/testing/process.h"
#include "tests/testing/test_stack.h"

namespace {

using docs_testing::OutputMatches;
using docs_testing::ParseConsoleBlocks;
using docs_testing::Step;

TEST(TranscriptTest, ParsesConsoleBlocksOnly) {
  std::vector<Step> steps = ParseConsoleBlocks(
      "text\n```sh\n$ not run\n```\n```console\n$ echo a \\\n  b\na b\n$ "
      "true\n\n"
      "$ echo 'x\n> y'\nx\ny\n```\n");
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[0].command, "echo a \\\n  b");
  EXPECT_THAT(steps[0].expected, testing::ElementsAre("a b"));
  EXPECT_TRUE(steps[1].expected.empty());
  EXPECT_EQ(steps[2].command, "echo 'x\ny'");
  EXPECT_THAT(steps[2].expected, testing::ElementsAre("x", "y"));
}

TEST(TranscriptTest, EllipsisMatchesLinesAndCharacters) {
  EXPECT_TRUE(OutputMatches({"a", "b"}, "a\nb\n"));
  EXPECT_FALSE(OutputMatches({"a", "b"}, "a\nc\n"));
  EXPECT_FALSE(OutputMatches({"a"}, "a\nb\n"));
  EXPECT_TRUE(OutputMatches({"...", "b"}, "x\ny\nb\n"));
  EXPECT_TRUE(OutputMatches({"...", "b", "..."}, "b\n"));
  EXPECT_TRUE(OutputMatches({"task ... ended..."}, "task 12ab ended (3s)\n"));
  EXPECT_FALSE(OutputMatches({"task ... ended"}, "task 12ab ended (3s)\n"));
  EXPECT_TRUE(OutputMatches({}, ""));
}

TEST(TranscriptTest, ScriptFramesEachStepAndKeepsItsStatus) {
  std::vector<Step> steps = ParseConsoleBlocks(
      "```console\n$ echo hi; (exit 3)\nhi\n$ echo $?\n3\n$ printf "
      "x\nx\n```\n");
  absl::StatusOr<testing_util::CommandResult> r = testing_util::RunCommand(
      {"/bin/bash", "-c", docs_testing::BuildScript(steps)}, absl::Seconds(30));
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<docs_testing::Ran> ran = docs_testing::ParseRun(r->out);
  ASSERT_EQ(ran.size(), 3u) << r->out;
  EXPECT_EQ(ran[0].output, "hi\n");
  EXPECT_EQ(ran[0].exit_code, 3);
  EXPECT_EQ(ran[1].output, "3\n");
  EXPECT_EQ(ran[1].exit_code, 0);
  EXPECT_EQ(ran[2].output, "x");
}

using DocsTest =
    testing_util::LocalStackSuite<testing::TestWithParam<const char*>>;

TEST_P(DocsTest, EveryConsoleExampleRunsAsWritten) {
  const std::string markdown =
      testing_util::ReadFile(testing_util::SourcePath(GetParam()));
  ASSERT_FALSE(markdown.empty()) << GetParam();
  std::vector<Step> steps = ParseConsoleBlocks(absl::StrReplaceAll(
      markdown,
      {{"127.0.0.1:8080", local_->server_address()},
       {"127.0.0.1:8081", absl::StrCat("127.0.0.1:", local_->worker_port())},
       {"127.0.0.1:8082",
        absl::StrCat("127.0.0.1:", local_->executor_port())}}));
  ASSERT_FALSE(steps.empty()) << GetParam() << " has no ```console example";
  const std::string dir = testing_util::MakeTempDir("docs");
  const std::string script =
      absl::StrCat("cd ", dir, "\n", docs_testing::BuildScript(steps));
  absl::StatusOr<testing_util::CommandResult> r = testing_util::RunCommand(
      {"/bin/bash", "-c", script}, absl::Seconds(240),
      {absl::StrCat("PATH=", testing_util::BinaryPath(""), ":",
                    testing_util::SourcePath("node_modules/.bin"),
                    ":/usr/bin:/bin"),
       "CRUCIBLE_SERVER=" + local_->server_address()});
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<docs_testing::Ran> ran = docs_testing::ParseRun(r->out);
  ASSERT_EQ(ran.size(), steps.size()) << r->out;
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& step = steps[i];
    const std::string where =
        absl::StrCat(GetParam(), ":", step.line, ": $ ", step.command);
    // Only a command whose status the next step shows ("echo $?") may fail.
    const bool status_shown =
        i + 1 < steps.size() && steps[i + 1].command == "echo $?";
    if (!status_shown) {
      EXPECT_EQ(ran[i].exit_code, 0) << where << "\noutput:\n" << ran[i].output;
    }
    EXPECT_TRUE(OutputMatches(step.expected, ran[i].output))
        << where << "\nexpected:\n"
        << absl::StrJoin(step.expected, "\n") << "\nactual:\n"
        << ran[i].output;
  }
}

INSTANTIATE_TEST_SUITE_P(Docs, DocsTest,
                         testing::Values("README.md", "docs/user-guide.md",
                                         "docs/cookbook.md",
                                         "docs/operator-guide.md"),
                         [](const testing::TestParamInfo<const char*>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (!isalnum(static_cast<unsigned char>(c)))
                               c = '_';
                           }
                           return name;
                         });

// The flags a binary defines in its main.cc, or in a common/*_flags.cc that
// several processes share (common/metrics_flags.cc), from --helpfull.
std::vector<std::string> MainFlags(const std::string& binary) {
  absl::StatusOr<testing_util::CommandResult> r = testing_util::RunCommand(
      {testing_util::BinaryPath(binary), "--helpfull"}, absl::Seconds(30));
  EXPECT_TRUE(r.ok()) << r.status();
  std::vector<std::string> flags;
  bool in_main = false;
  for (absl::string_view line :
       absl::StrSplit(r.ok() ? r->out + r->err : "", '\n')) {
    if (absl::StartsWith(line, "  Flags from ")) {
      in_main = absl::EndsWith(line, "/main.cc:") ||
                (absl::StrContains(line, "/common/") &&
                 absl::EndsWith(line, "_flags.cc:"));
      continue;
    }
    absl::string_view flag = absl::StripLeadingAsciiWhitespace(line);
    if (in_main && absl::StartsWith(line, "    --")) {
      flags.emplace_back(flag.substr(0, flag.find_first_of(" ")));
    }
  }
  return flags;
}

TEST(OperatorGuideTest, ListsEveryFlagOfEveryProcess) {
  const std::string guide = testing_util::ReadFile(
      testing_util::SourcePath("docs/operator-guide.md"));
  for (const char* binary : {"crucible-server", "crucible-worker",
                             "crucible-executor", "crucible-docker-guard"}) {
    // The binary's own section: from its heading to the next heading.
    const std::string heading = absl::StrCat("### ", binary, "\n");
    size_t begin = guide.find(heading);
    ASSERT_NE(begin, std::string::npos) << "no section " << heading;
    size_t end = std::min(guide.find("\n### ", begin + heading.size()),
                          guide.find("\n## ", begin + heading.size()));
    const std::string section = guide.substr(begin, end - begin);
    std::vector<std::string> flags = MainFlags(binary);
    EXPECT_GE(flags.size(), 3u) << binary;
    for (const std::string& flag : flags) {
      EXPECT_THAT(section, testing::HasSubstr(absl::StrCat("`", flag, "`")))
          << binary << " has " << flag
          << " but the operator guide does not list it";
    }
  }
}

// The tests a document names, in backquotes (as SecurityChecklistTest
// always read them: any stretch between two backquotes without a space):
// files (a `tests/...`
// path, or a file name ending in _test.cc, _test.py or _test.sh) and test
// cases (`Suite.Name` of a gtest TEST, TEST_F or TEST_P, or `test_name` of
// a Python test function).
struct NamedTests {
  std::vector<std::string> files;
  std::vector<std::string> cases;
};

NamedTests NamesIn(absl::string_view text) {
  static const std::regex kCase(R"re(^([A-Z]\w*\.[A-Z]\w*|test_\w+)$)re");
  NamedTests named;
  for (absl::string_view quoted : absl::StrSplit(text, '`')) {
    const std::string q(quoted);
    if (q.empty() || q.find_first_of(" \t\n|") != std::string::npos) continue;
    const bool path = absl::StartsWith(q, "tests/");
    const bool test_file = absl::EndsWith(q, "_test.cc") ||
                           absl::EndsWith(q, "_test.py") ||
                           absl::EndsWith(q, "_test.sh");
    if (path || test_file) {
      named.files.push_back(q);
    } else if (std::regex_match(q, kCase)) {
      named.cases.push_back(q);
    }
  }
  return named;
}

// The file a name in a document stands for: a `tests/...` path as it is,
// a bare file name wherever it is under tests/; empty if it is nowhere.
std::string FindTestFile(const std::string& name) {
  if (absl::StartsWith(name, "tests/")) {
    const std::string path = testing_util::SourcePath(name);
    return std::filesystem::exists(path) ? path : "";
  }
  for (const auto& entry : std::filesystem::recursive_directory_iterator(
           testing_util::SourcePath("tests"))) {
    if (entry.path().filename() == name) return entry.path().string();
  }
  return "";
}

// Whether the source in `file` defines the test case `name` (see NamesIn).
bool DefinesCase(const std::string& file, const std::string& name) {
  const std::string source = testing_util::ReadFile(file);
  if (absl::StartsWith(name, "test_")) {
    return source.find("def " + name + "(") != std::string::npos;
  }
  const std::vector<std::string> parts = absl::StrSplit(name, '.');
  const std::regex definition(absl::StrCat(R"(\bTEST(_F|_P)?\(\s*)", parts[0],
                                           R"(\s*,\s*)", parts[1], R"(\s*\))"));
  return std::regex_search(source, definition);
}

// Fails for each test file `doc` names that does not exist; returns the
// files found, by the name the document gives them.
std::map<std::string, std::string> ExpectNamedFilesExist(
    const std::string& doc, const NamedTests& named) {
  std::map<std::string, std::string> found;
  for (const std::string& name : named.files) {
    const std::string file = FindTestFile(name);
    EXPECT_FALSE(file.empty())
        << doc << " names " << name << ", which is nowhere under tests/";
    if (!file.empty()) found[name] = file;
  }
  return found;
}

// Every test deploy/SECURITY.md names as a check exists: a `tests/...` path,
// or a file name ending in _test.cc, _test.py or _test.sh found under tests/.
TEST(SecurityChecklistTest, NamesOnlyTestsThatExist) {
  const std::string checklist =
      testing_util::ReadFile(testing_util::SourcePath("deploy/SECURITY.md"));
  ASSERT_FALSE(checklist.empty());
  const NamedTests named = NamesIn(checklist);
  EXPECT_GE(named.files.size(), 10u) << "the checklist names hardly any test";
  ExpectNamedFilesExist("deploy/SECURITY.md", named);
}

// docs/TESTS.md maps each promise of the docs to the test that checks it:
// on each row of its tables, every file named exists and every test case
// named is defined in one of the row's files.
TEST(TestsMapTest, NamesOnlyTestsThatExist) {
  const std::string map =
      testing_util::ReadFile(testing_util::SourcePath("docs/TESTS.md"));
  ASSERT_FALSE(map.empty());
  int rows = 0;
  for (absl::string_view line : absl::StrSplit(map, '\n')) {
    if (!absl::StartsWith(line, "|")) continue;
    const NamedTests named = NamesIn(line);
    if (named.cases.empty()) continue;
    ++rows;
    SCOPED_TRACE(line);
    ASSERT_FALSE(named.files.empty()) << "a row names cases but no file";
    const std::map<std::string, std::string> files =
        ExpectNamedFilesExist("docs/TESTS.md", named);
    for (const std::string& test_case : named.cases) {
      bool defined = false;
      for (const auto& [name, file] : files) {
        defined = defined || DefinesCase(file, test_case);
      }
      EXPECT_TRUE(defined) << "docs/TESTS.md names " << test_case
                           << ", which none of the row's files defines";
    }
  }
  EXPECT_GE(rows, 50) << "docs/TESTS.md maps hardly any promise";
}

}  // namespace
