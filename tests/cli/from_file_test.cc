// `crucible submit --from-file` (the real binary) against a real
// crucible-server on SQLite, with a tenants file: the ids of the good lines
// in order, each bad line named on stderr, exit 1; the same file again
// makes nothing new; stdin; quotas refuse the lines past them only.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"
#include "tests/testing/process_flags.h"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const char kEcho[] =
    R"({"image": "localhost/crucible/busybox:latest", "command": ["echo", ")";

std::string Line(const std::string& word) {
  return absl::StrCat(kEcho, word, "\"]}\n");
}

std::vector<std::string> Lines(const std::string& out) {
  return absl::StrSplit(out, '\n', absl::SkipEmpty());
}

class FromFileTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing_util::MakeTempDir("crucible-from-file");
    // Tenant "default" (the tests' anonymous calls): 6 queued tasks at most.
    Write("tenants.json",
          R"({"tenants": {"default": {"max_queued_tasks": 6}}})");
    auto server = testing_util::Process::Start(
        testing_util::WithTestFlags(
            {absl::StrCat(getenv("CRUCIBLE_BIN_DIR"), "/crucible-server"),
             "--listen=127.0.0.1:0", "--port_file=" + dir_ + "/port",
             "--db=" + dir_ + "/tasks.db", "--fleet_admission=false",
             "--tenants_file=" + dir_ + "/tenants.json"}),
        dir_ + "/server.log");
    ASSERT_TRUE(server.ok()) << server.status();
    server_.emplace(*std::move(server));
    auto port = testing_util::WaitForPortFile(dir_ + "/port", *server_,
                                              absl::Seconds(20));
    ASSERT_TRUE(port.ok()) << port.status();
    address_ = absl::StrCat("127.0.0.1:", *port);
  }
  std::string Write(const std::string& name, const std::string& content) {
    const std::string path = dir_ + "/" + name;
    FILE* f = fopen(path.c_str(), "w");
    fwrite(content.data(), 1, content.size(), f);
    fclose(f);
    return path;
  }
  testing_util::CommandResult Crucible(std::vector<std::string> args,
                                       const std::string& stdin_data = "") {
    args.insert(args.begin(),
                {absl::StrCat(getenv("CRUCIBLE_BIN_DIR"), "/crucible"),
                 "--server=" + address_});
    auto result =
        testing_util::RunCommand(args, absl::Seconds(60), {}, stdin_data);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : testing_util::CommandResult{};
  }

  std::string dir_;
  std::string address_;
  std::optional<testing_util::Process> server_;
};

TEST_F(FromFileTest, GoodLinesAreCreatedAndBadOnesNamed) {
  const std::string file =
      Write("tasks.jsonl", "# the suite\n" + Line("a") + "{\"image\": oops}\n" +
                               Line("b") + "{\"command\": [\"no image\"]}\n\n" +
                               Line("a"));
  testing_util::CommandResult run = Crucible({"submit", "--from-file", file});
  EXPECT_EQ(run.exit_code, 1) << run.err;
  const std::vector<std::string> ids = Lines(run.out);
  ASSERT_EQ(ids.size(), 3u) << run.out << run.err;  // lines 2, 4 and 7
  EXPECT_NE(ids[0], ids[2]);  // the same line twice is two tasks
  // In line order, the file's own errors among the server's.
  EXPECT_THAT(run.err,
              testing::ContainsRegex(
                  "line 3: not a TaskSpec.*\nline 5: INVALID_ARGUMENT"));
  EXPECT_THAT(run.err, Not(HasSubstr("line 2:")));
  EXPECT_THAT(run.err, Not(HasSubstr("line 7:")));
  // The tasks are there, in the file's order.
  testing_util::CommandResult got = Crucible({"get", ids[1]});
  EXPECT_EQ(got.exit_code, 0) << got.err;
  EXPECT_THAT(got.out, HasSubstr("QUEUED"));

  // The same file again (after fixing nothing): the same tasks, none new.
  testing_util::CommandResult again = Crucible({"submit", "--from-file", file});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_EQ(Lines(again.out), ids);
  testing_util::CommandResult listed = Crucible({"-o", "json", "list"});
  EXPECT_EQ(Lines(listed.out).size(), 3u) << listed.out;

  // From stdin, as a new run: new tasks; all lines good: exit 0.
  testing_util::CommandResult piped =
      Crucible({"submit", "--from-file", "-", "--request-id", "run2"},
               Line("a") + Line("b"));
  EXPECT_EQ(piped.exit_code, 0) << piped.err;
  const std::vector<std::string> new_ids = Lines(piped.out);
  ASSERT_EQ(new_ids.size(), 2u);
  EXPECT_NE(new_ids[0], ids[0]);
}

TEST_F(FromFileTest, LinesPastAQuotaAreRefusedOneByOne) {
  std::string content;
  for (int i = 0; i < 8; ++i) content += Line(absl::StrCat(i));
  testing_util::CommandResult run =
      Crucible({"submit", "--from-file", Write("many.jsonl", content)});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(Lines(run.out).size(), 6u) << run.out << run.err;
  EXPECT_THAT(run.err, HasSubstr("line 7: RESOURCE_EXHAUSTED"));
  EXPECT_THAT(run.err, HasSubstr("line 8: RESOURCE_EXHAUSTED"));
}

TEST_F(FromFileTest, AServerThatCannotBeReachedNamesTheLinesNotSubmitted) {
  address_ = "127.0.0.1:1";  // nothing listens there
  testing_util::CommandResult run = Crucible(
      {"submit", "--from-file", Write("two.jsonl", Line("a") + Line("b"))});
  EXPECT_EQ(run.exit_code, 69) << run.err;
  EXPECT_EQ(run.out, "");
  EXPECT_THAT(run.err, HasSubstr("lines 1-2: not submitted"));
}

TEST_F(FromFileTest, AnUnreadableFileIsAUsageError) {
  testing_util::CommandResult run =
      Crucible({"submit", "--from-file", dir_ + "/missing.jsonl"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr("--from-file"));
}

// On a terminal --from-file shows a progress line ("crucible: submitted
// N/M tasks"), erased before the ids; not on a terminal, none at all (user
// guide, "Submitting many tasks": "shows a progress line on a terminal").
TEST_F(FromFileTest, AProgressLineOnlyOnATerminal) {
  const std::string file = Write("progress.jsonl", Line("p") + Line("q"));
  // script(1) gives the CLI a pseudo-terminal as stdin, stdout and stderr.
  const std::string command = absl::StrCat(
      "exec ", getenv("CRUCIBLE_BIN_DIR"), "/crucible --server=", address_,
      " submit --from-file ", file, " --request-id progress-tty");
  absl::StatusOr<testing_util::CommandResult> tty = testing_util::RunCommand(
      {"/usr/bin/script", "-qfec", command, "/dev/null"}, absl::Seconds(60));
  ASSERT_TRUE(tty.ok()) << tty.status();
  EXPECT_EQ(tty->exit_code, 0) << tty->out;
  EXPECT_THAT(tty->out, HasSubstr("crucible: submitted 0/2 tasks"));
  EXPECT_THAT(tty->out, HasSubstr("\r\033[K"));  // erased
  testing_util::CommandResult plain = Crucible(
      {"submit", "--from-file", file, "--request-id", "progress-pipe"});
  EXPECT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(Lines(plain.out).size(), 2u) << plain.out;
  EXPECT_EQ(plain.err, "");
}

}  // namespace
