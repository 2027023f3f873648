#ifndef CRUCIBLE_SERVER_QUEUE_READY_QUEUE_H_
#define CRUCIBLE_SERVER_QUEUE_READY_QUEUE_H_

#include <cstdint>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "absl/container/flat_hash_map.h"
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
  // The task's owner: tenants share dispatches by weight (see ReadyQueue).
  std::string tenant{};
};

// The QUEUED tasks: ready ones per tenant by priority then FIFO, and
// delayed ones until their ready_at. No pick scans them: every operation
// is O(log n) in the tasks and the tenants.
//
// Across tenants a pick is weighted fair queuing (self-clocked): each
// tenant with a ready task it may run (an "active" tenant) has a virtual
// finish time; a pick takes the active tenant with the smallest, sets the
// queue's virtual time to it and advances the tenant's by 1/weight. A
// tenant that becomes active starts at the queue's virtual time (or where
// it left off, if later), so it cannot bank credit while it had nothing
// ready or was held: with one backlogged tenant and one that just became
// active, the newcomer's task goes within about one pick per active tenant.
// Within a tenant: highest priority first, FIFO among equals, and every
// fairness_interval-th pick of that tenant takes its oldest ready task
// (bounded starvation).
//
// Not thread-safe: its owner keeps it under its lock.
class ReadyQueue {
 public:
  // Every fairness_interval-th pick within a tenant takes its oldest ready
  // task whatever its priority; 0 means strict priority order.
  explicit ReadyQueue(int fairness_interval)
      : fairness_interval_(fairness_interval) {}

  // Queues a task: ready if its ready_at is not after `now`, else delayed.
  void Add(const QueuePosition& p, absl::Time now);
  // Takes a task out, wherever it is (nothing if it is not queued). `p` must
  // be what it was added with.
  void Remove(const QueuePosition& p);
  // Makes the delayed tasks whose ready_at is not after `now` ready.
  void PromoteDue(absl::Time now);
  // Whether a ready task of a tenant that is not held is queued.
  bool HasReady() const { return !active_.empty(); }
  // The id of the task to hand out next (it stays queued until removed),
  // charging its tenant one pick. Requires HasReady().
  const std::string& Pick();

  // Each tenant's share of the picks among the active tenants; tenants not
  // in `weights` have `default_weight`. Weights must be positive. Takes
  // effect from each tenant's next pick.
  void SetWeights(absl::flat_hash_map<std::string, double> weights,
                  double default_weight);
  // A held tenant's tasks stay queued but are not picked (it is at its cap
  // of running tasks) until it is released; it then starts again at the
  // queue's virtual time.
  void SetHeld(const std::string& tenant, bool held);

  // The virtual time of the last pick, in units of 1/kUnit picks of a
  // tenant of weight 1 (for tests).
  uint64_t virtual_time() const { return vtime_; }
  static constexpr uint64_t kUnit = uint64_t{1} << 20;

 private:
  using Key = std::tuple<int, uint64_t, std::string>;  // -priority, order, id
  static Key KeyOf(const QueuePosition& p) {
    return {-p.priority, p.order, p.id};
  }
  struct Tenant;
  // (virtual finish time, activation number, tenant)
  using ActiveKey = std::tuple<uint64_t, uint64_t, Tenant*>;
  struct Tenant {
    std::set<Key> ready;
    std::set<std::pair<uint64_t, std::string>> fifo;  // order, id
    uint64_t picks = 0;
    // Virtual time one pick costs it: kUnit / weight.
    uint64_t stride = kUnit;
    // Virtual finish time of its last pick.
    uint64_t finish = 0;
    bool held = false;
    // Its key in active_ while it is active.
    bool active = false;
    ActiveKey active_key;
  };

  // Virtual time one pick costs `tenant`: kUnit / weight.
  uint64_t StrideOf(const std::string& tenant) const;
  // The tenant's entry, made if missing.
  Tenant& TenantOf(const std::string& tenant);
  void MakeReady(const QueuePosition& p);
  // Puts the tenant in active_ if it has ready tasks and is not held, or
  // takes it out if not.
  void Reconsider(Tenant& t);
  // Forgets a tenant whose state says nothing a new one's would not.
  void MaybeForget(const std::string& name);

  const int fairness_interval_;
  uint64_t vtime_ = 0;
  uint64_t activations_ = 0;
  absl::flat_hash_map<std::string, double> weights_;
  double default_weight_ = 1;
  // Node-based: active_ points at its entries.
  std::unordered_map<std::string, Tenant> tenants_;
  std::set<ActiveKey> active_;
  // (ready_at, id, priority, order, tenant), to make it ready.
  std::set<std::tuple<absl::Time, std::string, int, uint64_t, std::string>>
      delayed_;
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_QUEUE_READY_QUEUE_H_
