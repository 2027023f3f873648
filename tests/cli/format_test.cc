// The pure formatting of events, progress, JSON and limits, and the status
// line of Output on a (fake) terminal.
#include "cli/format.h"

#include <cstdio>
#include <string>

#include "cli/output.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cli {
namespace {

using testing::HasSubstr;
using testing::Not;

TEST(FormatEventTest, TimeStateAttemptResultAndMessage) {
  crucible::v1::TaskEvent event;
  event.set_state(crucible::v1::TASK_STATE_FAILED);
  event.set_attempt(2);
  event.mutable_event_time()->set_seconds(1764136269);
  event.mutable_result()->set_reason(crucible::v1::TERMINATION_REASON_EXITED);
  event.mutable_result()->set_exit_code(4);
  event.set_message("exited 4");
  EXPECT_EQ(FormatEvent(event),
            "2025-11-26T05:51:09Z  FAILED  attempt 2  EXITED (exit code 4)  -- "
            "exited 4");
  crucible::v1::TaskEvent queued;
  queued.set_state(crucible::v1::TASK_STATE_QUEUED);
  EXPECT_EQ(FormatEvent(queued), "-  QUEUED");
}

TEST(ProgressLineTest, StateAttemptAfterTheFirstAndAge) {
  EXPECT_EQ(
      ProgressLine("t1", crucible::v1::TASK_STATE_RUNNING, 1, absl::Seconds(5)),
      "task t1 RUNNING, 5s");
  EXPECT_EQ(
      ProgressLine("t1", crucible::v1::TASK_STATE_QUEUED, 2, absl::Minutes(3)),
      "task t1 QUEUED, attempt 2, 3m");
}

TEST(ToJsonTest, OneLineWithZeroFieldsPresent) {
  crucible::v1::Task task;
  task.set_id("x");
  task.mutable_result()->set_exit_code(0);
  const std::string json = ToJson(task);
  EXPECT_THAT(json, Not(HasSubstr("\n")));
  EXPECT_THAT(json, HasSubstr("\"exitCode\":0"));
  EXPECT_THAT(json, HasSubstr("\"state\":\"TASK_STATE_UNSPECIFIED\""));
}

// A task stored before the server refused out-of-range times still prints
// as JSON: those fields as strings, the rest as usual.
TEST(ToJsonTest, OutOfRangeDurationsAndTimestampsPrintAsStrings) {
  crucible::v1::Task task;
  task.set_id("x");
  task.mutable_spec()->set_image("img");
  task.mutable_spec()->mutable_timeout()->set_seconds(INT64_MAX);
  task.mutable_spec()->mutable_not_before()->set_seconds(INT64_MAX / 2);
  task.mutable_spec()
      ->mutable_retry_policy()
      ->mutable_max_backoff()
      ->set_seconds(5);
  const std::string json = ToJson(task);
  EXPECT_THAT(json, Not(HasSubstr("\n")));
  EXPECT_THAT(json, HasSubstr("\"id\":\"x\""));
  EXPECT_THAT(json, HasSubstr("\"image\":\"img\""));
  EXPECT_THAT(json, HasSubstr("\"timeout\":\"9223372036854775807s\""));
  EXPECT_THAT(json, HasSubstr("\"notBefore\":\""));
  EXPECT_THAT(json, HasSubstr("\"maxBackoff\":\"5s\""));
}

TEST(FormatTaskTest, LimitsAndDuration) {
  crucible::v1::Task task;
  task.set_id("x");
  task.mutable_spec()->mutable_resources()->set_memory_bytes(1024);
  task.mutable_spec()->mutable_resources()->set_cpu_millis(500);
  task.mutable_spec()->mutable_timeout()->set_seconds(30);
  task.mutable_result()->mutable_start_time()->set_seconds(100);
  task.mutable_result()->mutable_finish_time()->set_seconds(102);
  const std::string text = FormatTask(task, absl::FromUnixSeconds(200));
  EXPECT_THAT(text,
              HasSubstr("LIMITS:     memory=1024 cpu=500m timeout=30s\n"));
  EXPECT_THAT(text, HasSubstr("DURATION:   2s\n"));
}

TEST(FormatTaskTest, TraceIdFollowsTheIdWhenThereIsOne) {
  crucible::v1::Task task;
  task.set_id("x");
  task.set_trace_id("4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_THAT(FormatTask(task, absl::FromUnixSeconds(200)),
              HasSubstr("ID:         x\n"
                        "TRACE ID:   4bf92f3577b34da6a3ce929d0e0e4736\n"
                        "STATE:"));
  task.clear_trace_id();
  EXPECT_THAT(FormatTask(task, absl::FromUnixSeconds(200)),
              Not(HasSubstr("TRACE ID:")));
}

TEST(FormatTaskTest, FilesAndWhatBecameOfEachArtifact) {
  crucible::v1::Task task;
  task.set_id("x");
  task.mutable_spec()->add_files()->set_path("in/a.txt");
  task.mutable_spec()->add_files()->set_path("run.sh");
  crucible::v1::TaskResult* r = task.mutable_result();
  r->set_reason(crucible::v1::TERMINATION_REASON_EXITED);
  auto add = [r](const std::string& path, crucible::v1::ArtifactStatus status,
                 int64_t size) {
    crucible::v1::ArtifactInfo* a = r->add_artifacts();
    a->set_path(path);
    a->set_status(status);
    a->set_size_bytes(size);
  };
  add("out/a.json", crucible::v1::ARTIFACT_STATUS_COLLECTED, 12);
  add("big.bin", crucible::v1::ARTIFACT_STATUS_SKIPPED_OVER_LIMIT, 9000000);
  add("report.txt", crucible::v1::ARTIFACT_STATUS_NOT_FOUND, 0);
  add("out/dir", crucible::v1::ARTIFACT_STATUS_NOT_REGULAR, 0);
  const std::string text = FormatTask(task, absl::FromUnixSeconds(200));
  EXPECT_THAT(text, HasSubstr("FILES:      in/a.txt, run.sh\n"));
  EXPECT_THAT(text,
              HasSubstr("ARTIFACTS:  out/a.json (12 bytes), big.bin (9000000 "
                        "bytes, skipped: over the limit), report.txt (not "
                        "found), out/dir (skipped: not a regular file)\n"));
}

TEST(FormatArtifactTest, AsGetShowsItWithTheChecksumOnRequest) {
  crucible::v1::ArtifactInfo a;
  a.set_path("out/a.json");
  a.set_status(crucible::v1::ARTIFACT_STATUS_COLLECTED);
  a.set_size_bytes(12);
  a.set_sha256(std::string(64, 'f'));
  EXPECT_EQ(FormatArtifact(a), "out/a.json (12 bytes)");
  EXPECT_EQ(FormatArtifact(a, /*sha256=*/true),
            "out/a.json (12 bytes, sha256 " + std::string(64, 'f') + ")");
  a.set_status(crucible::v1::ARTIFACT_STATUS_NOT_FOUND);
  a.set_size_bytes(0);
  a.clear_sha256();
  EXPECT_EQ(FormatArtifact(a, /*sha256=*/true), "out/a.json (not found)");
  a.set_status(crucible::v1::ARTIFACT_STATUS_INCOMPLETE);
  a.set_size_bytes(5);
  EXPECT_EQ(FormatArtifact(a, /*sha256=*/true),
            "out/a.json (5 bytes, lost: did not all reach the server)");
}

std::string Contents(FILE* f) {
  std::string out;
  rewind(f);
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), f)) > 0) out.append(buffer, n);
  return out;
}

