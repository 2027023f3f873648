// Task admission, client operations, commit/announce plumbing and
// retry/finish logic. Worker sessions and reports: scheduler_workers.cc.
#include "server/scheduler/scheduler.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "glog/logging.h"
#include "google/protobuf/util/message_differencer.h"
#include "server/scheduler/request_validation.h"
#include "server/scheduler/spec_validation.h"
#include "server/scheduler/transitions.h"

namespace server {

using crucible::v1::Task;
using crucible::v1::TaskEvent;
using crucible::v1::TaskResult;
using crucible::v1::TaskSpec;
using crucible::v1::TaskState;

namespace {

// A read waits for what it shows to be durable; while the disk is full
// (RESOURCE_EXHAUSTED) it shows what is durable instead of waiting.
absl::Status DurableOrFull(absl::Status s) {
  return absl::IsResourceExhausted(s) ? absl::OkStatus() : s;
}

}  // namespace

Scheduler::Op::~Op() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  // Events and output nobody follows need no announcement (the count only
  // grows under mu_, which we hold, so a new subscriber is never missed).
  bool followed = s_->listener_count_.load() > 0 &&
                  (!out.events.empty() || !out.outputs.empty());
  if (!followed && out.messages.empty() && !then) {
    s_->mu_.Unlock();
    return;
  }
  // Registered under mu_, so callbacks (and announcements) run in the order
  // the operations decided them, each after its writes are durable.
  uint64_t op = ++s_->last_op_;
  Scheduler* s = s_;
  s_->store_.AfterDurable(
      s_->store_.LastTicket(),
      [s, op, out = std::move(out), then = std::move(then)](absl::Status st) mutable {
        if (st.ok()) {
          absl::MutexLock lock(&s->publish_mu_);
          s->Deliver(out, op);
          s->delivered_op_ = op;
        }
        if (then) then(std::move(st));
      });
  s_->mu_.Unlock();
}

Scheduler::Scheduler(const SchedulerOptions& options, TaskStore& store,
                     const common::Clock& clock)
    : options_(options), store_(store), clock_(clock) {}

Scheduler::~Scheduler() {
  store_.DrainCallbacks();
  store_.SetBurstEnd(nullptr);
}

void Scheduler::FlushSinks() {
  absl::MutexLock lock(&publish_mu_);
  for (int64_t session : unflushed_) {
    auto it = sinks_.find(session);
    if (it != sinks_.end()) it->second->Flush();
  }
  unflushed_.clear();
}

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(
    const SchedulerOptions& options, TaskStore& store,
    const common::Clock& clock) {
  if (options.default_max_attempts < 1 || options.lease_ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "scheduler: default_max_attempts must be >= 1 and lease_ttl positive");
  }
  if (options.restart_grace < absl::ZeroDuration() ||
      options.lost_worker_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "scheduler: restart_grace and lost_worker_grace must not be negative "
        "(--restart_lease_grace, --lost_worker_grace)");
  }
  std::unique_ptr<Scheduler> s(new Scheduler(options, store, clock));
  store.SetBurstEnd([p = s.get()] { p->FlushSinks(); });
  RETURN_IF_ERROR(s->Rebuild());
  return s;
}

absl::Status Scheduler::Rebuild() {
  ASSIGN_OR_RETURN(std::vector<Task> tasks, store_.LoadActiveTasks());
  Op op(this);
  const absl::Time now = clock_.Now();
  int kept = 0;
  for (Task& task : tasks) {
    std::string id = task.id();
    TaskState state = task.state();
    AddEntryLocked(std::move(task));
    if (state == crucible::v1::TASK_STATE_QUEUED) continue;
    // The worker that held the lease most likely still runs the attempt and
    // reconnects within seconds; the store keeps no lease id, so the lease
    // waits, unclaimed, for a worker to name its task and attempt.
    ++kept;
    Entry& e = active_.at(id);
    DequeueLocked(e);
    e.lease_deadline = now + options_.restart_grace;
    unclaimed_.insert(id);
    if (state == crucible::v1::TASK_STATE_RUNNING) {
      // The start report was the task's last stored change.
      e.start_time = common::FromProtoTime(e.task.update_time());
      if (e.task.spec().has_timeout()) {
        e.run_deadline = e.start_time +
                         common::FromProtoDuration(e.task.spec().timeout()) +
                         options_.timeout_grace;
      }
    }
  }
  const int lapsed = LapseUnclaimedLocked(now, op.out);
  LOG(INFO) << "scheduler rebuilt: " << active_.size() << " active tasks, "
            << kept - lapsed << " live leases kept for "
            << absl::FormatDuration(options_.restart_grace)
            << " for their workers to name them";
  return absl::OkStatus();
}

