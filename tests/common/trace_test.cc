// common/trace: W3C traceparent parsing (what CreateTask honours and what
// it ignores) and how log lines name a task.
#include "common/trace.h"

#include <optional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace {

using common::IsTraceId;
using common::TaskTag;
using common::TraceIdFromTraceparent;

constexpr char kTraceId[] = "4bf92f3577b34da6a3ce929d0e0e4736";

TEST(TraceIdTest, ThirtyTwoLowercaseHexDigitsNotAllZeros) {
  EXPECT_TRUE(IsTraceId(kTraceId));
  EXPECT_FALSE(IsTraceId(""));
  EXPECT_FALSE(IsTraceId("00000000000000000000000000000000"));
  EXPECT_FALSE(IsTraceId("4BF92F3577B34DA6A3CE929D0E0E4736"));   // uppercase
  EXPECT_FALSE(IsTraceId("4bf92f3577b34da6a3ce929d0e0e473"));    // 31
  EXPECT_FALSE(IsTraceId("4bf92f3577b34da6a3ce929d0e0e47360"));  // 33
  EXPECT_FALSE(IsTraceId("4bf92f3577b34da6a3ce929d0e0e473g"));
  EXPECT_FALSE(IsTraceId("4bf92f3577b34da6a3ce929d0e0e473 "));
}

TEST(TraceparentTest, ValidVersion00GivesItsTraceId) {
  EXPECT_EQ(TraceIdFromTraceparent(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            kTraceId);
  EXPECT_EQ(TraceIdFromTraceparent(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
            kTraceId);
}

TEST(TraceparentTest, LaterVersionsMayAppendFields) {
  EXPECT_EQ(TraceIdFromTraceparent(
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            kTraceId);
  EXPECT_EQ(TraceIdFromTraceparent(
                "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz"),
            kTraceId);
  // ...but only after a '-'.
  EXPECT_EQ(TraceIdFromTraceparent(
                "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"),
            std::nullopt);
}

TEST(TraceparentTest, MalformedIsIgnored) {
  for (const char* bad : {
           "",
           "garbage",
           // All-zero trace id, all-zero parent id.
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
           // Version ff is invalid; version 00 has nothing after the flags.
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
           // Uppercase, short fields, wrong separators, non-hex.
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
           "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
           "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
           " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
       }) {
    EXPECT_EQ(TraceIdFromTraceparent(bad), std::nullopt) << bad;
  }
}

TEST(TaskTagTest, NamesTheTaskAndItsTrace) {
  EXPECT_EQ(TaskTag("t1", kTraceId),
            "task t1 trace=4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(TaskTag("t1", ""), "task t1");
}

}  // namespace
