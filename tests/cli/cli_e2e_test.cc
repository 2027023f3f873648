// The built `crucible` binary against the real local stack: crucible-server,
// -worker and -executor as processes, the real engine behind the real proxy.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/sha256.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/local_stack.h"
#include "tests/testing/process.h"
#include "tests/testing/test_stack.h"

namespace {

using crucible::v1::Task;
using crucible::v1::TaskState;
using testing::HasSubstr;
using testing::StartsWith;
using testing_util::CommandResult;
using testing_util::LocalStack;
using testing_util::Process;

constexpr char kImage[] = "localhost/crucible/busybox:latest";

using common::Sha256Hex;

std::vector<nlohmann::json> JsonLines(const std::string& text) {
  std::vector<nlohmann::json> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (!absl::StartsWith(line, "{")) continue;
    out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

class CliEndToEndTest : public testing_util::LocalStackSuite<> {
 protected:
  // Runs `crucible --server <stack> args...` to completion.
  CommandResult Crucible(std::vector<std::string> args,
                         const std::string& stdin_data = "") {
    args.insert(args.begin(), {testing_util::BinaryPath("crucible"), "--server",
                               local_->server_address()});
    absl::StatusOr<CommandResult> r =
        testing_util::RunCommand(args, absl::Seconds(90), {}, stdin_data);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : CommandResult{};
  }

  // Starts `crucible --server <stack> args...` in the background.
  Process StartCrucible(std::vector<std::string> args,
                        const std::string& name) {
    args.insert(args.begin(), {testing_util::BinaryPath("crucible"), "--server",
                               local_->server_address()});
    absl::StatusOr<Process> p =
        Process::Start(args, absl::StrCat(local_->dir(), "/", name, ".log"));
    EXPECT_TRUE(p.ok()) << p.status();
    return *std::move(p);
  }

  // The one task labelled run=`run`, once it is in `state` (polls ListTasks).
  Task WaitForLabelledTask(const std::string& run, TaskState state) {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    Task last;
    while (absl::Now() < deadline) {
      crucible::v1::ListTasksRequest request;
      (*request.mutable_labels())["run"] = run;
      crucible::v1::ListTasksResponse response;
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
      grpc::Status s = local_->tasks().ListTasks(&ctx, request, &response);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (response.tasks_size() == 1) {
        last = response.tasks(0);
        if (last.state() == state) return last;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    ADD_FAILURE() << "no task run=" << run << " in " << TaskState_Name(state)
                  << "; last seen: " << last.DebugString();
    return last;
  }

  Task GetTask(const std::string& id) {
    return testing_util::GetTaskOrFail(local_->tasks(), id);
  }
};

TEST_F(CliEndToEndTest, SubmitStreamsOutputAndExitsWithTheTaskExitCode) {
  CommandResult r =
      Crucible({"submit",
                "--image",
                kImage,
                "--env",
                "WHO=world",
                "--workdir",
                "/tmp",
                "--stdin",
                "-",
                "--memory",
                "64Mi",
                "--cpu",
                "0.5",
                "--pids",
                "64",
                "--timeout",
                "60s",
                "--",
                "sh",
                "-c",
                "echo hello $WHO; pwd; cat; echo oops >&2; exit 3"},
               "from stdin\n");
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(r.out, "hello world\n/tmp\nfrom stdin\n");
  EXPECT_EQ(r.err, "oops\n");
}

TEST_F(CliEndToEndTest, SubmitJsonPrintsTheEndedTask) {
  CommandResult r = Crucible({"-o", "json", "submit", "--image", kImage,
                              "--label", "k=v", "--", "true"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<nlohmann::json> lines = JsonLines(r.out);
  ASSERT_EQ(lines.size(), 1u) << r.out;
  EXPECT_EQ(lines[0]["state"], "TASK_STATE_SUCCEEDED");
  EXPECT_EQ(lines[0]["result"]["exitCode"], 0);
  EXPECT_EQ(lines[0]["result"]["reason"], "TERMINATION_REASON_EXITED");
  EXPECT_EQ(lines[0]["spec"]["labels"]["k"], "v");
  EXPECT_EQ(GetTask(lines[0]["id"]).state(),
            crucible::v1::TASK_STATE_SUCCEEDED);
}

TEST_F(CliEndToEndTest, TimeoutRefusalAndServerErrorsHaveTheirOwnExitCodes) {
  CommandResult r = Crucible(
      {"submit", "--image", kImage, "--timeout", "1s", "--", "sleep", "30"});
  EXPECT_EQ(r.exit_code, 124) << r.err;
  EXPECT_THAT(r.err, HasSubstr("TIMED_OUT"));

  // Allowed, but the engine lacks it: refused by the executor, no exit code
  // of its own.
  r = Crucible({"submit", "--image", "localhost/crucible/no-such-image:1", "--",
                "true"});
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_THAT(r.err, HasSubstr("FAILED (REJECTED)"));

  // Outside every executor's image allowlist: refused at CreateTask.
  r = Crucible(
      {"submit", "--image", "docker.io/library/alpine:3", "--", "true"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, StartsWith("crucible: INVALID_ARGUMENT: spec.image"));

  r = Crucible({"submit", "--image", kImage, "--request-id",
                std::string(200, 'x'), "true"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("crucible: INVALID_ARGUMENT: request_id"));

  r = Crucible({"get", "no-such-task"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("crucible: NOT_FOUND: "));

  r = Crucible({"submit", "--image", kImage, "--memory", "lots", "true"});
  EXPECT_EQ(r.exit_code, 2);
}

TEST_F(CliEndToEndTest, DetachThenWatchLogsAndGet) {
  CommandResult r =
      Crucible({"submit", "-d", "--image", kImage, "--", "sh", "-c",
                "echo one; echo two >&2; echo three; exit 4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string id(absl::StripTrailingAsciiWhitespace(r.out));
  ASSERT_FALSE(id.empty());

  r = Crucible({"-o", "json", "watch", id});
  EXPECT_EQ(r.exit_code, 4) << r.err;
  std::vector<nlohmann::json> events = JsonLines(r.out);
  ASSERT_FALSE(events.empty()) << r.out;
  EXPECT_EQ(events.back()["state"], "TASK_STATE_FAILED");
  EXPECT_EQ(events.back()["taskId"], id);
  r = Crucible({"watch", id});  // an ended task: its state, then the exit
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_THAT(r.out, HasSubstr("FAILED  attempt 1  EXITED (exit code 4)"));

  r = Crucible({"logs", id});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "one\nthree\n");
  EXPECT_EQ(r.err, "two\n");
  r = Crucible({"logs", "--stderr", id});
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "two\n");
  // Offsets count bytes of the combined output, in the order the executor
  // read them (stdout and stderr may interleave either way).
  r = Crucible({"-o", "json", "logs", id});
  std::map<int64_t, std::pair<std::string, std::string>>
      by_offset;  // stream, data
  for (const nlohmann::json& c : JsonLines(r.out)) {
    std::string data;
    ASSERT_TRUE(absl::Base64Unescape(c["data"].get<std::string>(), &data));
    EXPECT_EQ(c["attempt"], 1);
    // int64 is a string in the protobuf JSON mapping.
    by_offset[std::stoll(c["offset"].get<std::string>())] = {
        c["stream"].get<std::string>(), data};
  }
  std::string combined, out, err;
  for (const auto& [offset, chunk] : by_offset) {
    EXPECT_EQ(offset, static_cast<int64_t>(combined.size()))
        << "chunks are contiguous";
    combined += chunk.second;
    (chunk.first == "OUTPUT_STREAM_STDERR" ? err : out) += chunk.second;
  }
  EXPECT_EQ(out, "one\nthree\n");
  EXPECT_EQ(err, "two\n");
  r = Crucible(
      {"logs", "--offset", "4", "--follow", id});  // an ended task: no waiting
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.size() + r.err.size(), combined.size() - 4);
  EXPECT_THAT(r.out + r.err, testing::Not(HasSubstr("one")));

  r = Crucible({"get", id});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("STATE:      FAILED"));
  EXPECT_THAT(r.out, HasSubstr("RESULT:     EXITED, exit code 4"));
}

TEST_F(CliEndToEndTest, LogsFollowWaitsForTheEndAndCtrlCStopsAWatch) {
  CommandResult r = Crucible({"submit", "-d", "--image", kImage, "--", "sh",
                              "-c", "echo a; sleep 1; echo b"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string id(absl::StripTrailingAsciiWhitespace(r.out));
  r = Crucible({"logs", "--follow", id});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "a\nb\n");

  const std::string run = "watch-sigint-" + std::to_string(getpid());
  r = Crucible({"submit", "-d", "--label", "run=" + run, "--image", kImage,
                "--", "sleep", "60"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Task task = WaitForLabelledTask(run, crucible::v1::TASK_STATE_RUNNING);
  Process watch = StartCrucible({"watch", task.id()}, run);
  // Its first line (the current state) says it is watching.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!absl::StrContains(watch.Log(), "RUNNING") && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_THAT(watch.Log(), HasSubstr("RUNNING"));
  absl::StatusOr<int> status = watch.Stop(SIGINT, absl::Seconds(30));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 75)
      << *status << watch.Log();
  EXPECT_EQ(GetTask(task.id()).state(), crucible::v1::TASK_STATE_RUNNING);
  r = Crucible({"cancel", "--wait", task.id()});  // clean up
  EXPECT_EQ(r.exit_code, 130) << r.err;
}

TEST_F(CliEndToEndTest, ListFiltersAndPages) {
  const std::string run = "list-" + std::to_string(getpid());
  for (const char* code : {"0", "1", "0"}) {
    CommandResult r =
        Crucible({"submit", "--label", "run=" + run, "--image", kImage, "--",
                  "sh", "-c", absl::StrCat("exit ", code)});
    ASSERT_EQ(r.exit_code, std::stoi(code)) << r.err;
  }
  CommandResult r = Crucible({"-o", "json", "list", "--label", "run=" + run});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(JsonLines(r.out).size(), 3u) << r.out;

  r = Crucible(
      {"-o", "json", "list", "--label", "run=" + run, "--state", "failed"});
  std::vector<nlohmann::json> failed = JsonLines(r.out);
  ASSERT_EQ(failed.size(), 1u) << r.out;
  EXPECT_EQ(failed[0]["result"]["exitCode"], 1);

  r = Crucible({"-o", "json", "list", "--label", "run=" + run, "--limit", "2"});
  EXPECT_EQ(JsonLines(r.out).size(), 2u) << r.out;
  ASSERT_THAT(r.err, StartsWith("crucible: more tasks: --page-token "));
  const std::string token(absl::StripTrailingAsciiWhitespace(
      absl::StripPrefix(r.err, "crucible: more tasks: --page-token ")));
  r = Crucible(
      {"-o", "json", "list", "--label", "run=" + run, "--page-token", token});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(JsonLines(r.out).size(), 1u) << r.out;

  r = Crucible({"list", "--label", "run=" + run});
  EXPECT_THAT(r.out, StartsWith("ID "));
  EXPECT_THAT(r.out, HasSubstr("FAILED     1"));
}

TEST_F(CliEndToEndTest, ListWatchPrintsChangesUntilInterrupted) {
  const std::string run = "watch-" + std::to_string(getpid());
  Process watcher =
      StartCrucible({"-o", "json", "list", "--watch", "--interval", "100ms",
                     "--label", "run=" + run},
                    "list-watch");
  CommandResult r =
      Crucible({"submit", "--label", "run=" + run, "--image", kImage, "true"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  bool saw_end = false;
  while (!saw_end && absl::Now() < deadline) {
    for (const nlohmann::json& line : JsonLines(watcher.Log())) {
      saw_end = saw_end || line["state"] == "TASK_STATE_SUCCEEDED";
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(saw_end) << watcher.Log();
  absl::StatusOr<int> status = watcher.Stop(SIGINT, absl::Seconds(10));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
}

TEST_F(CliEndToEndTest, CancelWaitEndsARunningTaskCancelled) {
  const std::string run = "cancel-" + std::to_string(getpid());
  CommandResult r = Crucible({"submit", "-d", "--label", "run=" + run,
                              "--image", kImage, "--", "sleep", "60"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Task task = WaitForLabelledTask(run, crucible::v1::TASK_STATE_RUNNING);
  r = Crucible({"cancel", "--wait", "--reason", "enough", task.id()});
  EXPECT_EQ(r.exit_code, 130) << r.err;
  EXPECT_EQ(r.out, absl::StrCat("task ", task.id(), " CANCELLED\n"));
  EXPECT_EQ(GetTask(task.id()).state(), crucible::v1::TASK_STATE_CANCELLED);
  r = Crucible({"cancel", task.id()});  // ended: the server refuses
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("crucible: FAILED_PRECONDITION: "));
}

TEST_F(CliEndToEndTest, CtrlCWithCancelOnInterruptCancelsTheTask) {
  const std::string run = "sigint-cancel-" + std::to_string(getpid());
  Process cli = StartCrucible(
      {"submit", "--cancel-on-interrupt", "--label", "run=" + run, "--image",
       kImage, "--", "sh", "-c", "echo started; sleep 60"},
      run);
  Task task = WaitForLabelledTask(run, crucible::v1::TASK_STATE_RUNNING);
  absl::StatusOr<int> status = cli.Stop(SIGINT, absl::Seconds(60));
  ASSERT_TRUE(status.ok()) << status.status() << cli.Log();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 130)
      << *status << cli.Log();
  EXPECT_EQ(GetTask(task.id()).state(), crucible::v1::TASK_STATE_CANCELLED);
  EXPECT_THAT(cli.Log(), HasSubstr("CANCELLED"));
}

TEST_F(CliEndToEndTest, CtrlCWithoutATerminalStopsFollowingAndTheTaskGoesOn) {
  const std::string run = "sigint-leave-" + std::to_string(getpid());
  Process cli = StartCrucible({"submit", "--label", "run=" + run, "--image",
                               kImage, "--", "sleep", "60"},
                              run);
  Task task = WaitForLabelledTask(run, crucible::v1::TASK_STATE_RUNNING);
  absl::StatusOr<int> status = cli.Stop(SIGINT, absl::Seconds(30));
  ASSERT_TRUE(status.ok()) << status.status() << cli.Log();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 75)
      << *status << cli.Log();
  EXPECT_THAT(cli.Log(), HasSubstr("keeps running"));
  EXPECT_EQ(GetTask(task.id()).state(), crucible::v1::TASK_STATE_RUNNING);
  CommandResult r = Crucible({"cancel", "--wait", task.id()});  // clean up
  EXPECT_EQ(r.exit_code, 130) << r.err;
}

// On a terminal, Ctrl-C asks. script(1) runs the CLI on a pseudo-terminal
// and passes what we write on: ^C (the terminal turns it into SIGINT) once
// the task runs, then `answer` once the question is on the screen. The CLI
// is exec'd: script(1) runs it through $SHELL (dash when unset, as in CI),
// and dash, having seen the SIGINT too, kills itself once its child exits,
// which would turn every exit code into 130.
CommandResult CtrlCOnATerminal(const std::string& crucible_args,
                               const std::string& answer) {
  const std::string dir = testing_util::MakeTempDir("tty");
  const std::string ts = dir + "/typescript";
  auto wait_for = [&ts](const std::string& text) {
    return absl::StrCat("for i in $(seq 600); do grep -q '", text, "' ", ts,
                        " 2>/dev/null && break; sleep 0.1; done; ");
  };
  const std::string feeder = absl::StrCat(
      "(", wait_for("RUNNING"), "printf '\\003'; ", wait_for("y/N"), "printf '",
      answer, "\\n'; ", wait_for("Script done"), ")");
  const std::string script =
      absl::StrCat(feeder, " | /usr/bin/script -qfec 'exec ",
                   testing_util::BinaryPath("crucible"), " ", crucible_args,
                   "' ", ts, " >/dev/null; echo $? > ", dir, "/rc");
  absl::StatusOr<CommandResult> r =
      testing_util::RunCommand({"/bin/bash", "-c", script}, absl::Seconds(90));
  EXPECT_TRUE(r.ok()) << r.status();
  CommandResult result;
  EXPECT_TRUE(absl::SimpleAtoi(
      absl::StripAsciiWhitespace(testing_util::ReadFile(dir + "/rc")),
      &result.exit_code));
  result.out = testing_util::ReadFile(ts);
  return result;
}

TEST_F(CliEndToEndTest, CtrlCOnATerminalAsksAndCancelsOnYes) {
  const std::string run = "tty-yes-" + std::to_string(getpid());
  CommandResult r =
      CtrlCOnATerminal(absl::StrCat("--server ", local_->server_address(),
                                    " submit --label run=", run, " --image ",
                                    kImage, " -- sleep 60"),
                       "y");
  EXPECT_EQ(r.exit_code, 130) << r.out;
  EXPECT_THAT(r.out, HasSubstr("? [y/N] "));
  Task task = WaitForLabelledTask(run, crucible::v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(task.state(), crucible::v1::TASK_STATE_CANCELLED);
}

TEST_F(CliEndToEndTest, CtrlCOnATerminalLeavesTheTaskOnNo) {
  const std::string run = "tty-no-" + std::to_string(getpid());
  CommandResult r =
      CtrlCOnATerminal(absl::StrCat("--server ", local_->server_address(),
                                    " submit --label run=", run, " --image ",
                                    kImage, " -- sleep 60"),
                       "n");
  EXPECT_EQ(r.exit_code, 75) << r.out;
  EXPECT_THAT(r.out, HasSubstr("keeps running"));
  Task task = WaitForLabelledTask(run, crucible::v1::TASK_STATE_RUNNING);
  CommandResult cancelled =
      Crucible({"cancel", "--wait", task.id()});  // clean up
  EXPECT_EQ(cancelled.exit_code, 130) << cancelled.err;
}

// A second Ctrl-C while the CLI asks: it quits at once with 130, as a shell
// would, and leaves the task as it was (nobody said to cancel it).
TEST_F(CliEndToEndTest, ASecondCtrlCQuitsAtOnce) {
  const std::string run = "tty-twice-" + std::to_string(getpid());
  CommandResult r =
      CtrlCOnATerminal(absl::StrCat("--server ", local_->server_address(),
                                    " submit --label run=", run, " --image ",
                                    kImage, " -- sleep 60"),
                       "\\003");
  EXPECT_EQ(r.exit_code, 130) << r.out;
  EXPECT_THAT(r.out, HasSubstr("? [y/N] "));
  Task task = WaitForLabelledTask(run, crucible::v1::TASK_STATE_RUNNING);
  EXPECT_EQ(task.state(), crucible::v1::TASK_STATE_RUNNING);
  CommandResult cancelled =
      Crucible({"cancel", "--wait", task.id()});  // clean up
  EXPECT_EQ(cancelled.exit_code, 130) << cancelled.err;
}

TEST_F(CliEndToEndTest, ProgressLineOnlyOnATerminal) {
  // script(1) gives the CLI a pseudo-terminal as stdin, stdout and stderr.
  const std::string command =
      absl::StrCat("exec ", testing_util::BinaryPath("crucible"), " --server ",
                   local_->server_address(), " submit --image ", kImage,
                   " -- sh -c 'sleep 2; echo done'");
  absl::StatusOr<CommandResult> r = testing_util::RunCommand(
      {"/usr/bin/script", "-qfec", command, "/dev/null"}, absl::Seconds(60));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << r->out;
  EXPECT_THAT(r->out, HasSubstr("crucible: task "));
  EXPECT_THAT(r->out, HasSubstr("RUNNING"));
  EXPECT_THAT(r->out, HasSubstr("\r\033[Kdone"));
  // Not a terminal: no progress line at all.
  CommandResult plain =
      Crucible({"submit", "--image", kImage, "--", "sh", "-c", "sleep 2"});
  EXPECT_EQ(plain.exit_code, 0);
  EXPECT_EQ(plain.err, "");
}

// Files in, artifacts out, through the whole stack: submit --out writes
// the task's copy of its input file and a file of several 1 MiB pages of
// GetArtifact chunks, byte-identical, with the sizes and SHA-256s of the task's
// result; `artifacts --out` writes the same bytes again, and `artifacts` lists
// them.
TEST_F(CliEndToEndTest, SubmitOutAndArtifactsOutFetchTheArtifactsIntact) {
  const std::string dir = testing_util::MakeTempDir("cli-artifacts");
  std::string input;
  for (int i = 0; i < 70000; ++i) input.push_back(static_cast<char>(i * 7));
  {
    std::ofstream file(dir + "/input.bin", std::ios::binary);
    file << input;
  }
  CommandResult r =
      Crucible({"-o", "json", "submit", "--image", kImage, "--file",
                dir + "/input.bin=in/input.bin", "--artifact", "out/*", "--out",
                dir + "/first", "--", "sh", "-c",
                "mkdir out && cp in/input.bin out/copy.bin && "
                "head -c 2500000 /dev/urandom > out/big.bin"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<nlohmann::json> lines = JsonLines(r.out);
  ASSERT_EQ(lines.size(), 1u) << r.out;
  const std::string id = lines[0]["id"];
  const Task task = GetTask(id);
  ASSERT_EQ(task.result().artifacts_size(), 2) << task.DebugString();
  std::map<std::string, crucible::v1::ArtifactInfo> collected;
  for (const crucible::v1::ArtifactInfo& a : task.result().artifacts()) {
    EXPECT_EQ(a.status(), crucible::v1::ARTIFACT_STATUS_COLLECTED)
        << a.DebugString();
    collected[a.path()] = a;
    EXPECT_THAT(r.err, HasSubstr(absl::StrCat("crucible: wrote ", dir,
                                              "/first/", a.path(), " (",
                                              a.size_bytes(), " bytes)\n")));
  }
  ASSERT_EQ(collected.count("out/copy.bin"), 1u);
  ASSERT_EQ(collected.count("out/big.bin"), 1u);
  EXPECT_EQ(collected["out/big.bin"].size_bytes(), 2500000);
  const std::string copy = testing_util::ReadFile(dir + "/first/out/copy.bin");
  const std::string big = testing_util::ReadFile(dir + "/first/out/big.bin");
  EXPECT_TRUE(copy == input) << "the copy of the input file differs";
  EXPECT_EQ(Sha256Hex(copy), collected["out/copy.bin"].sha256());
  EXPECT_EQ(big.size(), 2500000u);
  EXPECT_EQ(Sha256Hex(big), collected["out/big.bin"].sha256());

  // Again, from the stored task.
  r = Crucible({"artifacts", id, "--out", dir + "/second"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_THAT(absl::StrSplit(r.out, '\n', absl::SkipEmpty()),
              testing::UnorderedElementsAre(dir + "/second/out/copy.bin",
                                            dir + "/second/out/big.bin"));
  EXPECT_TRUE(testing_util::ReadFile(dir + "/second/out/copy.bin") == input);
  EXPECT_TRUE(testing_util::ReadFile(dir + "/second/out/big.bin") == big);

  r = Crucible({"artifacts", id});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(
      r.out, HasSubstr(absl::StrCat("out/big.bin (2500000 bytes, sha256 ",
                                    collected["out/big.bin"].sha256(), ")\n")));
  EXPECT_THAT(r.out,
              HasSubstr(absl::StrCat("out/copy.bin (70000 bytes, sha256 ",
                                     Sha256Hex(input), ")\n")));
  // An attempt the task never had.
  r = Crucible({"artifacts", id, "--out", dir + "/third", "--attempt", "7"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("crucible: NOT_FOUND: "));
  EXPECT_FALSE(std::filesystem::exists(dir + "/third/out/big.bin"));
}

TEST_F(CliEndToEndTest, HealthOfEachProcess) {
  for (int port : {local_->server_port(), local_->worker_port(),
                   local_->executor_port()}) {
    absl::StatusOr<CommandResult> r =
        testing_util::RunCommand({testing_util::BinaryPath("crucible"),
                                  "health", absl::StrCat("127.0.0.1:", port)},
                                 absl::Seconds(30));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->exit_code, 0) << r->err;
    EXPECT_EQ(r->out, "SERVING\n");
  }
  CommandResult r = Crucible(
      {"-o", "json", "health", "--service", "crucible.v1.TaskService"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(JsonLines(r.out).size(), 1u) << r.out;
  EXPECT_EQ(JsonLines(r.out)[0]["status"], "SERVING");
  r = Crucible({"health", "--service", "no.such.Service"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("crucible: NOT_FOUND"));
  absl::StatusOr<CommandResult> down = testing_util::RunCommand(
      {testing_util::BinaryPath("crucible"), "health", "127.0.0.1:1"},
      absl::Seconds(30));
  ASSERT_TRUE(down.ok());
  EXPECT_EQ(down->exit_code, 69);
}

}  // namespace