std::string Scheduler::NewIdLocked() {
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(rng_),
                         absl::Uniform<uint64_t>(rng_));
}

std::string Scheduler::NewTaskIdLocked() {
  const uint64_t ms = static_cast<uint64_t>(absl::ToUnixMillis(clock_.Now()));
  return absl::StrFormat("%012x%04x%016x", ms & ((uint64_t{1} << 48) - 1),
                         absl::Uniform<uint16_t>(rng_), absl::Uniform<uint64_t>(rng_));
}

Scheduler::QueueKey Scheduler::KeyOf(const Entry& e) {
  return {-e.task.spec().priority(), e.order, e.task.id()};
}

std::string Scheduler::RequestKey(const std::string& tenant,
                                  const std::string& request_id) {
  return absl::StrCat(tenant, std::string(1, '\0'), request_id);
}

void Scheduler::AddEntryLocked(Task task) {
  Entry e;
  e.order = next_order_++;
  e.max_attempts = task.spec().retry_policy().max_attempts() > 0
                       ? task.spec().retry_policy().max_attempts()
                       : options_.default_max_attempts;
  e.ready_at = task.spec().has_not_before()
                   ? common::FromProtoTime(task.spec().not_before())
                   : absl::InfinitePast();
  // A backoff decided before a restart still holds.
  if (task.has_next_attempt_time()) {
    e.ready_at =
        std::max(e.ready_at, common::FromProtoTime(task.next_attempt_time()));
  }
  e.task = std::move(task);
  if (!e.task.request_id().empty()) {
    requests_[RequestKey(e.task.tenant(), e.task.request_id())] = e.task.id();
  }
  std::string id = e.task.id();
  auto [it, inserted] = active_.emplace(std::move(id), std::move(e));
  if (it->second.task.state() == crucible::v1::TASK_STATE_QUEUED) {
    EnqueueLocked(it->second);
  }
}

void Scheduler::EnqueueLocked(Entry& e) {
  if (e.ready_at <= clock_.Now()) {
    ready_.insert(KeyOf(e));
    ready_fifo_.emplace(e.order, e.task.id());
  } else {
    delayed_.emplace(e.ready_at, e.task.id());
  }
}

void Scheduler::DequeueLocked(Entry& e) {
  ready_.erase(KeyOf(e));
  ready_fifo_.erase({e.order, e.task.id()});
  delayed_.erase({e.ready_at, e.task.id()});
}

void Scheduler::PromoteDueLocked(absl::Time now) {
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    Entry& e = active_.at(delayed_.begin()->second);
    delayed_.erase(delayed_.begin());
    ready_.insert(KeyOf(e));
    ready_fifo_.emplace(e.order, e.task.id());
  }
}

Scheduler::Entry& Scheduler::PickLocked() {
  ++dispatches_;
  if (options_.fairness_interval > 0 &&
      dispatches_ % options_.fairness_interval == 0) {
    return active_.at(ready_fifo_.begin()->second);
  }
  return active_.at(std::get<2>(*ready_.begin()));
}

absl::Status Scheduler::CommitLocked(Entry& e, TaskState to,
                                     absl::FunctionRef<void(Task&)> change,
                                     const std::string& message,
                                     bool ends_attempt, Outbox& out) {
  if (to != e.task.state()) {
    RETURN_IF_ERROR(CheckTransition(e.task.state(), to));
  }
  // In place: no copy of the task per transition.
  change(e.task);
  e.task.set_state(to);
  absl::Time now = clock_.Now();
  *e.task.mutable_update_time() = common::ToProtoTime(now);
  if (IsTerminal(to)) *e.task.mutable_end_time() = common::ToProtoTime(now);
  store_.Submit(TaskWrite::Update(e.task));
  VLOG(1) << "task " << e.task.id() << " -> "
          << crucible::v1::TaskState_Name(e.task.state()) << " " << message;
  // Events only go to watchers; none can subscribe while mu_ is held.
  if (listener_count_.load() == 0) return absl::OkStatus();
  TaskEvent event;
  event.set_task_id(e.task.id());
  event.set_state(e.task.state());
  event.set_attempt(e.task.attempt());
  *event.mutable_event_time() = common::ToProtoTime(now);
  event.set_message(message);
  if (ends_attempt) *event.mutable_result() = e.task.result();
  out.events.push_back(std::move(event));
  return absl::OkStatus();
}

