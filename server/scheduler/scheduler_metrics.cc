#include "server/scheduler/scheduler_metrics.h"

#include <string>

#include "common/task_state.h"

namespace server {

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
                             .WithLabels({})) {
  auto& tasks = r.AddGauge("crucible_server_tasks",
                           "Tasks in memory by non-terminal state: the "
                           "queue's depth (QUEUED) and the work handed out.",
                           {"state"});
  auto& ended = r.AddCounter("crucible_server_tasks_ended_total",
                             "Tasks that reached a terminal state.", {"state"});
  for (int s = 1; s < kStates; ++s) {
    if (!crucible::v1::TaskState_IsValid(s)) continue;
    const auto state = static_cast<TaskState>(s);
    if (common::IsTerminal(state)) {
      ended_[s] = &ended.WithLabels({common::StateName(state)});
    } else {
      tasks_[s] = &tasks.WithLabels({common::StateName(state)});
    }
  }
}

void SchedulerMetrics::Transition(TaskState from, TaskState to) {
  if (from == to) return;
  if (from > 0 && from < kStates && tasks_[from] != nullptr) {
    tasks_[from]->Add(-1);
  }
  if (to > 0 && to < kStates) {
    if (tasks_[to] != nullptr) tasks_[to]->Add(1);
    if (ended_[to] != nullptr) ended_[to]->Increment();
  }
}

void SchedulerMetrics::Forget(TaskState state) {
  if (state > 0 && state < kStates && tasks_[state] != nullptr) {
    tasks_[state]->Add(-1);
  }
}

}  // namespace server
