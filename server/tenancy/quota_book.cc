#include "server/tenancy/quota_book.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "common/proto_time.h"
#include "common/status_macros.h"

namespace server {
namespace {

using crucible::v1::TaskState;

bool IsQueued(TaskState s) { return s == crucible::v1::TASK_STATE_QUEUED; }
bool IsRunning(TaskState s) {
  return s == crucible::v1::TASK_STATE_LEASED ||
         s == crucible::v1::TASK_STATE_RUNNING;
}

double BurstOf(const TenantLimits& l) {
  if (l.create_per_second <= 0) return 0;
  return std::max(1.0,
                  l.create_burst > 0 ? l.create_burst : l.create_per_second);
}

absl::Status Exhausted(const std::string& tenant, absl::string_view detail) {
  return absl::ResourceExhaustedError(
      absl::StrCat("tenant \"", tenant, "\": ", detail));
}

absl::Status AtMost(const std::string& tenant, absl::string_view quota,
                    absl::string_view field, int64_t value, int64_t max) {
  if (max <= 0 || value <= max) return absl::OkStatus();
  return Exhausted(tenant, absl::StrCat("quota max_task.", quota, " is ", max,
                                        " (", field, " asks for ", value, ")"));
}

absl::Status WithinMaxima(const std::string& tenant,
                          const crucible::v1::TaskSpec& spec,
                          const TaskMaxima& m) {
  const crucible::v1::Resources& r = spec.resources();
  RETURN_IF_ERROR(AtMost(tenant, "memory_bytes", "spec.resources.memory_bytes",
                         r.memory_bytes(), m.memory_bytes));
  RETURN_IF_ERROR(AtMost(tenant, "cpu_millis", "spec.resources.cpu_millis",
                         r.cpu_millis(), m.cpu_millis));
  RETURN_IF_ERROR(AtMost(tenant, "pids_limit", "spec.resources.pids_limit",
                         r.pids_limit(), m.pids_limit));
  RETURN_IF_ERROR(AtMost(tenant, "tmpfs_bytes", "spec.resources.tmpfs_bytes",
                         r.tmpfs_bytes(), m.tmpfs_bytes));
  RETURN_IF_ERROR(AtMost(tenant, "max_output_bytes", "spec.max_output_bytes",
                         spec.max_output_bytes(), m.max_output_bytes));
  if (m.timeout > absl::ZeroDuration() && spec.has_timeout() &&
      common::FromProtoDuration(spec.timeout()) > m.timeout) {
    return Exhausted(
        tenant,
        absl::StrCat(
            "quota max_task.timeout is ", absl::FormatDuration(m.timeout),
            " (spec.timeout asks for ",
            absl::FormatDuration(common::FromProtoDuration(spec.timeout())),
            ")"));
  }
  return absl::OkStatus();
}

}  // namespace

QuotaBook::QuotaBook(const common::Clock& clock)
    : clock_(clock), config_(std::make_shared<TenantsConfig>()) {}

void QuotaBook::SetConfig(std::shared_ptr<const TenantsConfig> config) {
  config_ = config ? std::move(config) : std::make_shared<TenantsConfig>();
  const absl::Time now = clock_.Now();
  std::vector<std::string> idle;
  for (auto& [tenant, s] : states_) {
    const double burst = Refill(config_->For(tenant), s, now);
    if (s.tokens > burst) s.tokens = -1;  // full
    if (s.queued == 0 && s.running == 0 && s.tokens < 0) idle.push_back(tenant);
  }
  for (const std::string& tenant : idle) states_.erase(tenant);
}

double QuotaBook::Refill(const TenantLimits& limits, State& s, absl::Time now) {
  const double burst = BurstOf(limits);
  if (burst <= 0 || s.tokens < 0) {
    s.tokens = -1;  // no rate limit, or full
    return burst;
  }
  const double elapsed = absl::ToDoubleSeconds(now - s.refilled);
  if (elapsed > 0) {
    s.tokens += elapsed * limits.create_per_second;
    s.refilled = now;
  }
  if (s.tokens >= burst) s.tokens = -1;
  return burst;
}

absl::Status QuotaBook::Admit(const std::string& tenant,
                              const crucible::v1::TaskSpec& spec) {
  const TenantLimits& l = config_->For(tenant);
  RETURN_IF_ERROR(WithinMaxima(tenant, spec, l.max_task));
  auto it = states_.find(tenant);
  const int64_t queued = it == states_.end() ? 0 : it->second.queued;
  if (l.max_queued_tasks > 0 && queued >= l.max_queued_tasks) {
    return Exhausted(
        tenant,
        absl::StrCat("quota max_queued_tasks is ", l.max_queued_tasks, " (",
                     queued, " tasks queued); retry once some started"));
  }
  // The rate last: only an admitted task spends a token.
  const double burst = BurstOf(l);
  if (burst <= 0) return absl::OkStatus();
  const absl::Time now = clock_.Now();
  State& s = it == states_.end() ? states_[tenant] : it->second;
  Refill(l, s, now);
  const double tokens = s.tokens < 0 ? burst : s.tokens;
  if (tokens < 1) {
    // Rounded up to the millisecond, so a retry at that time succeeds.
    const absl::Duration wait =
        absl::Ceil(absl::Seconds((1 - tokens) / l.create_per_second),
                   absl::Milliseconds(1));
    MaybeForget(tenant);
    return Exhausted(
        tenant,
        absl::StrCat("quota create_rate is ",
                     absl::StrFormat("%g", l.create_per_second),
                     " per second (burst ", absl::StrFormat("%g", burst),
                     "); retry in ", absl::FormatDuration(wait)));
  }
  s.tokens = tokens - 1;
  s.refilled = now;
  return absl::OkStatus();
}

bool QuotaBook::Count(const std::string& tenant, TaskState from, TaskState to) {
  const int queued = (IsQueued(to) ? 1 : 0) - (IsQueued(from) ? 1 : 0);
  const int running = (IsRunning(to) ? 1 : 0) - (IsRunning(from) ? 1 : 0);
  if (queued == 0 && running == 0) return false;
  State& s = states_[tenant];
  s.queued += queued;
  s.running += running;
  if (queued < 0 || running < 0) MaybeForget(tenant);
  return running != 0;
}

void QuotaBook::MaybeForget(const std::string& tenant) {
  auto it = states_.find(tenant);
  if (it == states_.end()) return;
  State& s = it->second;
  if (s.queued != 0 || s.running != 0) return;
  Refill(config_->For(tenant), s, clock_.Now());
  if (s.tokens < 0) states_.erase(it);  // a new state would be the same
}

int64_t QuotaBook::queued(const std::string& tenant) const {
  auto it = states_.find(tenant);
  return it == states_.end() ? 0 : it->second.queued;
}

int64_t QuotaBook::running(const std::string& tenant) const {
  auto it = states_.find(tenant);
  return it == states_.end() ? 0 : it->second.running;
}

bool QuotaBook::AtRunningCap(const std::string& tenant) const {
  const int64_t max = config_->For(tenant).max_running_tasks;
  return max > 0 && running(tenant) >= max;
}

std::vector<std::string> QuotaBook::CountedTenants() const {
  std::vector<std::string> tenants;
  for (const auto& [tenant, s] : states_) {
    if (s.queued != 0 || s.running != 0) tenants.push_back(tenant);
  }
  return tenants;
}

}  // namespace server
