// Tenants in the scheduler: each tenant's counts follow its tasks' state
// changes, its running cap holds it out of the queue's fair share, and a
// reloaded tenants file replaces quotas and weights. Admission against the
// quotas is in CreateLocked (scheduler.cc).
#include <memory>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "common/task_state.h"
#include "server/scheduler/scheduler.h"

namespace server {

using crucible::v1::TaskState;

void Scheduler::CountLocked(const Entry& e, TaskState from, TaskState to) {
  // Only an end reads the (then parsed) task: a waiting one stays packed.
  metrics_.Transition(e.tenant, e.priority, from, to,
                      common::IsTerminal(to)
                          ? e.task().result().reason()
                          : crucible::v1::TERMINATION_REASON_UNSPECIFIED);
  const std::string& tenant = e.tenant;
  // The queue holds a tenant at its running cap: it is simply not active
  // for fair share until one of its runs ends (no scan at dispatch).
  if (quotas_.Count(tenant, from, to)) {
    queue_.SetHeld(tenant, quotas_.AtRunningCap(tenant));
  }
}

void Scheduler::ApplyTenantsLocked(
    std::shared_ptr<const TenantsConfig> tenants) {
  quotas_.SetConfig(std::move(tenants));
  const TenantsConfig& config = quotas_.config();
  absl::flat_hash_map<std::string, double> weights;
  for (const auto& [tenant, limits] : config.tenants) {
    weights[tenant] = limits.weight;
  }
  queue_.SetWeights(std::move(weights), config.defaults.weight);
  for (const std::string& tenant : quotas_.CountedTenants()) {
    queue_.SetHeld(tenant, quotas_.AtRunningCap(tenant));
  }
}

void Scheduler::SetTenants(std::shared_ptr<const TenantsConfig> tenants) {
  Op op(this);
  ApplyTenantsLocked(std::move(tenants));
  DispatchLocked(op.out);
}

}  // namespace server
