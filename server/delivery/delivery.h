#ifndef CRUCIBLE_SERVER_DELIVERY_DELIVERY_H_
#define CRUCIBLE_SERVER_DELIVERY_DELIVERY_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "crucible/v1/queue_service.pb.h"
#include "crucible/v1/task.pb.h"

namespace server {

// Receives the messages for one connected worker (assignments, cancels).
// Send() and Flush() are called under the delivery lock, messages in the
// order the scheduler decided them: they must not block and must not call
// into the Scheduler or the Delivery.
class WorkerSink {
 public:
  virtual ~WorkerSink() = default;
  // Queues a message for the worker.
  virtual void Send(crucible::v1::ConnectResponse message) = 0;
  // Sends what was queued: called once the callbacks of a commit have all
  // run, so one commit's messages can go out together.
  virtual void Flush() {}
};

// Why a stream that follows a task ends when the server stops: for its
// client, who follows it again (UNAVAILABLE).
std::string GoingAwayMessage(const std::string& reason);

// Follows one task. Called like WorkerSink::Send (no blocking, no calls into
// the Scheduler), in commit order.
class TaskListener {
 public:
  virtual ~TaskListener() = default;
  // A state change, after it was stored.
  virtual void OnEvent(const crucible::v1::TaskEvent& event) = 0;
  // The changes one operation made to the task, in order (one call, so a
  // listener sees them as one burst).
  virtual void OnEvents(const std::vector<crucible::v1::TaskEvent>& events) {
    for (const crucible::v1::TaskEvent& e : events) OnEvent(e);
  }
  // A chunk of output, after it was stored (as stored, cap applied).
  virtual void OnOutput(const crucible::v1::OutputChunk& chunk) = 0;
  // The server is stopping (`reason`): nothing more comes; the listener
  // ends its stream so that its client follows the task elsewhere.
  virtual void OnGoingAway(const std::string& reason) {}
};

// What one operation announces once its writes are durable.
struct Announcement {
  std::vector<crucible::v1::TaskEvent> events;
  std::vector<std::pair<std::string, crucible::v1::OutputChunk>> outputs;
  // (worker session, message).
  std::vector<std::pair<int64_t, crucible::v1::ConnectResponse>> messages;
  bool empty() const {
    return events.empty() && outputs.empty() && messages.empty();
  }
};

// Hands the announcements of operations, numbered in the order they were
// decided, to worker sinks and task listeners. Thread-safe. No gRPC.
//
// The owner numbers operations under its own lock and calls Deliver in that
// order, once each operation is durable. Registrations (AddSink, Subscribe)
// are made under the owner's lock too, so a registration sits at a known
// point between two operations; after RemoveSink / Unsubscribe return, the
// sink or listener is never called again.
class Delivery {
 public:
  // Sends the messages of later operations for `session` to `sink`;
  // `replaced` (0 for none) is a session of the same worker that gets
  // nothing more.
  void AddSink(int64_t session, WorkerSink* sink, int64_t replaced);
  void RemoveSink(int64_t session);
  // Sends `listener` the events and output of `task_id` of the operations
  // numbered after `after_op`. Returns the subscription's id (> 0).
  int64_t Subscribe(const std::string& task_id, TaskListener* listener,
                    uint64_t after_op);
  // Moves a subscription's start to the last operation delivered (its
  // listener was given the task as stored, which holds every delivered one).
  void FollowFromDelivered(int64_t subscription);
  // Returns whether the subscription was there (false: gone already).
  bool Unsubscribe(int64_t subscription);
  // Tells every listener the server is going away (OnGoingAway).
  void GoAway(const std::string& reason) ABSL_LOCKS_EXCLUDED(mu_);
  // Whether any task is followed. Grows only in Subscribe: an owner that
  // subscribes under its lock may skip building events while it is false.
  bool followed() const { return subscriptions() > 0; }
  // Subscriptions open now.
  int64_t subscriptions() const {
    return subscriptions_.load(std::memory_order_acquire);
  }

  // Delivers operation `op`'s announcement (ops in increasing order).
  void Deliver(Announcement& out, uint64_t op) ABSL_LOCKS_EXCLUDED(mu_);
  // Flushes the sinks Deliver sent to since the last flush.
  void FlushSinks() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Listener {
    TaskListener* listener;
    uint64_t after_op;  // only announcements of later operations
  };

  absl::Mutex mu_;
  std::atomic<int64_t> subscriptions_{0};
  int64_t next_subscription_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<int64_t, WorkerSink*> sinks_ ABSL_GUARDED_BY(mu_);
  // Sessions with messages sent since the last flush.
  std::vector<int64_t> unflushed_ ABSL_GUARDED_BY(mu_);
  // The last operation delivered (all earlier ones are, and are durable).
  uint64_t delivered_op_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, absl::flat_hash_map<int64_t, Listener>>
      listeners_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int64_t, std::string> subscription_task_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_DELIVERY_DELIVERY_H_
