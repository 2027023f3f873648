#ifndef CRUCIBLE_SERVER_TENANCY_QUOTA_BOOK_H_
#define CRUCIBLE_SERVER_TENANCY_QUOTA_BOOK_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "crucible/v1/task.pb.h"
#include "server/tenancy/tenants_config.h"

namespace server {

// Each tenant's quotas (a TenantsConfig) against its counts: whether a new
// task is admitted (largest resources, queued tasks, CreateTask rate as a
// token bucket) and whether the tenant is at its cap of running tasks.
// Counts follow the state changes its owner reports, so they are exactly
// the owner's. Time comes from the injected clock.
// Not thread-safe: the scheduler keeps it under its lock.
class QuotaBook {
 public:
  // `clock` must outlive this. Starts with no quotas.
  explicit QuotaBook(const common::Clock& clock);

  // Replaces the quotas (a reloaded file). Counts stay; each token bucket
  // keeps its tokens, up to its new burst. nullptr: no quotas.
  void SetConfig(std::shared_ptr<const TenantsConfig> config);
  const TenantsConfig& config() const { return *config_; }

  // OK if `tenant` may create a task of `spec` now; else RESOURCE_EXHAUSTED
  // naming the quota and its value (and, for the rate, when to retry). An
  // admitted task spends one token of the tenant's CreateTask rate; a
  // refused one spends nothing.
  absl::Status Admit(const std::string& tenant,
                     const crucible::v1::TaskSpec& spec);
  // A task of `tenant` went from `from` to `to`: TASK_STATE_UNSPECIFIED as
  // `from` for a task that appears (created, or rebuilt at start), a
  // terminal `to` for one that ends. True if the tenant's count of running
  // (LEASED or RUNNING) tasks changed.
  bool Count(const std::string& tenant, crucible::v1::TaskState from,
             crucible::v1::TaskState to);

  int64_t queued(const std::string& tenant) const;
  int64_t running(const std::string& tenant) const;
  // Whether the tenant runs as many tasks as its max_running_tasks allows.
  bool AtRunningCap(const std::string& tenant) const;
  // The tenants with a queued or running task.
  std::vector<std::string> CountedTenants() const;

 private:
  struct State {
    int64_t queued = 0;
    int64_t running = 0;
    // The CreateTask token bucket, as of `refilled`; full when unset.
    double tokens = -1;
    absl::Time refilled;
  };
  // Tops the bucket up to now; returns its burst (0: no rate limit).
  double Refill(const TenantLimits& limits, State& s, absl::Time now);
  void MaybeForget(const std::string& tenant);

  const common::Clock& clock_;
  std::shared_ptr<const TenantsConfig> config_;
  absl::flat_hash_map<std::string, State> states_;
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_TENANCY_QUOTA_BOOK_H_
