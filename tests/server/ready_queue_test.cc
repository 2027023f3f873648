#include "server/queue/ready_queue.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace server {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1000);

// Picks and removes every ready task, in order.
std::vector<std::string> Drain(ReadyQueue& q, std::vector<QueuePosition>& all) {
  std::vector<std::string> order;
  while (q.HasReady()) {
    const std::string id = q.Pick();
    order.push_back(id);
    for (const QueuePosition& p : all) {
      if (p.id == id) q.Remove(p);
    }
  }
  return order;
}

TEST(ReadyQueueTest, HighestPriorityFirstFifoAmongEquals) {
  ReadyQueue q(/*fairness_interval=*/0);
  std::vector<QueuePosition> all = {
      {"low-old", 0, 1}, {"high", 5, 2}, {"low-new", 0, 3}, {"mid", 1, 4}};
  for (const QueuePosition& p : all) q.Add(p, kNow);
  EXPECT_EQ(Drain(q, all),
            (std::vector<std::string>{"high", "mid", "low-old", "low-new"}));
}

TEST(ReadyQueueTest, EveryNthPickTakesTheOldestWhateverItsPriority) {
  ReadyQueue q(/*fairness_interval=*/3);
  std::vector<QueuePosition> all = {{"old", 0, 1}};
  for (int i = 0; i < 5; ++i)
    all.push_back({"high" + std::to_string(i), 9, uint64_t(10 + i)});
  for (const QueuePosition& p : all) q.Add(p, kNow);
  std::vector<std::string> order = Drain(q, all);
  ASSERT_EQ(order.size(), 6u);
  EXPECT_EQ(order[2], "old");  // the third pick
}

TEST(ReadyQueueTest, DelayedTasksWaitForTheirTimeThenKeepTheirPlace) {
  ReadyQueue q(0);
  std::vector<QueuePosition> all = {{"later", 5, 1, kNow + absl::Seconds(10)},
                                    {"now", 0, 2, kNow}};
  for (const QueuePosition& p : all) q.Add(p, kNow);
  q.PromoteDue(kNow + absl::Seconds(9));
  EXPECT_EQ(q.Pick(), "now");
  q.PromoteDue(kNow + absl::Seconds(10));
  EXPECT_EQ(q.Pick(), "later");  // its priority counts once it is due
  EXPECT_EQ(Drain(q, all), (std::vector<std::string>{"later", "now"}));
}

TEST(ReadyQueueTest, RemoveTakesATaskOutWhereverItIs) {
  ReadyQueue q(0);
  QueuePosition ready{"r", 0, 1, kNow};
  QueuePosition delayed{"d", 0, 2, kNow + absl::Seconds(1)};
  q.Add(ready, kNow);
  q.Add(delayed, kNow);
  q.Remove(delayed);
  q.Remove(ready);
  q.Remove(ready);  // absent: nothing happens
  q.PromoteDue(kNow + absl::Hours(1));
  EXPECT_FALSE(q.HasReady());
}

}  // namespace
}  // namespace server
