// `crucible cancel` (the real binary) against a real crucible-server with
// no worker, so tasks stay QUEUED (user guide, "Cancellation"): a queued
// task is cancelled at once and its result keeps `--reason`; `--wait`
// exits 130 for CANCELLED; a task that has ended cannot be cancelled
// (FAILED_PRECONDITION, exit 1), an unknown one is NOT_FOUND (exit 1).
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/process.h"
#include "tests/testing/process_flags.h"

namespace {

using ::testing::HasSubstr;

class CancelTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing_util::MakeTempDir("crucible-cancel");
    auto server = testing_util::Process::Start(
        testing_util::WithTestFlags(
            {absl::StrCat(getenv("CRUCIBLE_BIN_DIR"), "/crucible-server"),
             "--listen=127.0.0.1:0", "--port_file=" + dir_ + "/port",
             "--db=" + dir_ + "/tasks.db", "--fleet_admission=false"}),
        dir_ + "/server.log");
    ASSERT_TRUE(server.ok()) << server.status();
    server_.emplace(*std::move(server));
    auto port = testing_util::WaitForPortFile(dir_ + "/port", *server_,
                                              absl::Seconds(20));
    ASSERT_TRUE(port.ok()) << port.status();
    address_ = absl::StrCat("127.0.0.1:", *port);
  }
  testing_util::CommandResult Crucible(std::vector<std::string> args) {
    args.insert(args.begin(),
                {absl::StrCat(getenv("CRUCIBLE_BIN_DIR"), "/crucible"),
                 "--server=" + address_});
    auto result = testing_util::RunCommand(args, absl::Seconds(60));
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : testing_util::CommandResult{};
  }
  // A task that stays QUEUED (no worker): its id.
  std::string Queued() {
    testing_util::CommandResult r =
        Crucible({"submit", "-d", "--image",
                  "localhost/crucible/busybox:latest", "--", "sleep", "600"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return std::string(absl::StripAsciiWhitespace(r.out));
  }

  std::string dir_;
  std::string address_;
  std::optional<testing_util::Process> server_;
};

TEST_F(CancelTest, AQueuedTaskEndsAtOnceKeepingTheReason) {
  const std::string id = Queued();
  ASSERT_FALSE(id.empty());
  testing_util::CommandResult r =
      Crucible({"-o", "json", "cancel", "--reason", "not needed here", id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json task = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(task.is_discarded()) << r.out;
  EXPECT_EQ(task["state"], "TASK_STATE_CANCELLED") << r.out;
  EXPECT_EQ(task["result"]["reason"], "TERMINATION_REASON_CANCELLED") << r.out;
  EXPECT_THAT(task["result"]["errorMessage"].get<std::string>(),
              HasSubstr("not needed here"))
      << r.out;
  // Stored so: `get` shows the same.
  r = Crucible({"-o", "json", "get", id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("not needed here"));

  // Ended: another cancel is FAILED_PRECONDITION, exit 1.
  r = Crucible({"cancel", id});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("FAILED_PRECONDITION"));
  r = Crucible({"cancel", "no-such-task"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));
}

TEST_F(CancelTest, WaitExits130ForACancelledTask) {
  const std::string id = Queued();
  ASSERT_FALSE(id.empty());
  testing_util::CommandResult r = Crucible({"cancel", "--wait", id});
  EXPECT_EQ(r.exit_code, 130) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("CANCELLED"));
}

}  // namespace
