// State changes of a task and its attempts: every change checked against
// the transition table and submitted to the outbox; ends, retries with
// backoff (the task's budget and the system's).
#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "common/task_state.h"
#include "common/trace.h"
#include "glog/logging.h"
#include "server/scheduler/scheduler.h"
#include "server/scheduler/transitions.h"

namespace server {

using crucible::v1::Task;
using crucible::v1::TaskEvent;
using crucible::v1::TaskResult;
using crucible::v1::TaskState;

absl::Status Scheduler::CommitLocked(Entry& e, TaskState to,
                                     absl::FunctionRef<void(Task&)> change,
                                     const std::string& message,
                                     bool ends_attempt, Outbox& out) {
  if (to != e.task().state()) {
    RETURN_IF_ERROR(CheckTransition(e.task().state(), to));
  }
  // In place: no copy of the task per transition.
  change(e.task());
  CountLocked(e, e.task().state(), to);
  e.task().set_state(to);
  absl::Time now = clock_.Now();
  *e.task().mutable_update_time() = common::ToProtoTime(now);
  if (common::IsTerminal(to)) {
    *e.task().mutable_end_time() = common::ToProtoTime(now);
    // A completion callback is owed from this write on, in the same row
    // (server/callback delivers it, after a restart too).
    if (!e.task().spec().callback_url().empty()) {
      e.task().mutable_callback()->set_state(
          crucible::v1::CALLBACK_STATE_PENDING);
    }
  }
  outbox_.Submit(TaskWrite::Update(e.task()));
  VLOG(1) << common::TaskTag(e.task().id(), e.task().trace_id()) << " -> "
          << crucible::v1::TaskState_Name(e.task().state()) << " " << message;
  // Events only go to watchers; none can subscribe while mu_ is held.
  if (!delivery_.followed()) return absl::OkStatus();
  TaskEvent event;
  event.set_task_id(e.task().id());
  event.set_state(e.task().state());
  event.set_attempt(e.task().attempt());
  *event.mutable_event_time() = common::ToProtoTime(now);
  event.set_message(message);
  if (ends_attempt) *event.mutable_result() = e.task().result();
  out.events.push_back(std::move(event));
  return absl::OkStatus();
}

absl::Status Scheduler::FinishLocked(Entry& e, TaskState state,
                                     TaskResult result,
                                     const std::string& message, Outbox& out,
                                     Task* ended,
                                     const std::string& last_error) {
  RETURN_IF_ERROR(CommitLocked(
      e, state,
      [&](Task& t) {
        *t.mutable_result() = std::move(result);
        if (!last_error.empty()) t.set_last_error(last_error);
      },
      message, /*ends_attempt=*/true, out));
  ReleaseLeaseLocked(e);
  DequeueLocked(e);
  if (ended != nullptr) *ended = e.task();
  if (!e.task().request_id().empty()) {
    const std::string key =
        RequestKey(e.task().tenant(), e.task().request_id());
    requests_.erase(key);
    ++RequestEndsLocked(key);
  }
  std::string id = e.task().id();
  active_.erase(id);  // `e` is gone
  return absl::OkStatus();
}

absl::Status Scheduler::RetryOrFailLocked(Entry& e, TaskResult result,
                                          const std::string& infra_error,
                                          Outbox& out, Blame blame) {
  if (infra_error.empty()) blame = Blame::kTask;
  if (e.lease().output_truncated) result.set_output_truncated(true);
  if (e.lease().cancel_requested) {
    result.set_reason(crucible::v1::TERMINATION_REASON_CANCELLED);
    result.set_error_message(e.lease().cancel_reason);
    return FinishLocked(e, crucible::v1::TASK_STATE_CANCELLED,
                        std::move(result), "cancelled", out);
  }
  std::string why = infra_error.empty() ? result.error_message() : infra_error;
  const absl::Time now = clock_.Now();
  const bool system = blame == Blame::kSystem;
  // The system's faults are not the task's attempts: they have a budget of
  // their own, in time.
  const int infra_failures =
      e.task().infrastructure_failures() + (system ? 1 : 0);
  const absl::Time failing_since =
      e.task().has_infrastructure_failing_since()
          ? common::FromProtoTime(e.task().infrastructure_failing_since())
          : now;
  if (system ? now - failing_since >= options_.infra_horizon
             : e.task().attempt() - infra_failures >= e.max_attempts) {
    if (system) {
      result.set_error_message(absl::StrCat(
          "the infrastructure kept failing for ",
          absl::FormatDuration(now - failing_since), " (", infra_failures,
          " attempts; horizon ", absl::FormatDuration(options_.infra_horizon),
          "): ", infra_error));
    } else if (!infra_error.empty()) {
      result.set_error_message(absl::StrCat(
          "attempts exhausted (", e.max_attempts, "): ", infra_error));
    }
    return FinishLocked(e, crucible::v1::TASK_STATE_FAILED, std::move(result),
                        absl::StrCat("failed: ", why), out, nullptr,
                        infra_error);
  }
  absl::Duration backoff =
      system ? InfraBackoffLocked(infra_failures) : BackoffLocked(e);
  absl::Time next = now + backoff;
  RETURN_IF_ERROR(CommitLocked(
      e, crucible::v1::TASK_STATE_QUEUED,
      [&](Task& t) {
        if (!infra_error.empty()) t.set_last_error(infra_error);
        *t.mutable_result() = std::move(result);
        // Stored with the task, so a restart keeps the backoff.
        *t.mutable_next_attempt_time() = common::ToProtoTime(next);
        t.set_infrastructure_failures(infra_failures);
        if (system) {
          *t.mutable_infrastructure_failing_since() =
              common::ToProtoTime(failing_since);
        } else {
          t.clear_infrastructure_failing_since();
        }
      },
      absl::StrCat("retrying in ", absl::FormatDuration(backoff), ": ", why),
      /*ends_attempt=*/true, out));
  metrics_.Retried(system);
  ReleaseLeaseLocked(e);
  DequeueLocked(e);
  e.ready_at = std::max(e.ready_at, next);
  EnqueueLocked(e);
  return absl::OkStatus();
}

absl::Duration Scheduler::InfraBackoffLocked(int failures) {
  absl::Duration d = options_.infra_initial_backoff;
  for (int i = 1; i < failures && d < options_.infra_max_backoff; ++i) d *= 2;
  d = std::min(d, options_.infra_max_backoff);
  double j = options_.backoff_jitter;
  if (j > 0) d *= absl::Uniform(rng_, 1.0 - j, 1.0 + j);
  return std::min(d, options_.infra_max_backoff);
}

absl::Duration Scheduler::BackoffLocked(const Entry& e) {
  const crucible::v1::RetryPolicy& p = e.task().spec().retry_policy();
  absl::Duration initial = p.has_initial_backoff()
                               ? common::FromProtoDuration(p.initial_backoff())
                               : options_.initial_backoff;
  absl::Duration cap = p.has_max_backoff()
                           ? common::FromProtoDuration(p.max_backoff())
                           : options_.max_backoff;
  absl::Duration d = initial;
  const int used = e.task().attempt() - e.task().infrastructure_failures();
  for (int i = 1; i < used && d < cap; ++i) d *= 2;
  d = std::min(d, cap);
  double j = options_.backoff_jitter;
  if (j > 0) d *= absl::Uniform(rng_, 1.0 - j, 1.0 + j);
  return std::min(d, cap);
}

}  // namespace server
