#include "server/delivery/delivery.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"

namespace server {

using crucible::v1::TaskEvent;

void Delivery::AddSink(int64_t session, WorkerSink* sink, int64_t replaced) {
  absl::MutexLock lock(&mu_);
  if (replaced != 0) sinks_.erase(replaced);
  sinks_[session] = sink;
}

void Delivery::RemoveSink(int64_t session) {
  absl::MutexLock lock(&mu_);
  sinks_.erase(session);
}

int64_t Delivery::Subscribe(const std::string& task_id, TaskListener* listener,
                            uint64_t after_op) {
  absl::MutexLock lock(&mu_);
  const int64_t id = ++next_subscription_;
  listeners_[task_id][id] = Listener{listener, after_op};
  subscription_task_[id] = task_id;
  subscriptions_.fetch_add(1, std::memory_order_release);
  return id;
}

void Delivery::FollowFromDelivered(int64_t subscription) {
  absl::MutexLock lock(&mu_);
  auto it = subscription_task_.find(subscription);
  if (it == subscription_task_.end()) return;
  listeners_.at(it->second).at(subscription).after_op = delivered_op_;
}

bool Delivery::Unsubscribe(int64_t subscription) {
  absl::MutexLock lock(&mu_);
  auto it = subscription_task_.find(subscription);
  if (it == subscription_task_.end()) return false;
  subscriptions_.fetch_sub(1, std::memory_order_release);
  auto l = listeners_.find(it->second);
  if (l != listeners_.end()) {
    l->second.erase(subscription);
    if (l->second.empty()) listeners_.erase(l);
  }
  subscription_task_.erase(it);
  return true;
}

std::string GoingAwayMessage(const std::string& reason) {
  return absl::StrCat("the server is going away (", reason,
                      "): call again to go on following the task (another "
                      "server of the same store serves it)");
}

void Delivery::GoAway(const std::string& reason) {
  absl::MutexLock lock(&mu_);
  for (auto& [task_id, listeners] : listeners_) {
    for (auto& [id, l] : listeners) l.listener->OnGoingAway(reason);
  }
}

void Delivery::Deliver(Announcement& out, uint64_t op) {
  absl::MutexLock lock(&mu_);
  // Per task, its events of this operation in one call.
  std::vector<std::pair<std::string, std::vector<TaskEvent>>> by_task;
  for (const TaskEvent& event : out.events) {
    if (!listeners_.contains(event.task_id())) continue;
    auto it = std::find_if(by_task.begin(), by_task.end(), [&](const auto& p) {
      return p.first == event.task_id();
    });
    if (it == by_task.end()) {
      by_task.emplace_back(event.task_id(), std::vector<TaskEvent>{});
      it = by_task.end() - 1;
    }
    it->second.push_back(event);
  }
  for (const auto& [task_id, events] : by_task) {
    for (const auto& [id, l] : listeners_.at(task_id)) {
      if (op > l.after_op) l.listener->OnEvents(events);
    }
  }
  for (const auto& [task_id, chunk] : out.outputs) {
    auto it = listeners_.find(task_id);
    if (it == listeners_.end()) continue;
    for (const auto& [id, l] : it->second) {
      if (op > l.after_op) l.listener->OnOutput(chunk);
    }
  }
  for (auto& [session, message] : out.messages) {
    auto it = sinks_.find(session);
    if (it == sinks_.end()) continue;
    it->second->Send(std::move(message));
    if (std::find(unflushed_.begin(), unflushed_.end(), session) ==
        unflushed_.end()) {
      unflushed_.push_back(session);
    }
  }
  delivered_op_ = op;
}

void Delivery::FlushSinks() {
  absl::MutexLock lock(&mu_);
  for (int64_t session : unflushed_) {
    auto it = sinks_.find(session);
    if (it != sinks_.end()) it->second->Flush();
  }
  unflushed_.clear();
}

}  // namespace server