absl::Status Scheduler::FinishLocked(Entry& e, TaskState state,
                                     TaskResult result,
                                     const std::string& message, Outbox& out,
                                     Task* ended, const std::string& last_error) {
  RETURN_IF_ERROR(CommitLocked(
      e, state,
      [&](Task& t) {
        *t.mutable_result() = std::move(result);
        if (!last_error.empty()) t.set_last_error(last_error);
      },
      message, /*ends_attempt=*/true, out));
  ReleaseLeaseLocked(e);
  DequeueLocked(e);
  if (ended != nullptr) *ended = e.task;
  if (!e.task.request_id().empty()) {
    requests_.erase(RequestKey(e.task.tenant(), e.task.request_id()));
  }
  std::string id = e.task.id();
  active_.erase(id);  // `e` is gone
  return absl::OkStatus();
}

absl::Status Scheduler::RetryOrFailLocked(Entry& e, TaskResult result,
                                          const std::string& infra_error,
                                          Outbox& out, Blame blame) {
  if (infra_error.empty()) blame = Blame::kTask;
  if (e.output_truncated) result.set_output_truncated(true);
  if (e.cancel_requested) {
    result.set_reason(crucible::v1::TERMINATION_REASON_CANCELLED);
    result.set_error_message(e.cancel_reason);
    return FinishLocked(e, crucible::v1::TASK_STATE_CANCELLED,
                        std::move(result), "cancelled", out);
  }
  std::string why = infra_error.empty() ? result.error_message() : infra_error;
  const absl::Time now = clock_.Now();
  const bool system = blame == Blame::kSystem;
  // The system's faults are not the task's attempts: they have a budget of
  // their own, in time.
  const int infra_failures = e.task.infrastructure_failures() + (system ? 1 : 0);
  const absl::Time failing_since =
      e.task.has_infrastructure_failing_since()
          ? common::FromProtoTime(e.task.infrastructure_failing_since())
          : now;
  if (system ? now - failing_since >= options_.infra_horizon
             : e.task.attempt() - infra_failures >= e.max_attempts) {
    if (system) {
      result.set_error_message(absl::StrCat(
          "the infrastructure kept failing for ", absl::FormatDuration(now - failing_since),
          " (", infra_failures, " attempts; horizon ",
          absl::FormatDuration(options_.infra_horizon), "): ", infra_error));
    } else if (!infra_error.empty()) {
      result.set_error_message(absl::StrCat("attempts exhausted (",
                                            e.max_attempts, "): ", infra_error));
    }
    return FinishLocked(e, crucible::v1::TASK_STATE_FAILED, std::move(result),
                        absl::StrCat("failed: ", why), out, nullptr,
                        infra_error);
  }
  absl::Duration backoff = system ? InfraBackoffLocked(infra_failures) : BackoffLocked(e);
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
          *t.mutable_infrastructure_failing_since() = common::ToProtoTime(failing_since);
        } else {
          t.clear_infrastructure_failing_since();
        }
      },
      absl::StrCat("retrying in ", absl::FormatDuration(backoff), ": ", why),
      /*ends_attempt=*/true, out));
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
  const crucible::v1::RetryPolicy& p = e.task.spec().retry_policy();
  absl::Duration initial = p.has_initial_backoff()
                               ? common::FromProtoDuration(p.initial_backoff())
                               : options_.initial_backoff;
  absl::Duration cap = p.has_max_backoff()
                           ? common::FromProtoDuration(p.max_backoff())
                           : options_.max_backoff;
  absl::Duration d = initial;
  const int used = e.task.attempt() - e.task.infrastructure_failures();
  for (int i = 1; i < used && d < cap; ++i) d *= 2;
  d = std::min(d, cap);
  double j = options_.backoff_jitter;
  if (j > 0) d *= absl::Uniform(rng_, 1.0 - j, 1.0 + j);
  return std::min(d, cap);
}

