// The crucible-docker-guard binary's stop: it runs as PID 1 of the
// docker-proxy image, whose STOPSIGNAL is SIGUSR1 (HAProxy's soft stop),
// so it must stop on SIGUSR1 as on SIGTERM, at once and with exit 0, rather
// than be killed at the end of the stop grace. No engine: the guard only
// connects to the engine's socket when a create arrives.
#include <signal.h>
#include <sys/wait.h>

#include <string>

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

}  // namespace
