#include "server/scheduler/transitions.h"

#include <utility>
#include <vector>

#include "common/task_state.h"
#include "gtest/gtest.h"

namespace server {
namespace {

using S = crucible::v1::TaskState;

const S kAll[] = {S::TASK_STATE_UNSPECIFIED, S::TASK_STATE_QUEUED,
                  S::TASK_STATE_LEASED,      S::TASK_STATE_RUNNING,
                  S::TASK_STATE_SUCCEEDED,   S::TASK_STATE_FAILED,
                  S::TASK_STATE_TIMED_OUT,   S::TASK_STATE_CANCELLED};

TEST(TransitionsTest, AllowsExactlyTheLifecycle) {
  const std::vector<std::pair<S, S>> allowed = {
      {S::TASK_STATE_QUEUED, S::TASK_STATE_LEASED},
      {S::TASK_STATE_LEASED, S::TASK_STATE_RUNNING},
      {S::TASK_STATE_LEASED, S::TASK_STATE_QUEUED},
      {S::TASK_STATE_RUNNING, S::TASK_STATE_QUEUED},
      {S::TASK_STATE_QUEUED, S::TASK_STATE_CANCELLED},
      {S::TASK_STATE_LEASED, S::TASK_STATE_CANCELLED},
      {S::TASK_STATE_RUNNING, S::TASK_STATE_CANCELLED},
      {S::TASK_STATE_LEASED, S::TASK_STATE_SUCCEEDED},
      {S::TASK_STATE_LEASED, S::TASK_STATE_FAILED},
      {S::TASK_STATE_LEASED, S::TASK_STATE_TIMED_OUT},
      {S::TASK_STATE_RUNNING, S::TASK_STATE_SUCCEEDED},
      {S::TASK_STATE_RUNNING, S::TASK_STATE_FAILED},
      {S::TASK_STATE_RUNNING, S::TASK_STATE_TIMED_OUT},
      {S::TASK_STATE_QUEUED, S::TASK_STATE_FAILED},
  };
  for (S from : kAll) {
    for (S to : kAll) {
      bool expected = false;
      for (const auto& p : allowed)
        expected |= (p.first == from && p.second == to);
      absl::Status s = CheckTransition(from, to);
      if (expected) {
        EXPECT_TRUE(s.ok()) << from << "->" << to << ": " << s;
      } else {
        EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition)
            << from << "->" << to;
      }
    }
  }
}

TEST(TransitionsTest, TerminalStatesNeverChange) {
  for (S from : {S::TASK_STATE_SUCCEEDED, S::TASK_STATE_FAILED,
                 S::TASK_STATE_TIMED_OUT, S::TASK_STATE_CANCELLED}) {
    EXPECT_TRUE(common::IsTerminal(from));
    for (S to : kAll) {
      EXPECT_EQ(CheckTransition(from, to).code(),
                absl::StatusCode::kFailedPrecondition);
    }
  }
  EXPECT_FALSE(common::IsTerminal(S::TASK_STATE_RUNNING));
  EXPECT_FALSE(common::IsTerminal(S::TASK_STATE_QUEUED));
}

}  // namespace
}  // namespace server