void Scheduler::CreateTaskAsync(TaskSpec spec, std::string request_id,
                                CreateDone done) {
  absl::Status valid = ValidateTaskSpec(spec, options_.limits);
  if (valid.ok()) valid = ValidateRequestId(request_id);
  if (valid.ok() && spec.has_not_before() &&
      common::FromProtoTime(spec.not_before()) >
          clock_.Now() + kMaxNotBeforeAhead) {
    valid = absl::InvalidArgumentError(
        absl::StrCat("spec.not_before: at most ",
                     absl::FormatDuration(kMaxNotBeforeAhead), " ahead"));
  }
  // While the disk is full nothing new is taken on (reads go on).
  if (valid.ok()) valid = store_.health();
  if (!valid.ok()) return done(valid);
  Op op(this);
  CreateLocked(std::move(spec), std::move(request_id), std::move(done), op);
}

void Scheduler::CreateLocked(TaskSpec spec, std::string request_id,
                             CreateDone done, Op& op) {
  // Answers once every write decided so far is durable. Called once.
  auto answer = [&op, &done](absl::StatusOr<Task> result) {
    op.then = [done = std::move(done),
               result = std::move(result)](absl::Status s) mutable {
      if (s.ok()) return done(std::move(result));
      done(s);
    };
  };
  if (!request_id.empty()) {
    // Active tasks are known here; a task that already ended was durable
    // before anyone could end it (its id only leaves after its create is
    // durable), so the store has it.
    auto r = requests_.find(RequestKey(options_.tenant, request_id));
    absl::StatusOr<Task> existing;
    if (r != requests_.end()) {
      existing = active_.at(r->second).task;
    } else {
      existing = store_.FindByRequestId(options_.tenant, request_id);
    }
    if (existing.ok()) {
      // The stored spec is the one submitted, so comparing with it holds
      // across restarts. Equivalent: an empty sub-message equals an unset
      // one, map order does not matter.
      if (!google::protobuf::util::MessageDifferencer::Equivalent(
              existing->spec(), spec)) {
        return answer(absl::AlreadyExistsError(absl::StrCat(
            "request_id ", Abbreviate(request_id), " was already used for task ",
            existing->id(), " with a different spec")));
      }
      VLOG(1) << "CreateTask: request_id " << Abbreviate(request_id)
              << " is task " << existing->id();
      return answer(*std::move(existing));
    }
    if (!absl::IsNotFound(existing.status())) return answer(existing.status());
  }
  // After the request_id lookup: a repeat of a create that was accepted
  // returns its task whatever the fleet is now. In memory only.
  if (options_.admission != nullptr) {
    if (absl::Status admitted = options_.admission->Check(spec); !admitted.ok()) {
      return answer(admitted);
    }
  }
  Task task;
  task.set_id(NewTaskIdLocked());
  *task.mutable_spec() = std::move(spec);
  task.set_state(crucible::v1::TASK_STATE_QUEUED);
  absl::Time now = clock_.Now();
  *task.mutable_create_time() = common::ToProtoTime(now);
  *task.mutable_update_time() = common::ToProtoTime(now);
  task.set_tenant(options_.tenant);
  task.set_request_id(std::move(request_id));
  store_.Submit(TaskWrite::Insert(task));
  AddEntryLocked(task);
  if (listener_count_.load() > 0) {  // as in CommitLocked
    TaskEvent event;
    event.set_task_id(task.id());
    event.set_state(task.state());
    *event.mutable_event_time() = task.create_time();
    event.set_message("created");
    op.out.events.push_back(std::move(event));
  }
  DispatchLocked(op.out);
  answer(std::move(task));
}

absl::StatusOr<Task> Scheduler::CreateTask(TaskSpec spec,
                                           std::string request_id) {
  absl::Notification done;
  absl::StatusOr<Task> result;
  CreateTaskAsync(std::move(spec), std::move(request_id),
                  [&](absl::StatusOr<Task> t) {
                    result = std::move(t);
                    done.Notify();
                  });
  done.WaitForNotification();
  return result;
}