TEST(OutputTest, StatusLineIsErasedBeforeOutputAndRedrawnAtALineStart) {
  FILE* out = tmpfile();
  FILE* err = tmpfile();
  ASSERT_NE(out, nullptr);
  ASSERT_NE(err, nullptr);
  {
    Output output(out, err, /*status_line=*/true);
    output.SetStatus("S1");
    output.Out("partial");  // erases S1; no newline: S1 waits
    output.Out(" line\n");  // the line is complete: S1 again
    output.SetStatus("");   // erased for good
  }
  EXPECT_EQ(Contents(out), "partial line\n");
  EXPECT_EQ(Contents(err), "S1\r\033[KS1\r\033[K");
  // Redrawn after a complete line: erase, data, status again.
  FILE* err2 = tmpfile();
  {
    Output output(out, err2, /*status_line=*/true);
    output.SetStatus("S2");
    output.Err("e\n");
  }
  EXPECT_EQ(Contents(err2), "S2\r\033[Ke\nS2");
  FILE* err3 = tmpfile();
  {
    Output output(out, err3, /*status_line=*/false);
    output.SetStatus("never");
    output.Err("e\n");
  }
  EXPECT_EQ(Contents(err3), "e\n");
  fclose(out);
  fclose(err);
  fclose(err2);
  fclose(err3);
}

}  // namespace
}  // namespace cli
