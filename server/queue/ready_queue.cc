#include "server/queue/ready_queue.h"

#include <algorithm>
#include <cmath>

namespace server {

void ReadyQueue::Add(const QueuePosition& p, absl::Time now) {
  if (p.ready_at <= now) {
    MakeReady(p);
  } else {
    delayed_.emplace(p.ready_at, p.id, p.priority, p.order, p.tenant);
  }
}

ReadyQueue::Tenant& ReadyQueue::TenantOf(const std::string& tenant) {
  auto [it, inserted] = tenants_.try_emplace(tenant);
  if (inserted) it->second.stride = StrideOf(tenant);
  return it->second;
}

void ReadyQueue::MakeReady(const QueuePosition& p) {
  Tenant& t = TenantOf(p.tenant);
  t.ready.insert(KeyOf(p));
  t.fifo.emplace(p.order, p.id);
  if (!t.active) Reconsider(t);
}

void ReadyQueue::Remove(const QueuePosition& p) {
  delayed_.erase({p.ready_at, p.id, p.priority, p.order, p.tenant});
  auto it = tenants_.find(p.tenant);
  if (it == tenants_.end()) return;
  Tenant& t = it->second;
  t.ready.erase(KeyOf(p));
  t.fifo.erase({p.order, p.id});
  if (t.ready.empty()) {
    Reconsider(t);
    MaybeForget(p.tenant);
  }
}

void ReadyQueue::PromoteDue(absl::Time now) {
  while (!delayed_.empty() && std::get<0>(*delayed_.begin()) <= now) {
    auto node = delayed_.extract(delayed_.begin());
    auto& [ready_at, id, priority, order, tenant] = node.value();
    MakeReady({std::move(id), priority, order, ready_at, std::move(tenant)});
  }
}

const std::string& ReadyQueue::Pick() {
  Tenant& t = *std::get<2>(*active_.begin());
  // Self-clocked: the queue's virtual time is the finish time of the pick
  // being made; the tenant's next pick finishes one stride later.
  vtime_ = std::get<0>(t.active_key);
  t.finish = vtime_;
  active_.erase(active_.begin());
  t.active_key = {t.finish + t.stride, ++activations_, &t};
  active_.insert(t.active_key);
  ++t.picks;
  if (fairness_interval_ > 0 && t.picks % fairness_interval_ == 0) {
    return t.fifo.begin()->second;
  }
  return std::get<2>(*t.ready.begin());
}

void ReadyQueue::SetWeights(absl::flat_hash_map<std::string, double> weights,
                            double default_weight) {
  weights_ = std::move(weights);
  default_weight_ = default_weight;
  for (auto& [name, t] : tenants_) t.stride = StrideOf(name);
}

void ReadyQueue::SetHeld(const std::string& tenant, bool held) {
  auto it = tenants_.find(tenant);
  // Nothing changes (an unknown tenant is not held): the common case, as
  // the scheduler says so at every start and end of a run.
  if (it == tenants_.end() ? !held : it->second.held == held) return;
  Tenant& t = TenantOf(tenant);
  t.held = held;
  Reconsider(t);
  MaybeForget(tenant);
}

uint64_t ReadyQueue::StrideOf(const std::string& tenant) const {
  auto w = weights_.find(tenant);
  const double weight = w == weights_.end() ? default_weight_ : w->second;
  const double stride = std::llround(static_cast<double>(kUnit) / weight);
  return static_cast<uint64_t>(std::max(1.0, stride));
}

void ReadyQueue::Reconsider(Tenant& t) {
  const bool eligible = !t.ready.empty() && !t.held;
  if (eligible == t.active) return;
  if (eligible) {
    // It starts where the queue is now, or where it left off if that is
    // later: time spent idle or held earns nothing.
    const uint64_t start = std::max(t.finish, vtime_);
    t.active_key = {start + t.stride, ++activations_, &t};
    active_.insert(t.active_key);
  } else {
    active_.erase(t.active_key);
  }
  t.active = eligible;
}

void ReadyQueue::MaybeForget(const std::string& name) {
  auto it = tenants_.find(name);
  const Tenant& t = it->second;
  // With finish <= vtime_ a new entry would start exactly where this one
  // would, so an idle, unheld tenant needs no entry.
  if (t.ready.empty() && !t.held && t.finish <= vtime_) tenants_.erase(it);
}

}  // namespace server
