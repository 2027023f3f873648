#ifndef CRUCIBLE_SERVER_QUEUE_READY_QUEUE_H_
#define CRUCIBLE_SERVER_QUEUE_READY_QUEUE_H_

#include <cstdint>
#include <set>
#include <string>
#include <tuple>
#include <utility>

#include "absl/time/time.h"

namespace server {

// Where a QUEUED task stands in the queue.
struct QueuePosition {
  std::string id;
  int priority = 0;
  // FIFO position among equal priorities (the order tasks were queued in).
  uint64_t order = 0;
  // Not handed out before (not_before, backoff).
  absl::Time ready_at = absl::InfinitePast();
};

// The QUEUED tasks: ready ones by priority then FIFO, and delayed ones until
// their ready_at. No pick scans them. Not thread-safe: its owner keeps it
// under its lock.
class ReadyQueue {
 public:
  // Every fairness_interval-th pick takes the oldest ready task whatever its
  // priority (bounded starvation); 0 means strict priority order.
  explicit ReadyQueue(int fairness_interval)
      : fairness_interval_(fairness_interval) {}

  // Queues a task: ready if its ready_at is not after `now`, else delayed.
  void Add(const QueuePosition& p, absl::Time now);
  // Takes a task out, wherever it is (nothing if it is not queued). `p` must
  // be what it was added with.
  void Remove(const QueuePosition& p);
  // Makes the delayed tasks whose ready_at is not after `now` ready.
  void PromoteDue(absl::Time now);
  bool HasReady() const { return !ready_.empty(); }
  // The id of the task to hand out next (it stays queued until removed):
  // highest priority first, FIFO among equals; now and then the oldest.
  // Requires HasReady().
  const std::string& Pick();

 private:
  using Key = std::tuple<int, uint64_t, std::string>;  // -priority, order, id
  static Key KeyOf(const QueuePosition& p) {
    return {-p.priority, p.order, p.id};
  }

  const int fairness_interval_;
  uint64_t picks_ = 0;
  std::set<Key> ready_;
  std::set<std::pair<uint64_t, std::string>> ready_fifo_;
  // (ready_at, id) -> (priority, order), to make it ready.
  std::set<std::tuple<absl::Time, std::string, int, uint64_t>> delayed_;
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_QUEUE_READY_QUEUE_H_
