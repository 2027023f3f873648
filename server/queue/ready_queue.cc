#include "server/queue/ready_queue.h"

namespace server {

void ReadyQueue::Add(const QueuePosition& p, absl::Time now) {
  if (p.ready_at <= now) {
    ready_.insert(KeyOf(p));
    ready_fifo_.emplace(p.order, p.id);
  } else {
    delayed_.emplace(p.ready_at, p.id, p.priority, p.order);
  }
}

void ReadyQueue::Remove(const QueuePosition& p) {
  ready_.erase(KeyOf(p));
  ready_fifo_.erase({p.order, p.id});
  delayed_.erase({p.ready_at, p.id, p.priority, p.order});
}

void ReadyQueue::PromoteDue(absl::Time now) {
  while (!delayed_.empty() && std::get<0>(*delayed_.begin()) <= now) {
    auto [ready_at, id, priority, order] = *delayed_.begin();
    delayed_.erase(delayed_.begin());
    ready_fifo_.emplace(order, id);
    ready_.emplace(-priority, order, std::move(id));
  }
}

const std::string& ReadyQueue::Pick() {
  ++picks_;
  if (fairness_interval_ > 0 && picks_ % fairness_interval_ == 0) {
    return ready_fifo_.begin()->second;
  }
  return std::get<2>(*ready_.begin());
}

}  // namespace server
