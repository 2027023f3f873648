// The crucible-docker-guard binary's stop: it runs as PID 1 of the
// docker-proxy image, whose STOPSIGNAL is SIGUSR1 (HAProxy's soft stop),
// so it must stop on SIGUSR1 as on SIGTERM, at once and with exit 0, rather
// than be killed at the end of the stop grace. And its start: a bad policy
// file or a port in use stops it (exit 1), and `--probe`, its image's
// health check, says whether something accepts on `--listen`. No engine:
// the guard only connects to the engine's socket when a create arrives.
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>

#include <initializer_list>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"
#include "tests/testing/test_stack.h"

namespace {

using testing_util::Process;

class GuardProcessTest : public testing::TestWithParam<int> {};

TEST_P(GuardProcessTest, StopsPromptlyWithExitZero) {
  const std::string dir = testing_util::MakeTempDir("guard-stop");
  const std::string port_file = dir + "/port";
  auto guard = Process::Start(
      {testing_util::BinaryPath("crucible-docker-guard"),
       "--listen=127.0.0.1:0", absl::StrCat("--port_file=", port_file),
       absl::StrCat("--engine_socket=", dir, "/no-engine.sock")},
      dir + "/guard.log");
  ASSERT_TRUE(guard.ok()) << guard.status();
  auto port =
      testing_util::WaitForPortFile(port_file, *guard, absl::Seconds(30));
  ASSERT_TRUE(port.ok()) << port.status() << "\n" << guard->Log();

  absl::StatusOr<int> status = guard->Stop(GetParam(), absl::Seconds(5));
  ASSERT_TRUE(status.ok()) << "still running 5 s after signal " << GetParam()
                           << "\n"
                           << guard->Log();
  ASSERT_TRUE(WIFEXITED(*status)) << "killed by signal " << WTERMSIG(*status);
  EXPECT_EQ(WEXITSTATUS(*status), 0) << guard->Log();
}

INSTANTIATE_TEST_SUITE_P(StopSignals, GuardProcessTest,
                         testing::Values(SIGUSR1, SIGTERM, SIGINT));

// A second guard on a port a guard already serves fails its start (exit 1,
// saying so) instead of sharing the port, which would split the proxy's
// connections between two guards, one of them perhaps not the deployed one.
TEST(GuardProcessListenTest, ASecondGuardOnTheSamePortFailsItsStart) {
  const std::string dir = testing_util::MakeTempDir("guard-listen");
  auto start = [&](const std::string& listen, const std::string& name) {
    return Process::Start(
        {testing_util::BinaryPath("crucible-docker-guard"),
         "--listen=" + listen,
         absl::StrCat("--port_file=", dir, "/", name, ".port"),
         absl::StrCat("--engine_socket=", dir, "/no-engine.sock")},
        absl::StrCat(dir, "/", name, ".log"));
  };
  auto first = start("127.0.0.1:0", "first");
  ASSERT_TRUE(first.ok()) << first.status();
  auto port = testing_util::WaitForPortFile(dir + "/first.port", *first,
                                            absl::Seconds(30));
  ASSERT_TRUE(port.ok()) << port.status() << "\n" << first->Log();

  auto second = start(absl::StrCat("127.0.0.1:", *port), "second");
  ASSERT_TRUE(second.ok()) << second.status();
  absl::StatusOr<int> status = second->Wait(absl::Seconds(20));
  ASSERT_TRUE(status.ok()) << "the second guard is serving:\n" << second->Log();
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 1) << second->Log();
  EXPECT_NE(
      second->Log().find(absl::StrCat("cannot listen on 127.0.0.1:", *port)),
      std::string::npos)
      << second->Log();
  EXPECT_TRUE(first->Running()) << first->Log();
}

// A policy file the executor would refuse stops the guard at start too
// (exit 1, naming what is wrong) instead of guarding with the built-in
// policy (operator guide, "crucible-docker-guard": "A bad --policy_file
// stops it at start (exit 1, naming the key), as it does the executor").
TEST(GuardPolicyTest, ABadPolicyFileStopsItAtStartNamingTheKey) {
  const std::string dir = testing_util::MakeTempDir("guard-policy");
  struct Case {
    const char* json;
    const char* says;
  };
  for (const Case& c : std::initializer_list<Case>{
           {R"({"user": "0:0"})", "root"},
           {R"({"memroy_bytes": {"max": 1}})", "memroy_bytes"},
           {R"({"network": "host"})", "host"},
           {"{not json", "policy"},
       }) {
    SCOPED_TRACE(c.json);
    const std::string path = dir + "/policy.json";
    FILE* f = fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs(c.json, f);
    fclose(f);
    auto r = testing_util::RunCommand(
        {testing_util::BinaryPath("crucible-docker-guard"),
         "--listen=127.0.0.1:0", "--policy_file=" + path,
         absl::StrCat("--port_file=", dir, "/port"),
         absl::StrCat("--engine_socket=", dir, "/no-engine.sock")},
        absl::Seconds(30), {"GLOG_logtostderr=1"});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->exit_code, 1) << r->err;
    EXPECT_TRUE(absl::StrContains(r->err, c.says)) << r->err;
    EXPECT_TRUE(absl::StrContains(r->err, "bad policy")) << r->err;
  }
}

// `--probe` (the HEALTHCHECK of the guard's shell-less image) exits 0 while
// something accepts connections on `--listen` and 1 once nothing does.
TEST(GuardProbeTest, ExitsZeroWhileAGuardListensAndOneWhenNothingDoes) {
  const std::string dir = testing_util::MakeTempDir("guard-probe");
  const std::string port_file = dir + "/port";
  auto guard = Process::Start(
      {testing_util::BinaryPath("crucible-docker-guard"),
       "--listen=127.0.0.1:0", absl::StrCat("--port_file=", port_file),
       absl::StrCat("--engine_socket=", dir, "/no-engine.sock")},
      dir + "/guard.log");
  ASSERT_TRUE(guard.ok()) << guard.status();
  auto port =
      testing_util::WaitForPortFile(port_file, *guard, absl::Seconds(30));
  ASSERT_TRUE(port.ok()) << port.status() << "\n" << guard->Log();
  auto probe = [&] {
    return testing_util::RunCommand(
        {testing_util::BinaryPath("crucible-docker-guard"), "--probe",
         absl::StrCat("--listen=127.0.0.1:", *port)},
        absl::Seconds(30), {"GLOG_logtostderr=1"});
  };
  auto up = probe();
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->exit_code, 0) << up->err;

  absl::StatusOr<int> status = guard->Stop(SIGTERM, absl::Seconds(10));
  ASSERT_TRUE(status.ok()) << guard->Log();
  auto down = probe();
  ASSERT_TRUE(down.ok()) << down.status();
  EXPECT_EQ(down->exit_code, 1) << down->err;
}

}  // namespace