absl::StatusOr<Task> Scheduler::GetTask(const std::string& task_id) {
  RETURN_IF_ERROR(ValidateTaskId(task_id));
  // Never show a state a crash could undo: wait for what memory says (or
  // what was written before the task left memory) to be durable.
  WriteTicket ticket;
  std::optional<Task> active;
  {
    absl::MutexLock lock(&mu_);
    ticket = store_.LastTicket();
    auto it = active_.find(task_id);
    if (it != active_.end() && it->second.task.tenant() == options_.tenant) {
      active = it->second.task;
    }
  }
  absl::Status durable = store_.AwaitDurable(ticket);
  if (absl::IsResourceExhausted(durable)) {
    active.reset();  // the disk is full: show what is durable, from the store
  } else {
    RETURN_IF_ERROR(durable);
  }
  if (active) return *std::move(active);
  absl::StatusOr<Task> task = store_.GetTask(task_id);
  if ((task.ok() && task->tenant() != options_.tenant) ||
      absl::IsNotFound(task.status())) {
    return absl::NotFoundError(
        absl::StrCat("task ", Abbreviate(task_id), " not found"));
  }
  return task;
}

absl::StatusOr<ListTasksPage> Scheduler::ListTasks(ListTasksQuery query) {
  query.tenant = options_.tenant;
  RETURN_IF_ERROR(
      ValidateListFilter(query.states, query.page_token, query.labels));
  if (query.page_size < 0) {
    return absl::InvalidArgumentError("page_size: must not be negative");
  }
  if (query.page_size == 0) query.page_size = 50;
  query.page_size = std::min(query.page_size, 1000);
  RETURN_IF_ERROR(DurableOrFull(store_.AwaitDurable(store_.LastTicket())));
  return store_.ListTasks(query);
}

absl::StatusOr<Task> Scheduler::CancelTask(const std::string& task_id,
                                           const std::string& reason) {
  RETURN_IF_ERROR(ValidateTaskId(task_id));
  RETURN_IF_ERROR(ValidateCancelReason(reason));
  RETURN_IF_ERROR(store_.health());  // refused while the disk is full
  absl::StatusOr<Task> result;
  absl::Notification stored;
  absl::Status durable;
  {
    Op op(this);
    result = CancelLocked(task_id, reason, op.out);
    // Answered once durable, even if the disk fills meanwhile (the cancel
    // took effect in memory: RESOURCE_EXHAUSTED would be a wrong answer).
    if (result.ok()) {
      op.then = [&](absl::Status s) {
        durable = std::move(s);
        stored.Notify();
      };
    }
  }
  RETURN_IF_ERROR(result.status());
  stored.WaitForNotification();
  RETURN_IF_ERROR(durable);
  return result;
}

absl::StatusOr<Task> Scheduler::CancelLocked(const std::string& task_id,
                                             const std::string& reason,
                                             Outbox& out) {
  auto it = active_.find(task_id);
  if (it == active_.end() || it->second.task.tenant() != options_.tenant) {
    absl::StatusOr<Task> task = store_.GetTask(task_id);
    if (!task.ok() || task->tenant() != options_.tenant) {
      return absl::NotFoundError(
          absl::StrCat("task ", Abbreviate(task_id), " not found"));
    }
    return absl::FailedPreconditionError(
        absl::StrCat("task ", task_id, " already ended (",
                     crucible::v1::TaskState_Name(task->state()), ")"));
  }
  Entry& e = it->second;
  std::string why = reason.empty() ? "cancelled by client" : reason;
  if (e.task.state() == crucible::v1::TASK_STATE_QUEUED) {
    TaskResult result;
    result.set_reason(crucible::v1::TERMINATION_REASON_CANCELLED);
    result.set_error_message(why);
    *result.mutable_finish_time() = common::ToProtoTime(clock_.Now());
    Task ended;
    RETURN_IF_ERROR(FinishLocked(e, crucible::v1::TASK_STATE_CANCELLED,
                                 result, why, out, &ended));
    return ended;
  }
  // LEASED or RUNNING: the worker kills the container and reports CANCELLED;
  // if it never does, the lease lapses and the task ends CANCELLED then.
  e.cancel_requested = true;
  e.cancel_reason = why;
  SendCancelLocked(e, why, out);
  return e.task;
}

