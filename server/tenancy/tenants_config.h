#ifndef CRUCIBLE_SERVER_TENANCY_TENANTS_CONFIG_H_
#define CRUCIBLE_SERVER_TENANCY_TENANTS_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace server {

// The largest resources one task of a tenant may ask for. 0 means no
// maximum (the server's own --max_* flags still apply).
struct TaskMaxima {
  int64_t memory_bytes = 0;
  int64_t cpu_millis = 0;
  int64_t pids_limit = 0;
  int64_t tmpfs_bytes = 0;
  absl::Duration timeout = absl::ZeroDuration();
  int64_t max_output_bytes = 0;
};

// One tenant's share and quotas. 0 means unlimited for every maximum.
struct TenantLimits {
  // Share of dispatches among the tenants with ready tasks (weighted fair
  // queuing). Positive.
  double weight = 1;
  // QUEUED tasks at most; a CreateTask beyond it is refused.
  int64_t max_queued_tasks = 0;
  // LEASED + RUNNING tasks at most; past it the tenant's ready tasks wait.
  int64_t max_running_tasks = 0;
  // CreateTask calls per second, as a token bucket of `create_burst` tokens
  // (0: max(1, create_per_second)). 0: no rate limit.
  double create_per_second = 0;
  double create_burst = 0;
  TaskMaxima max_task;
};

// The tenants file, parsed: defaults for every tenant, and the tenants it
// names (each starts from the defaults and overrides what it sets).
struct TenantsConfig {
  TenantLimits defaults;
  absl::flat_hash_map<std::string, TenantLimits> tenants;

  const TenantLimits& For(const std::string& tenant) const {
    auto it = tenants.find(tenant);
    return it == tenants.end() ? defaults : it->second;
  }
};

// Parses the tenants file (JSON; // comments allowed):
//   {"defaults": LIMITS, "tenants": {"name": LIMITS, ...}}
// where LIMITS is an object with any of
//   "weight": number > 0,
//   "max_queued_tasks": integer, "max_running_tasks": integer,
//   "create_rate": {"per_second": number, "burst": number},
//   "max_task": {"memory_bytes", "cpu_millis", "pids_limit", "tmpfs_bytes",
//                "max_output_bytes": integers, "timeout": "1h"}.
// INVALID_ARGUMENT naming the key for anything else.
absl::StatusOr<TenantsConfig> ParseTenantsConfig(absl::string_view json);

}  // namespace server

#endif  // CRUCIBLE_SERVER_TENANCY_TENANTS_CONFIG_H_
