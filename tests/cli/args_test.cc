#include "cli/args.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cli {
namespace {

using testing::ElementsAre;
using testing::HasSubstr;
using testing::Pair;
using testing::UnorderedElementsAre;

absl::StatusOr<Args> Parse(std::vector<std::string> words,
                           std::string env = "") {
  return ParseArgs(words, Environment{env, ""});
}

TEST(ParseArgsTest, SubmitWithEveryFlag) {
  absl::StatusOr<Args> a = Parse({"--server",    "h:1",
                                  "submit",      "--image",
                                  "busybox",     "--timeout=30s",
                                  "--memory",    "64Mi",
                                  "--env",       "A=1",
                                  "--env=B=x=y", "--label",
                                  "team=x",      "--priority",
                                  "5",           "--request-id",
                                  "r1",          "--detach",
                                  "--",          "sh",
                                  "-c",          "echo hi --image"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->command, Command::kSubmit);
  EXPECT_EQ(a->connection.server, "h:1");
  EXPECT_EQ(a->submit.image, "busybox");
  EXPECT_EQ(a->submit.timeout, absl::Seconds(30));
  EXPECT_EQ(a->submit.memory_bytes, 64 << 20);
  EXPECT_THAT(a->submit.env,
              UnorderedElementsAre(Pair("A", "1"), Pair("B", "x=y")));
  EXPECT_THAT(a->submit.labels, ElementsAre(Pair("team", "x")));
  EXPECT_EQ(a->submit.priority, 5);
  EXPECT_EQ(a->submit.request_id, "r1");
  EXPECT_TRUE(a->submit.detach);
  EXPECT_THAT(a->submit.command, ElementsAre("sh", "-c", "echo hi --image"));
}

TEST(ParseArgsTest, SubmitCommandStartsAtFirstPositionalWord) {
  absl::StatusOr<Args> a =
      Parse({"submit", "--image", "i", "ls", "-l", "--image", "x"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->submit.image, "i");
  EXPECT_THAT(a->submit.command, ElementsAre("ls", "-l", "--image", "x"));
}

TEST(ParseArgsTest, ServerPrecedenceFlagThenEnvThenDefault) {
  EXPECT_EQ(Parse({"get", "t"}, "")->connection.server, "127.0.0.1:8080");
  EXPECT_EQ(Parse({"get", "t"}, "env:1")->connection.server, "env:1");
  EXPECT_EQ(Parse({"--server=flag:2", "get", "t"}, "env:1")->connection.server,
            "flag:2");
  EXPECT_EQ(
      Parse({"get", "t", "--server", "late:3"}, "env:1")->connection.server,
      "late:3");
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
      Parse({"list", "--state", "running,QUEUED", "--state=TASK_STATE_FAILED",
             "--label", "k=v", "--limit", "7"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->command, Command::kList);
  EXPECT_THAT(a->list.states, ElementsAre(crucible::v1::TASK_STATE_RUNNING,
                                          crucible::v1::TASK_STATE_QUEUED,
                                          crucible::v1::TASK_STATE_FAILED));
  EXPECT_THAT(a->list.labels, ElementsAre(Pair("k", "v")));
  EXPECT_EQ(a->list.limit, 7);
}

TEST(ParseArgsTest, SubmitLimitsRetriesStdinAndSwitches) {
  absl::StatusOr<Args> a = Parse(
      {"submit", "--image", "i", "--cpu", "0.5", "--pids=64", "--tmpfs", "16Mi",
       "--max_output", "1Mi", "--attempts", "3", "--retry-on-nonzero-exit",
       "--stdin", "-", "-w", "/tmp", "--cancel-on-interrupt", "true"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->submit.cpu_millis, 500);
  EXPECT_EQ(a->submit.pids_limit, 64);
  EXPECT_EQ(a->submit.tmpfs_bytes, 16 << 20);
  EXPECT_EQ(a->submit.max_output_bytes, 1 << 20);
  EXPECT_EQ(a->submit.max_attempts, 3);
  EXPECT_TRUE(a->submit.retry_on_nonzero_exit);
  EXPECT_EQ(a->submit.stdin_path, "-");
  EXPECT_EQ(a->submit.working_dir, "/tmp");
  EXPECT_TRUE(a->submit.cancel_on_interrupt);
  EXPECT_THAT(a->submit.command, ElementsAre("true"));
}

TEST(ParseArgsTest, TokenCommandsAndAllTenants) {
  absl::StatusOr<Args> a =
      Parse({"token", "create", "--name", "ci", "--tenant=team-a", "--role",
             "reader", "--ttl", "720h"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->command, Command::kToken);
  EXPECT_EQ(a->token.action, TokenArgs::Action::kCreate);
  EXPECT_EQ(a->token.name, "ci");
  EXPECT_EQ(a->token.tenant, "team-a");
  EXPECT_EQ(a->token.role, crucible::v1::ROLE_READER);
  EXPECT_EQ(a->token.ttl, absl::Hours(720));
  a = Parse({"token", "create", "--name", "ci", "--tenant", "t"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->token.role, crucible::v1::ROLE_USER);  // the default
  EXPECT_FALSE(a->token.ttl.has_value());
  a = Parse({"token", "revoke", "3f9a0c21d4e7"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->token.action, TokenArgs::Action::kRevoke);
  EXPECT_EQ(a->token.id, "3f9a0c21d4e7");
  a = Parse({"token", "list"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->token.action, TokenArgs::Action::kList);
  for (std::vector<std::string> bad :
       {std::vector<std::string>{"token"},
        {"token", "create", "--name", "x"},
        {"token", "create", "--tenant", "t"},
        {"token", "create", "--name", "x", "--tenant", "t", "--role", "root"},
        {"token", "revoke"},
        {"token", "list", "--name", "x"},
        {"token", "drop", "x"}}) {
    EXPECT_EQ(Parse(bad).status().code(), absl::StatusCode::kInvalidArgument)
        << bad.back();
  }
  a = Parse({"list", "--all-tenants"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->list.all_tenants);
  EXPECT_FALSE(Parse({"list"})->list.all_tenants);
}

TEST(ParseArgsTest, CancelLogsWatchHealth) {
  absl::StatusOr<Args> a = Parse({"cancel", "t1", "--reason", "why", "--wait"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->command, Command::kCancel);
  EXPECT_EQ(a->task_id, "t1");
  EXPECT_EQ(a->cancel.reason, "why");
  EXPECT_TRUE(a->cancel.wait);
  a = Parse({"logs", "-f", "--stderr", "--offset", "10", "--attempt=2", "t2"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->task_id, "t2");
  EXPECT_TRUE(a->logs.follow);
  EXPECT_EQ(a->logs.stream, crucible::v1::OUTPUT_STREAM_STDERR);
  EXPECT_EQ(a->logs.offset, 10);
  EXPECT_EQ(a->logs.attempt, 2);
  a = Parse({"watch", "t3"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->command, Command::kWatch);
  a = Parse({"health", "h:9", "--service", "x.Y"}, "env:1");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->connection.server, "h:9");
  EXPECT_EQ(a->health.service, "x.Y");
  EXPECT_EQ(Parse({"health"}, "env:1")->connection.server, "env:1");
}

TEST(ParseArgsTest, ListPagingAndWatch) {
  absl::StatusOr<Args> a =
      Parse({"list", "--page-token", "abc", "-w", "--interval", "500ms"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->list.page_token, "abc");
  EXPECT_TRUE(a->list.watch);
  EXPECT_EQ(a->list.interval, absl::Milliseconds(500));
}

TEST(ParseArgsTest, ConnectionFlagsAndEnvironment) {
  absl::StatusOr<Args> a = ParseArgs({"get", "t"}, Environment{"", "envtok"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->connection.token, "envtok");
  EXPECT_FALSE(a->connection.tls);
  a = ParseArgs({"--token=flagtok", "--ca_cert", "ca.pem", "get", "t"},
                Environment{"", "envtok"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->connection.token, "flagtok");
  EXPECT_TRUE(a->connection.tls);
  EXPECT_EQ(a->connection.ca_cert, "ca.pem");
}

TEST(ParseArgsTest, TlsFlagsWinOverTheEnvironment) {
  Environment env{
      .tls_ca = "env-ca.pem", .tls_cert = "env.pem", .tls_key = "env.key"};
  absl::StatusOr<Args> a = ParseArgs({"health"}, env);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->connection.tls);
  EXPECT_EQ(a->connection.ca_cert, "env-ca.pem");
  EXPECT_EQ(a->connection.tls_cert, "env.pem");
  EXPECT_EQ(a->connection.tls_key, "env.key");
  a = ParseArgs({"--tls-ca", "ca.pem", "health", "--tls-cert=c.pem",
                 "--tls_key", "c.key"},
                env);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->connection.tls_server_name, "");
  EXPECT_EQ(a->connection.ca_cert, "ca.pem");
  EXPECT_EQ(a->connection.tls_cert, "c.pem");
  EXPECT_EQ(a->connection.tls_key, "c.key");
  // A client certificate without its key, or the other way round.
  EXPECT_EQ(ParseArgs({"--tls-cert=c.pem", "health"}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseArgs({"health"}, Environment{.tls_key = "k"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  a = ParseArgs({"--tls-server-name", "crucible-server", "health"}, {});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->connection.tls);
  EXPECT_EQ(a->connection.tls_server_name, "crucible-server");
  // Nothing set: plaintext.
  a = ParseArgs({"health"}, {});
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->connection.tls);
}

TEST(ParseValuesTest, Cpu) {
  EXPECT_EQ(*ParseCpu("0.5"), 500);
  EXPECT_EQ(*ParseCpu("2"), 2000);
  EXPECT_EQ(*ParseCpu("250m"), 250);
  EXPECT_FALSE(ParseCpu("0").ok());
  EXPECT_FALSE(ParseCpu("-1").ok());
  EXPECT_FALSE(ParseCpu("m").ok());
  EXPECT_FALSE(ParseCpu("fast").ok());
}

TEST(ParseArgsTest, ArtifactsAndSubmitOut) {
  absl::StatusOr<Args> a = Parse({"artifacts", "t1"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->command, Command::kArtifacts);
  EXPECT_EQ(a->task_id, "t1");
  EXPECT_EQ(a->artifacts.out_dir, "");
  EXPECT_EQ(a->artifacts.attempt, 0);
  a = Parse({"artifacts", "--out=res", "t1", "--attempt", "2", "-o", "json"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->task_id, "t1");
  EXPECT_EQ(a->artifacts.out_dir, "res");
  EXPECT_EQ(a->artifacts.attempt, 2);
  EXPECT_EQ(a->output, OutputFormat::kJson);
  a = Parse({"submit", "--image", "i", "--artifact", "out/*", "--out", "res",
             "--", "true"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->submit.out_dir, "res");
  EXPECT_THAT(a->submit.artifacts, ElementsAre("out/*"));
}

TEST(ParseArgsTest, HelpWinsAndNoCommandIsHelp) {
  EXPECT_EQ(Parse({})->command, Command::kHelp);
  EXPECT_EQ(Parse({"--help"})->command, Command::kHelp);
  EXPECT_EQ(Parse({"submit", "-h"})->command, Command::kHelp);
  EXPECT_EQ(Parse({"help"})->command, Command::kHelp);
}

TEST(ParseArgsTest, UsageErrors) {
  for (const std::vector<std::string>& words :
       std::vector<std::vector<std::string>>{
           {"frobnicate"},
           {"submit", "--", "echo"},  // no image
           {"submit", "--image"},     // no value
           {"submit", "--image", "i", "--bogus", "x"},
           {"submit", "--image", "i", "--env", "NOEQUALS"},
           {"submit", "--image", "i", "--timeout", "soon"},
           {"submit", "--image", "i", "--memory", "lots"},
           {"submit", "--image", "i", "--priority", "high"},
           {"submit", "--image", "i", "--file", "local", "true"},
           {"submit", "--image", "i", "--file", "=remote", "true"},
           {"submit", "--image", "i", "--file", "local=", "true"},
           {"submit", "--image", "i", "--artifact=", "true"},
           {"submit", "--image", "i", "--scratch", "big", "true"},
           {"submit", "--from-file", "f", "--artifact", "a"},
           {"submit", "--image", "i", "--out", "d", "true"},  // no --artifact
           {"submit", "--image", "i", "--artifact", "a", "--out=", "true"},
           {"submit", "--image", "i", "-d", "--artifact", "a", "--out", "d",
            "true"},
           {"submit", "--from-file", "f", "--out", "d"},
           {"artifacts"},
           {"artifacts", "a", "b"},
           {"artifacts", "t", "--attempt", "2"},  // no --out
           {"artifacts", "t", "--out", "d", "--attempt", "0"},
           {"artifacts", "t", "--out="},
           {"artifacts", "t", "--follow"},
           {"get"},
           {"get", "a", "b"},
           {"list", "--state", "sleeping"},
           {"list", "--limit", "0"},
           {"list", "extra"},
           {"-o", "yaml", "list"},
           {"submit", "--image", "i", "--detach=yes", "true"},
           {"submit", "--image", "i", "-d", "--cancel-on-interrupt", "true"},
           {"submit", "--image", "i", "--attempts", "0", "true"},
           {"cancel"},
           {"logs", "t", "--offset", "-1"},
           {"watch", "a", "b"},
           {"health", "a", "b"},
           {"--server", "x:1", "health", "y:2"},
           {"--tls=yes", "get", "t"},
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
  for (const char* word : {"submit",
                           "get ID",
                           "list",
                           "cancel ID",
                           "logs ID",
                           "watch ID",
                           "artifacts ID",
                           "--out DIR",
                           "health",
                           "124",
                           "125",
                           "130",
                           "69",
                           "75",
                           "usage",
                           "--token",
                           "--tls",
                           "--ca-cert",
                           "--tls-ca",
                           "--tls-cert",
                           "--tls-key",
                           "--tls-server-name",
                           "CRUCIBLE_TLS_CA",
                           "CRUCIBLE_SERVER",
                           "CRUCIBLE_TOKEN"}) {
    EXPECT_THAT(help, HasSubstr(word));
  }
}

}  // namespace
}  // namespace cli