absl::StatusOr<TaskSubscription> Scheduler::Subscribe(
    const std::string& task_id, TaskListener* listener) {
  RETURN_IF_ERROR(ValidateTaskId(task_id));
  // mu_ then publish_mu_: no commit can slip between the snapshot and the
  // registration, and every earlier announcement has been delivered.
  TaskSubscription sub;
  WriteTicket ticket;
  bool active = false;
  {
    absl::MutexLock lock(&mu_);
    ticket = store_.LastTicket();
    auto it = active_.find(task_id);
    active = it != active_.end() && it->second.task.tenant() == options_.tenant;
    if (active) {
      sub.task = it->second.task;
      absl::MutexLock plock(&publish_mu_);
      sub.id = ++next_subscription_;
      // Operations up to last_op_ are in the snapshot; later ones reach us.
      listeners_[task_id][sub.id] = Listener{listener, last_op_};
      subscription_task_[sub.id] = task_id;
      listener_count_.fetch_add(1);
    }
  }
  if (!active) {  // ended (or unknown): nothing to follow
    ASSIGN_OR_RETURN(sub.task, GetTask(task_id));
    return sub;
  }
  // The snapshot is shown only once durable.
  absl::Status s = store_.AwaitDurable(ticket);
  if (absl::IsResourceExhausted(s)) {
    // The disk is full: start from what the store has instead. Every
    // operation delivered so far is in it; later ones reach the listener
    // (some again, harmlessly). A change made while nobody followed the
    // task is not announced again: the watcher sees the next one.
    {
      absl::MutexLock plock(&publish_mu_);
      listeners_.at(task_id).at(sub.id).after_op = delivered_op_;
    }
    absl::StatusOr<Task> stored = store_.GetTask(task_id);
    s = stored.status();
    if (s.ok()) sub.task = *std::move(stored);
  }
  if (!s.ok()) {
    Unsubscribe(sub.id);
    return s;
  }
  return sub;
}

void Scheduler::Unsubscribe(int64_t subscription_id) {
  absl::MutexLock plock(&publish_mu_);
  auto it = subscription_task_.find(subscription_id);
  if (it == subscription_task_.end()) return;
  listener_count_.fetch_sub(1);
  auto l = listeners_.find(it->second);
  if (l != listeners_.end()) {
    l->second.erase(subscription_id);
    if (l->second.empty()) listeners_.erase(l);
  }
  subscription_task_.erase(it);
}

absl::StatusOr<std::vector<crucible::v1::OutputChunk>> Scheduler::ReadOutput(
    const std::string& task_id, int32_t attempt, int64_t offset,
    crucible::v1::OutputStream stream, int64_t max_bytes) {
  RETURN_IF_ERROR(ValidateTaskId(task_id));
  RETURN_IF_ERROR(ValidateOutputRequest(stream, offset, attempt));
  // What was reported before this call is readable (or, while the disk is
  // full, what is durable).
  RETURN_IF_ERROR(DurableOrFull(store_.AwaitDurable(store_.LastTicket())));
  return store_.ReadOutput(task_id, attempt, offset, stream, max_bytes);
}

void Scheduler::Deliver(Outbox& out, uint64_t op) {
  // Per task, its events of this operation in one call.
  std::vector<std::pair<std::string, std::vector<TaskEvent>>> by_task;
  for (const TaskEvent& event : out.events) {
    if (!listeners_.contains(event.task_id())) continue;
    auto it = std::find_if(by_task.begin(), by_task.end(), [&](const auto& p) {
      return p.first == event.task_id();
    });
    if (it == by_task.end()) {
      by_task.emplace_back(event.task_id(), std::vector<TaskEvent>{});
      it = by_task.end() - 1;
    }
    it->second.push_back(event);
  }
  for (const auto& [task_id, events] : by_task) {
    for (const auto& [id, l] : listeners_.at(task_id)) {
      if (op > l.after_op) l.listener->OnEvents(events);
    }
  }
  for (const auto& [task_id, chunk] : out.outputs) {
    auto it = listeners_.find(task_id);
    if (it == listeners_.end()) continue;
    for (const auto& [id, l] : it->second) {
      if (op > l.after_op) l.listener->OnOutput(chunk);
    }
  }
  for (auto& [session, message] : out.messages) {
    auto it = sinks_.find(session);
    if (it == sinks_.end()) continue;
    it->second->Send(std::move(message));
    if (std::find(unflushed_.begin(), unflushed_.end(), session) == unflushed_.end()) {
      unflushed_.push_back(session);
    }
  }
}

}  // namespace server

namespace server {

absl::StatusOr<int> Scheduler::PurgeExpired(int limit) {
  return store_.PurgeEndedBefore(clock_.Now() - options_.retention, limit);
}

}  // namespace server
