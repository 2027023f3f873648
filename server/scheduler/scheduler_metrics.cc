#include "server/scheduler/scheduler_metrics.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"
#include "common/task_state.h"

namespace server {

using crucible::v1::Task;
using crucible::v1::TaskState;

SchedulerMetrics::SchedulerMetrics(common::MetricsRegistry& r)
    : created_(r.AddCounter("crucible_server_tasks_created_total",
                            "Tasks accepted by CreateTask (a repeated "
                            "request_id is not counted again).")
                   .WithLabels({})),
      queue_wait_(r.AddHistogram("crucible_server_queue_wait_seconds",
                                 "Time from when a task was ready to run "
                                 "(queued, past its not_before and retry "
                                 "backoff) to its lease, per attempt.")
                      .WithLabels({})),
      lease_to_start_(
          r.AddHistogram("crucible_server_lease_to_start_seconds",
                         "Time from a lease to the report that its container "
                         "started (image check, create, start, and the "
                         "report's way back), per attempt.")
              .WithLabels({})),
      retries_task_(r.AddCounter("crucible_server_task_retries_total",
                                 "Attempts that ended and were queued again, "
                                 "by whose fault: task (counts against "
                                 "max_attempts) or system.",
                                 {"blame"})
                        .WithLabels({"task"})),
      retries_system_(
          r.AddCounter("crucible_server_task_retries_total", "", {"blame"})
              .WithLabels({"system"})),
      lease_expiries_(r.AddCounter("crucible_server_lease_expiries_total",
                                   "Leases that lapsed: no heartbeat in time, "
                                   "or not named again after a restart.")
                          .WithLabels({})),
      reports_refused_(
          r.AddCounter("crucible_server_reports_refused_total",
                       "Worker reports refused because their lease was not "
                       "live (fenced: a stale or unknown lease).")
              .WithLabels({})),
      workers_connected_(r.AddGauge("crucible_server_workers_connected",
                                    "Worker sessions open on this server.")
                             .WithLabels({})),
      credits_(r.AddGauge("crucible_server_worker_credits",
                          "Free slots the connected workers have offered "
                          "and no assignment has taken yet (credits "
                          "outstanding).")
                   .WithLabels({})),
      subscribers_(r.AddGauge("crucible_server_stream_subscribers",
                              "WatchTask and StreamTaskOutput streams "
                              "following a task that has not ended.")
                       .WithLabels({})),
      tasks_(r.AddGauge("crucible_server_tasks",
                        "Tasks in memory by non-terminal state, tenant and "
                        "priority band (high > 0, normal 0, low < 0): the "
                        "queue's depth (QUEUED) and the work handed out.",
                        {"state", "tenant", "priority"})),
      ended_(r.AddCounter("crucible_server_tasks_ended_total",
                          "Tasks that reached a terminal state, by state "
                          "and the last attempt's termination reason "
                          "(none: ended before any attempt ran).",
                          {"state", "reason"})) {
  // The ends that can happen, exposed at 0 from the start (rate() needs a
  // series before its first increase); others appear when they happen.
  using crucible::v1::TerminationReason;
  const std::pair<TaskState, std::vector<TerminationReason>> ends[] = {
      {crucible::v1::TASK_STATE_SUCCEEDED,
       {crucible::v1::TERMINATION_REASON_EXITED}},
      {crucible::v1::TASK_STATE_FAILED,
       {crucible::v1::TERMINATION_REASON_EXITED,
        crucible::v1::TERMINATION_REASON_OOM_KILLED,
        crucible::v1::TERMINATION_REASON_OUTPUT_LIMIT,
        crucible::v1::TERMINATION_REASON_INFRASTRUCTURE,
        crucible::v1::TERMINATION_REASON_REJECTED}},
      {crucible::v1::TASK_STATE_TIMED_OUT,
       {crucible::v1::TERMINATION_REASON_TIMEOUT}},
      {crucible::v1::TASK_STATE_CANCELLED,
       {crucible::v1::TERMINATION_REASON_CANCELLED}},
  };
  for (const auto& [state, reasons] : ends) {
    for (TerminationReason reason : reasons) EndedSeries(state, reason);
  }
}

const char* SchedulerMetrics::PriorityBand(int32_t priority) {
  if (priority > 0) return "high";
  if (priority < 0) return "low";
  return "normal";
}

namespace {

int BandIndex(int32_t priority) {
  if (priority > 0) return 0;
  if (priority < 0) return 2;
  return 1;
}

std::string ReasonLabel(crucible::v1::TerminationReason reason) {
  if (reason == crucible::v1::TERMINATION_REASON_UNSPECIFIED) return "none";
  return absl::AsciiStrToLower(absl::StripPrefix(
      crucible::v1::TerminationReason_Name(reason), "TERMINATION_REASON_"));
}

}  // namespace

common::Gauge* SchedulerMetrics::TasksSeries(const std::string& tenant,
                                             int32_t priority,
                                             TaskState state) {
  if (state <= 0 || state >= kStates || common::IsTerminal(state)) {
    return nullptr;
  }
  std::array<common::Gauge*, kStates>& series =
      tenants_[tenant][BandIndex(priority)];
  if (series[state] == nullptr) {
    // Every non-terminal state of the tenant and band at once, so that a
    // dashboard sees 0 rather than no series.
    for (int s = 1; s < kStates; ++s) {
      if (!crucible::v1::TaskState_IsValid(s) ||
          common::IsTerminal(static_cast<TaskState>(s))) {
        continue;
      }
      series[s] =
          &tasks_.WithLabels({common::StateName(static_cast<TaskState>(s)),
                              tenant, PriorityBand(priority)});
    }
  }
  return series[state];
}

common::Counter& SchedulerMetrics::EndedSeries(
    TaskState state, crucible::v1::TerminationReason reason) {
  int r = reason;
  if (r < 0 || r >= kReasons) r = 0;
  common::Counter*& series = ended_by_[state][r];
  if (series == nullptr) {
    series = &ended_.WithLabels(
        {common::StateName(state),
         ReasonLabel(static_cast<crucible::v1::TerminationReason>(r))});
  }
  return *series;
}

void SchedulerMetrics::Transition(const std::string& tenant, int32_t priority,
                                  TaskState from, TaskState to,
                                  crucible::v1::TerminationReason reason) {
  if (from == to) return;
  if (common::Gauge* g = TasksSeries(tenant, priority, from)) g->Add(-1);
  if (common::Gauge* g = TasksSeries(tenant, priority, to)) g->Add(1);
  if (to > 0 && to < kStates && common::IsTerminal(to)) {
    EndedSeries(to, reason).Increment();
  }
}

void SchedulerMetrics::Forget(const std::string& tenant, int32_t priority,
                              TaskState state) {
  if (common::Gauge* g = TasksSeries(tenant, priority, state)) g->Add(-1);
}

}  // namespace server
