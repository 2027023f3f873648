// Runs every example of the docs against a real local stack, so the docs
// cannot drift: each ```console block of README.md and docs/*.md is a
// transcript ("$ command", then its output) executed by bash with the stack's
// addresses in place of the local stack's fixed ones
// (127.0.0.1:8080/8081/8082). And checks that the operator guide lists every
// flag of every process (the engine guard's too).
#include <algorithm>
#include <filesystem>
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

// Every test deploy/SECURITY.md names as a check exists: a `tests/...` path,
// or a file name ending in _test.cc, _test.py or _test.sh found under tests/.
TEST(SecurityChecklistTest, NamesOnlyTestsThatExist) {
  const std::string checklist =
      testing_util::ReadFile(testing_util::SourcePath("deploy/SECURITY.md"));
  ASSERT_FALSE(checklist.empty());
  std::vector<std::string> names;
  for (absl::string_view quoted : absl::StrSplit(checklist, '`')) {
    const std::string q(quoted);
    const bool path = absl::StartsWith(q, "tests/");
    const bool test_file = absl::EndsWith(q, "_test.cc") ||
                           absl::EndsWith(q, "_test.py") ||
                           absl::EndsWith(q, "_test.sh");
    if ((path || test_file) && q.find(' ') == std::string::npos) {
      names.push_back(q);
    }
  }
  EXPECT_GE(names.size(), 10u) << "the checklist names hardly any test";
  const std::string tests_dir = testing_util::SourcePath("tests");
  for (const std::string& name : names) {
    if (absl::StartsWith(name, "tests/")) {
      EXPECT_TRUE(std::filesystem::exists(testing_util::SourcePath(name)))
          << "deploy/SECURITY.md names " << name << ", which does not exist";
      continue;
    }
    bool found = false;
    for (const auto& entry :
         std::filesystem::recursive_directory_iterator(tests_dir)) {
      found |= entry.path().filename() == name;
    }
    EXPECT_TRUE(found) << "deploy/SECURITY.md names " << name
                       << ", which is nowhere under tests/";
  }
}

}  // namespace
