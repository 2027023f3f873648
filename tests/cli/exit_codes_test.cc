#include "cli/exit_codes.h"

#include "cli/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cli {
namespace {

using crucible::v1::Task;
using testing::HasSubstr;

Task Ended(crucible::v1::TaskState state,
           crucible::v1::TerminationReason reason, int code,
           const std::string& message = "") {
  Task t;
  t.set_id("abc");
  t.set_state(state);
  t.mutable_result()->set_reason(reason);
  t.mutable_result()->set_exit_code(code);
  t.mutable_result()->set_error_message(message);
  return t;
}

TEST(ExitCodeTest, TaskEndings) {
  using namespace crucible::v1;
  EXPECT_EQ(ExitCodeForTask(
                Ended(TASK_STATE_SUCCEEDED, TERMINATION_REASON_EXITED, 0)),
            0);
  EXPECT_EQ(
      ExitCodeForTask(Ended(TASK_STATE_FAILED, TERMINATION_REASON_EXITED, 3)),
      3);
  EXPECT_EQ(
      ExitCodeForTask(Ended(TASK_STATE_FAILED, TERMINATION_REASON_EXITED, 255)),
      255);
  EXPECT_EQ(
      ExitCodeForTask(Ended(TASK_STATE_FAILED, TERMINATION_REASON_EXITED, 256)),
      125);
  EXPECT_EQ(ExitCodeForTask(
                Ended(TASK_STATE_TIMED_OUT, TERMINATION_REASON_TIMEOUT, 137)),
            124);
  EXPECT_EQ(ExitCodeForTask(
                Ended(TASK_STATE_CANCELLED, TERMINATION_REASON_CANCELLED, 137)),
            130);
  EXPECT_EQ(ExitCodeForTask(
                Ended(TASK_STATE_FAILED, TERMINATION_REASON_OOM_KILLED, 137)),
            125);
  EXPECT_EQ(
      ExitCodeForTask(Ended(TASK_STATE_FAILED, TERMINATION_REASON_REJECTED, 0)),
      125);
  EXPECT_EQ(ExitCodeForTask(
                Ended(TASK_STATE_FAILED, TERMINATION_REASON_INFRASTRUCTURE, 0)),
            69);
  EXPECT_EQ(ExitCodeForTask(
                Ended(TASK_STATE_RUNNING, TERMINATION_REASON_UNSPECIFIED, 0)),
            1);
}

TEST(ExitCodeTest, RpcFailures) {
  EXPECT_EQ(ExitCodeForStatus(absl::UnavailableError("down")), 69);
  EXPECT_EQ(ExitCodeForStatus(absl::DeadlineExceededError("slow")), 69);
  EXPECT_EQ(ExitCodeForStatus(absl::NotFoundError("no")), 1);
  EXPECT_EQ(ExitCodeForStatus(absl::InvalidArgumentError("bad")), 1);
  EXPECT_EQ(ErrorLine(absl::NotFoundError("no task x")),
            "crucible: NOT_FOUND: no task x");
}

TEST(ExitCodeTest, EndingLineOnlyForEndingsWithoutAnExitCode) {
  using namespace crucible::v1;
  EXPECT_EQ(
      EndingLine(Ended(TASK_STATE_SUCCEEDED, TERMINATION_REASON_EXITED, 0)),
      "");
  EXPECT_EQ(EndingLine(Ended(TASK_STATE_FAILED, TERMINATION_REASON_EXITED, 2)),
            "");
  EXPECT_EQ(EndingLine(Ended(TASK_STATE_TIMED_OUT, TERMINATION_REASON_TIMEOUT,
                             137, "30s")),
            "crucible: task abc TIMED_OUT: 30s");
  EXPECT_THAT(EndingLine(Ended(TASK_STATE_FAILED, TERMINATION_REASON_REJECTED,
                               0, "no")),
              HasSubstr("FAILED (REJECTED): no"));
  EXPECT_THAT(EndingLine(Ended(TASK_STATE_FAILED,
                               TERMINATION_REASON_INFRASTRUCTURE, 0, "lost")),
              HasSubstr("FAILED (INFRASTRUCTURE): lost"));
}

TEST(FormatTest, TableHasHeaderAndRows) {
  Task t = Ended(crucible::v1::TASK_STATE_FAILED,
                 crucible::v1::TERMINATION_REASON_EXITED, 3);
  t.mutable_spec()->set_image("busybox");
  t.mutable_spec()->add_command("sh");
  t.mutable_spec()->add_command("-c");
  t.mutable_spec()->add_command("exit 3");
  t.mutable_create_time()->set_seconds(1000);
  std::string table = FormatTable({t}, absl::FromUnixSeconds(1000 + 125));
  EXPECT_THAT(table,
              HasSubstr("ID   STATE   EXIT  IMAGE    COMMAND         AGE\n"));
  EXPECT_THAT(table,
              HasSubstr("abc  FAILED  3     busybox  sh -c 'exit 3'  2m\n"));
  // An admin's list of every tenant says whose each task is.
  t.set_tenant("team-a");
  table = FormatTable({t}, absl::FromUnixSeconds(1000 + 125), true, true);
  EXPECT_THAT(table, HasSubstr("ID   TENANT  STATE   EXIT"));
  EXPECT_THAT(table, HasSubstr("abc  team-a  FAILED  3 "));
  EXPECT_THAT(FormatTask(t, absl::FromUnixSeconds(2000)),
              HasSubstr("EXITED, exit code 3"));
  EXPECT_THAT(TaskToJson(t), HasSubstr("\"id\":\"abc\""));
}

}  // namespace
}  // namespace cli
