#include "server/queue/ready_queue.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
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

// Tenants' queues for the fair-share tests: positions by id, so a pick can
// be removed as the scheduler removes it.
class Tenants {
 public:
  explicit Tenants(ReadyQueue& q) : q_(q) {}
  // Queues `n` tasks of `tenant` (ids "<tenant>-<i>"), ready now.
  void Add(const std::string& tenant, int n, int priority = 0) {
    for (int i = 0; i < n; ++i) {
      QueuePosition p{absl::StrCat(tenant, "-", count_[tenant]++), priority,
                      next_order_++, absl::InfinitePast(), tenant};
      q_.Add(p, kNow);
      queued_[p.id] = p;
    }
  }
  // Picks and removes one task; returns its tenant.
  std::string Dispatch() {
    const QueuePosition p = queued_.at(q_.Pick());
    q_.Remove(p);
    queued_.erase(p.id);
    return p.tenant;
  }
  // The tenants of the next `n` dispatches.
  std::vector<std::string> Dispatch(int n) {
    std::vector<std::string> order;
    for (int i = 0; i < n && q_.HasReady(); ++i) order.push_back(Dispatch());
    return order;
  }

 private:
  ReadyQueue& q_;
  uint64_t next_order_ = 0;
  std::map<std::string, int> count_;
  std::map<std::string, QueuePosition> queued_;
};

using Order = std::vector<std::string>;

TEST(ReadyQueueFairShareTest, EqualWeightsAlternate) {
  ReadyQueue q(0);
  Tenants t(q);
  t.Add("a", 4);
  t.Add("b", 4);
  EXPECT_EQ(t.Dispatch(8), (Order{"a", "b", "a", "b", "a", "b", "a", "b"}));
  EXPECT_FALSE(q.HasReady());
}

TEST(ReadyQueueFairShareTest, WeightsShareThePicks) {
  ReadyQueue q(0);
  q.SetWeights({{"a", 3}}, 1);
  Tenants t(q);
  t.Add("a", 100);
  t.Add("b", 100);
  // a (stride 1/3) finishes at 1/3, 2/3, 1, ...; b at 1, 2, ...; a tie goes
  // to the tenant queued in that place first.
  EXPECT_EQ(t.Dispatch(8), (Order{"a", "a", "a", "b", "a", "a", "a", "b"}));
  std::map<std::string, int> share;
  for (const std::string& tenant : t.Dispatch(80)) ++share[tenant];
  EXPECT_EQ(share["a"], 60);
  EXPECT_EQ(share["b"], 20);
}

// The scenario: tenant a has 100 000 tasks queued, b submits one;
// b's goes within about one dispatch per active tenant.
TEST(ReadyQueueFairShareTest, ANewcomerIsNotBehindABacklog) {
  ReadyQueue q(10);
  Tenants t(q);
  t.Add("a", 100000);
  EXPECT_EQ(t.Dispatch(1000), Order(1000, "a"));
  t.Add("b", 1);
  EXPECT_EQ(t.Dispatch(2), (Order{"a", "b"}));
  EXPECT_EQ(t.Dispatch(3), Order(3, "a"));
}

TEST(ReadyQueueFairShareTest, ANewcomerWaitsAboutOneDispatchPerActiveTenant) {
  ReadyQueue q(10);
  Tenants t(q);
  for (int i = 0; i < 100; ++i) t.Add(absl::StrCat("busy", i), 1000);
  t.Dispatch(12345);
  t.Add("new", 1);
  Order next = t.Dispatch(101);
  auto at = std::find(next.begin(), next.end(), "new");
  ASSERT_NE(at, next.end());
  EXPECT_LE(at - next.begin(), 100);  // 100 other tenants active
}

TEST(ReadyQueueFairShareTest, IdleTimeEarnsNoCredit) {
  ReadyQueue q(0);
  Tenants t(q);
  t.Add("a", 1000);
  t.Add("b", 1);
  EXPECT_EQ(t.Dispatch(2), (Order{"a", "b"}));
  EXPECT_EQ(t.Dispatch(500), Order(500, "a"));  // b idle meanwhile
  t.Add("b", 4);
  // b starts at the current virtual time: it alternates with a, it does
  // not get its 500 missed turns back.
  EXPECT_EQ(t.Dispatch(6), (Order{"a", "b", "a", "b", "a", "b"}));
}

TEST(ReadyQueueFairShareTest, AHeldTenantIsSkippedAndResumesAtTheCurrentTime) {
  ReadyQueue q(0);
  Tenants t(q);
  t.Add("a", 100);
  t.Add("b", 100);
  q.SetHeld("b", true);
  EXPECT_EQ(t.Dispatch(10), Order(10, "a"));
  q.SetHeld("b", false);
  EXPECT_EQ(t.Dispatch(4), (Order{"a", "b", "a", "b"}));
  // Held with nothing else ready: nothing is ready to pick.
  q.SetHeld("a", true);
  q.SetHeld("b", true);
  EXPECT_FALSE(q.HasReady());
  q.SetHeld("a", false);
  EXPECT_TRUE(q.HasReady());
}

TEST(ReadyQueueFairShareTest, AHoldOnATenantWithNothingQueuedLasts) {
  ReadyQueue q(0);
  Tenants t(q);
  q.SetHeld("b", true);
  t.Add("b", 1);
  EXPECT_FALSE(q.HasReady());
  t.Add("a", 1);
  EXPECT_EQ(t.Dispatch(2), Order{"a"});
  q.SetHeld("b", false);
  EXPECT_EQ(t.Dispatch(1), Order{"b"});
}

TEST(ReadyQueueFairShareTest, PriorityFifoAndTheOldestWithinATenant) {
  ReadyQueue q(/*fairness_interval=*/3);
  std::vector<QueuePosition> all = {
      {"a-old", 0, 1, kNow, "a"}, {"a-hi1", 9, 2, kNow, "a"},
      {"a-hi2", 9, 3, kNow, "a"}, {"a-hi3", 9, 4, kNow, "a"},
      {"b-low", 0, 5, kNow, "b"}, {"b-hi", 5, 6, kNow, "b"},
      {"b-mid", 1, 7, kNow, "b"}};
  for (const QueuePosition& p : all) q.Add(p, kNow);
  // Tenants alternate; a's third pick is its oldest task (bounded
  // starvation counts each tenant's picks), b's is its third by priority.
  EXPECT_EQ(Drain(q, all),
            (std::vector<std::string>{"a-hi1", "b-hi", "a-hi2", "b-mid",
                                      "a-old", "b-low", "a-hi3"}));
}

TEST(ReadyQueueFairShareTest, ADelayedTaskMakesItsTenantActiveWhenDue) {
  ReadyQueue q(0);
  std::vector<QueuePosition> all = {{"a1", 0, 1, kNow, "a"},
                                    {"a2", 0, 2, kNow, "a"},
                                    {"a3", 0, 3, kNow, "a"},
                                    {"a4", 0, 4, kNow, "a"},
                                    {"b1", 9, 5, kNow + absl::Seconds(5), "b"}};
  for (const QueuePosition& p : all) q.Add(p, kNow);
  EXPECT_EQ(q.Pick(), "a1");
  q.Remove(all[0]);
  q.PromoteDue(kNow + absl::Seconds(4));
  EXPECT_EQ(q.Pick(), "a2");
  q.Remove(all[1]);
  q.PromoteDue(kNow + absl::Seconds(5));
  // b takes its turn at once, not behind a's backlog.
  EXPECT_EQ(Drain(q, all), (std::vector<std::string>{"a3", "b1", "a4"}));
}

}  // namespace
}  // namespace server
