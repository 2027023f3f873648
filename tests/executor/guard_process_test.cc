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

}  // namespace
