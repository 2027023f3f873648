// submit --from-file's pure parts: the flag, reading a tasks file (bad
// lines, comments, request_ids) and splitting it into batches.
#include "cli/task_file.h"

#include <string>
#include <vector>

#include "cli/args.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cli {
namespace {

using testing::HasSubstr;

absl::StatusOr<Args> Parse(std::vector<std::string> words) {
  return ParseArgs(words, Environment{});
}

TEST(FromFileArgsTest, TakesAFileOrStdinAndNoTaskFlags) {
  absl::StatusOr<Args> a = Parse({"submit", "--from-file", "tasks.jsonl"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->command, Command::kSubmit);
  EXPECT_EQ(a->submit.from_file, "tasks.jsonl");
  a = Parse({"-o", "json", "submit", "--from-file=-", "--request-id", "run2"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->submit.from_file, "-");
  EXPECT_EQ(a->submit.request_id, "run2");
  EXPECT_EQ(a->output, OutputFormat::kJson);
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"submit", "--from-file", "f", "--image", "i"},
        {"submit", "--from-file", "f", "echo"},
        {"submit", "--from-file", "f", "--detach"},
        {"submit", "--from-file", "f", "--label", "a=b"},
        {"submit", "--from-file="}}) {
    absl::StatusOr<Args> refused = Parse(bad);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument)
        << bad.back();
  }
  EXPECT_THAT(
      Parse({"submit", "--from-file", "f", "--image", "i"}).status().message(),
      HasSubstr("--from-file"));
}

TEST(TaskFileTest, ReadsOneSpecPerLineAndNamesTheBadLines) {
  const TaskFile file = ParseTaskFile(
      "# a suite\n"
      "{\"image\": \"busybox\", \"command\": [\"echo\", \"1\"]}\n"
      "\n"
      "   \n"
      "{\"image\": \"busybox\", \"command\": [\"echo\", \"2\"]\r\n"
      "{\"image\": \"busybox\", \"nope\": 1}\n"
      "  # indented comment\n"
      "{\"image\": \"busybox\", \"priority\": 3, "
      "\"resources\": {\"memoryBytes\": \"1024\"}}\n"
      "{\"image\": \"busybox\", \"command\": [\"echo\", \"1\"]}",
      "");
  ASSERT_EQ(file.tasks.size(), 3u);
  EXPECT_EQ(file.tasks[0].line, 2);
  EXPECT_EQ(file.tasks[0].request.spec().command(1), "1");
  EXPECT_EQ(file.tasks[1].line, 8);
  EXPECT_EQ(file.tasks[1].request.spec().priority(), 3);
  EXPECT_EQ(file.tasks[1].request.spec().resources().memory_bytes(), 1024);
  EXPECT_EQ(file.tasks[2].line, 9);
  ASSERT_EQ(file.errors.size(), 2u);
  EXPECT_EQ(file.errors[0].first, 5);  // unterminated JSON
  EXPECT_EQ(file.errors[1].first, 6);  // an unknown field
  EXPECT_THAT(file.errors[1].second, HasSubstr("TaskSpec"));
}

TEST(TaskFileTest, RequestIdsAreStableAcrossRunsAndEditsButNotAcrossNames) {
  const std::string a = R"({"image": "x", "command": ["a"]})";
  const std::string b = R"({"image": "x", "command": ["b"]})";
  const TaskFile first = ParseTaskFile(a + "\n" + b + "\n" + a + "\n", "");
  ASSERT_EQ(first.tasks.size(), 3u);
  // The same line twice is two tasks.
  EXPECT_NE(first.tasks[0].request.request_id(),
            first.tasks[2].request.request_id());
  EXPECT_EQ(first.tasks[0].request.request_id().rfind("crucible-file-", 0), 0u);
  EXPECT_LE(first.tasks[0].request.request_id().size(), 128u);
  // The same file again: the same ids. A line inserted before the others
  // changes none of theirs.
  const TaskFile again = ParseTaskFile(R"({"image": "x", "command": ["new"]})"
                                       "\n" +
                                           a + "\n" + b + "\n" + a + "\n",
                                       "");
  ASSERT_EQ(again.tasks.size(), 4u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(again.tasks[i + 1].request.request_id(),
              first.tasks[i].request.request_id());
  }
  // Another run name: other ids.
  const TaskFile other = ParseTaskFile(a + "\n", "nightly-2");
  EXPECT_NE(other.tasks[0].request.request_id(),
            first.tasks[0].request.request_id());
}

TEST(TaskFileTest, BatchesHoldAtMostTheItemsAndBytesGiven) {
  std::vector<FileTask> tasks(2500);
  for (FileTask& t : tasks) t.request.mutable_spec()->set_image("x");
  EXPECT_EQ(SplitBatches(tasks), (std::vector<std::pair<size_t, size_t>>{
                                     {0, 1000}, {1000, 2000}, {2000, 2500}}));
  // By bytes: a large task goes alone, others share.
  std::vector<FileTask> sized(4);
  sized[0].request.mutable_spec()->set_stdin(std::string(400, 'a'));
  sized[1].request.mutable_spec()->set_stdin(std::string(400, 'a'));
  sized[2].request.mutable_spec()->set_stdin(std::string(3000, 'a'));
  sized[3].request.mutable_spec()->set_stdin(std::string(10, 'a'));
  EXPECT_EQ(SplitBatches(sized, 1000, 1000),
            (std::vector<std::pair<size_t, size_t>>{{0, 2}, {2, 3}, {3, 4}}));
  EXPECT_TRUE(SplitBatches({}).empty());
}

}  // namespace
}  // namespace cli
