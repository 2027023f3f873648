#include "cli/args.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cli {
namespace {

using testing::ElementsAre;
using testing::HasSubstr;
using testing::Pair;
using testing::UnorderedElementsAre;

absl::StatusOr<Args> Parse(std::vector<std::string> words, std::string env = "") {
  return ParseArgs(words, Environment{env, ""});
}

TEST(ParseArgsTest, SubmitWithEveryFlag) {
  absl::StatusOr<Args> a = Parse(
      {"--server", "h:1", "submit", "--image", "busybox", "--timeout=30s", "--memory", "64Mi",
       "--env", "A=1", "--env=B=x=y", "--label", "team=x", "--priority", "5", "--request-id",
       "r1", "--detach", "--", "sh", "-c", "echo hi --image"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->command, Command::kSubmit);
  EXPECT_EQ(a->connection.server, "h:1");
  EXPECT_EQ(a->submit.image, "busybox");
  EXPECT_EQ(a->submit.timeout, absl::Seconds(30));
  EXPECT_EQ(a->submit.memory_bytes, 64 << 20);
  EXPECT_THAT(a->submit.env, UnorderedElementsAre(Pair("A", "1"), Pair("B", "x=y")));
  EXPECT_THAT(a->submit.labels, ElementsAre(Pair("team", "x")));
  EXPECT_EQ(a->submit.priority, 5);
  EXPECT_EQ(a->submit.request_id, "r1");
  EXPECT_TRUE(a->submit.detach);
  EXPECT_THAT(a->submit.command, ElementsAre("sh", "-c", "echo hi --image"));
}

TEST(ParseArgsTest, SubmitCommandStartsAtFirstPositionalWord) {
  absl::StatusOr<Args> a = Parse({"submit", "--image", "i", "ls", "-l", "--image", "x"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->submit.image, "i");
  EXPECT_THAT(a->submit.command, ElementsAre("ls", "-l", "--image", "x"));
}

TEST(ParseArgsTest, ServerPrecedenceFlagThenEnvThenDefault) {
  EXPECT_EQ(Parse({"get", "t"}, "")->connection.server, "127.0.0.1:8080");
  EXPECT_EQ(Parse({"get", "t"}, "env:1")->connection.server, "env:1");
  EXPECT_EQ(Parse({"--server=flag:2", "get", "t"}, "env:1")->connection.server, "flag:2");
  EXPECT_EQ(Parse({"get", "t", "--server", "late:3"}, "env:1")->connection.server, "late:3");
}

TEST(ParseArgsTest, GetWithJsonOutputAnywhere) {
  absl::StatusOr<Args> a = Parse({"-o", "json", "get", "abc"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->command, Command::kGet);
  EXPECT_EQ(a->task_id, "abc");
  EXPECT_EQ(a->output, OutputFormat::kJson);
  a = Parse({"get", "abc", "--output=json"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->output, OutputFormat::kJson);
}

TEST(ParseArgsTest, ListFilters) {
  absl::StatusOr<Args> a =
      Parse({"list", "--state", "running,QUEUED", "--state=TASK_STATE_FAILED", "--label",
             "k=v", "--limit", "7"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->command, Command::kList);
  EXPECT_THAT(a->list.states,
              ElementsAre(crucible::v1::TASK_STATE_RUNNING, crucible::v1::TASK_STATE_QUEUED,
                          crucible::v1::TASK_STATE_FAILED));
  EXPECT_THAT(a->list.labels, ElementsAre(Pair("k", "v")));
  EXPECT_EQ(a->list.limit, 7);
}

TEST(ParseArgsTest, HelpWinsAndNoCommandIsHelp) {
  EXPECT_EQ(Parse({})->command, Command::kHelp);
  EXPECT_EQ(Parse({"--help"})->command, Command::kHelp);
  EXPECT_EQ(Parse({"submit", "-h"})->command, Command::kHelp);
  EXPECT_EQ(Parse({"help"})->command, Command::kHelp);
}

TEST(ParseArgsTest, UsageErrors) {
  for (const std::vector<std::string>& words : std::vector<std::vector<std::string>>{
           {"frobnicate"},
           {"submit", "--", "echo"},                 // no image
           {"submit", "--image"},                    // no value
           {"submit", "--image", "i", "--bogus", "x"},
           {"submit", "--image", "i", "--env", "NOEQUALS"},
           {"submit", "--image", "i", "--timeout", "soon"},
           {"submit", "--image", "i", "--memory", "lots"},
           {"submit", "--image", "i", "--priority", "high"},
           {"get"},
           {"get", "a", "b"},
           {"list", "--state", "sleeping"},
           {"list", "--limit", "0"},
           {"list", "extra"},
           {"-o", "yaml", "list"},
       }) {
    absl::StatusOr<Args> a = Parse(words);
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument)
        << testing::PrintToString(words);
  }
}

TEST(ParseValuesTest, Timeouts) {
  EXPECT_EQ(*ParseTimeout("30s"), absl::Seconds(30));
  EXPECT_EQ(*ParseTimeout("1m30s"), absl::Seconds(90));
  EXPECT_EQ(*ParseTimeout("45"), absl::Seconds(45));
  EXPECT_EQ(*ParseTimeout("500ms"), absl::Milliseconds(500));
  EXPECT_FALSE(ParseTimeout("0s").ok());
  EXPECT_FALSE(ParseTimeout("-5s").ok());
  EXPECT_FALSE(ParseTimeout("inf").ok());
}

TEST(ParseValuesTest, MemorySizes) {
  EXPECT_EQ(*ParseMemory("64Mi"), 64 << 20);
  EXPECT_EQ(*ParseMemory("1Gi"), int64_t{1} << 30);
  EXPECT_EQ(*ParseMemory("512Ki"), 512 << 10);
  EXPECT_EQ(*ParseMemory("100M"), 100'000'000);
  EXPECT_EQ(*ParseMemory("2G"), 2'000'000'000);
  EXPECT_EQ(*ParseMemory("4096"), 4096);
  EXPECT_FALSE(ParseMemory("Mi").ok());
  EXPECT_FALSE(ParseMemory("-1Mi").ok());
  EXPECT_FALSE(ParseMemory("99999999999Ti").ok());
}

TEST(HelpTextTest, ListsCommandsAndExitCodes) {
  const std::string help = HelpText();
  for (const char* word : {"submit", "get ID", "list", "124", "125", "130", "69", "usage"}) {
    EXPECT_THAT(help, HasSubstr(word));
  }
}

}  // namespace
}  // namespace cli
