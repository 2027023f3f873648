// Task admission, client operations and the commit/announce plumbing (Op).
// State changes of an attempt: scheduler_attempts.cc; worker sessions and
// dispatch: scheduler_workers.cc; their reports: scheduler_reports.cc;
// tenants' counts, caps and reloads: scheduler_tenancy.cc.
#include "server/scheduler/scheduler.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "common/trace.h"
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
  bool followed =
      s_->delivery_.followed() && (!out.events.empty() || !out.outputs.empty());
  if (!followed && out.messages.empty() && !then) {
    s_->mu_.Unlock();
    return;
  }
  // Registered under mu_, so callbacks (and announcements) run in the order
  // the operations decided them, each after its writes are durable.
  uint64_t op = ++s_->last_op_;
  Scheduler* s = s_;
  s_->outbox_.AfterDurable(s_->outbox_.LastTicket(),
                           [s, op, out = std::move(out),
                            then = std::move(then)](absl::Status st) mutable {
                             if (st.ok()) s->delivery_.Deliver(out, op);
                             if (then) then(std::move(st));
                           });
  s_->mu_.Unlock();
}

Scheduler::Scheduler(const SchedulerOptions& options, TaskStore& store,
                     DurableOutbox& outbox, const common::Clock& clock)
    : options_(options),
      store_(store),
      outbox_(outbox),
      clock_(clock),
      metrics_(options.metrics != nullptr ? *options.metrics
                                          : common::DefaultMetricsRegistry()),
      queue_(options.fairness_interval),
      quotas_(clock) {
  absl::MutexLock lock(&mu_);
  ApplyTenantsLocked(options.tenants);
}

Scheduler::~Scheduler() {
  outbox_.DrainCallbacks();
  outbox_.SetBurstEnd(nullptr);
  // The gauges are the process's: what this scheduler held leaves them.
  absl::MutexLock lock(&mu_);
  for (const auto& [id, e] : active_) {
    metrics_.Forget(e.tenant, e.priority,
                    e.packed_.empty() ? e.parsed_->state()
                                      : crucible::v1::TASK_STATE_QUEUED);
  }
  metrics_.WorkersConnected(-static_cast<int>(sessions_.size()));
  for (const auto& [id, session] : sessions_) {
    metrics_.Credits(-session.credits);
  }
  metrics_.Subscribers(-delivery_.subscriptions());
}

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(
    const SchedulerOptions& options, TaskStore& store, DurableOutbox& outbox,
    const common::Clock& clock) {
  if (options.default_max_attempts < 1 ||
      options.lease_ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "scheduler: default_max_attempts must be >= 1 and lease_ttl positive");
  }
  if (options.restart_grace < absl::ZeroDuration() ||
      options.lost_worker_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "scheduler: restart_grace and lost_worker_grace must not be negative "
        "(--restart_lease_grace, --lost_worker_grace)");
  }
  std::unique_ptr<Scheduler> s(new Scheduler(options, store, outbox, clock));
  outbox.SetBurstEnd([p = s.get()] { p->delivery_.FlushSinks(); });
  RETURN_IF_ERROR(s->Rebuild());
  return s;
}

absl::Status Scheduler::Rebuild() {
  // As stored: a waiting task keeps its bytes, so a deep queue is never
  // held parsed all at once.
  const absl::Time started = absl::Now();
  ASSIGN_OR_RETURN(std::vector<std::string> stored,
                   store_.LoadActiveTaskBytes());
  const absl::Duration read = absl::Now() - started;
  Op op(this);
  const absl::Time now = clock_.Now();
  active_.reserve(stored.size());
  requests_.reserve(stored.size());
  int kept = 0;
  for (std::string& bytes : stored) {
    ASSIGN_OR_RETURN(Task task, ParseStoredTask(bytes));
    const std::string& id = task.id();
    const TaskState state = task.state();
    AddEntryLocked(task, std::move(bytes));
    if (state == crucible::v1::TASK_STATE_QUEUED) continue;
    // The worker that held the lease most likely still runs the attempt and
    // reconnects within seconds; the store keeps no lease id, so the lease
    // waits, unclaimed, for a worker to name its task and attempt.
    ++kept;
    Entry& e = active_.at(id);
    DequeueLocked(e);
    e.lease().lease_deadline = now + options_.restart_grace;
    unclaimed_.insert(id);
    if (state == crucible::v1::TASK_STATE_RUNNING) {
      // The start report was the task's last stored change.
      e.lease().start_time = common::FromProtoTime(e.task().update_time());
      // Without a timeout in the spec, the deadline waits for the worker to
      // name the lease with the timeout its executor reported (ClaimLocked).
      SetRunDeadlineLocked(e, e.lease().start_time, std::nullopt);
    }
  }
  stored = {};
  const int lapsed = LapseUnclaimedLocked(now, op.out);
  LOG(INFO) << "scheduler rebuilt in "
            << absl::FormatDuration(absl::Now() - started) << " (store read "
            << absl::FormatDuration(read) << "): " << active_.size()
            << " active tasks, " << kept - lapsed << " live leases kept for "
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
                         absl::Uniform<uint16_t>(rng_),
                         absl::Uniform<uint64_t>(rng_));
}

QueuePosition Scheduler::PositionOf(const Entry& e) {
  return {*e.id, e.priority, e.order, e.ready_at, e.tenant};
}

Task& Scheduler::Entry::task() {
  return const_cast<Task&>(std::as_const(*this).task());
}

const Task& Scheduler::Entry::task() const {
  if (parsed_ == nullptr) {
    parsed_ = std::make_unique<Task>();
    // The bytes were made by this process, or parsed at its start.
    CHECK(parsed_->ParseFromString(packed_)) << "task " << *id;
    std::string().swap(packed_);  // its memory too
  }
  return *parsed_;
}

Task Scheduler::Entry::Copy() const {
  if (parsed_ != nullptr) return *parsed_;
  Task task;
  CHECK(task.ParseFromString(packed_)) << "task " << *id;
  return task;
}

void Scheduler::Entry::Pack() {
  lease_.reset();
  if (parsed_ == nullptr) return;
  DCHECK_EQ(parsed_->state(), crucible::v1::TASK_STATE_QUEUED);
  packed_ = parsed_->SerializeAsString();
  parsed_.reset();
}

Scheduler::Entry::Lease& Scheduler::Entry::lease() {
  if (lease_ == nullptr) lease_ = std::make_unique<Lease>();
  return *lease_;
}

const Scheduler::Entry::Lease& Scheduler::Entry::lease() const {
  static const Lease* const kNone = new Lease();
  return lease_ != nullptr ? *lease_ : *kNone;
}

std::string Scheduler::RequestKey(const std::string& tenant,
                                  const std::string& request_id) {
  return absl::StrCat(tenant, std::string(1, '\0'), request_id);
}

void Scheduler::AddEntryLocked(const Task& task, std::string bytes) {
  Entry e;
  e.tenant = task.tenant();
  e.priority = task.spec().priority();
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
  const bool queued = task.state() == crucible::v1::TASK_STATE_QUEUED;
  if (queued) {
    e.packed_ = std::move(bytes);
  } else {
    e.parsed_ = std::make_unique<Task>(task);
  }
  auto [it, inserted] = active_.emplace(task.id(), std::move(e));
  it->second.id = &it->first;
  if (!task.request_id().empty()) {
    requests_[RequestKey(task.tenant(), task.request_id())] = &it->first;
  }
  CountLocked(it->second, crucible::v1::TASK_STATE_UNSPECIFIED, task.state());
  if (queued) EnqueueLocked(it->second);
}

void Scheduler::EnqueueLocked(Entry& e) {
  queue_.Add(PositionOf(e), clock_.Now());
  e.Pack();
}

void Scheduler::DequeueLocked(Entry& e) { queue_.Remove(PositionOf(e)); }

absl::Status Scheduler::CheckCreate(const TaskSpec& spec,
                                    const std::string& request_id) const {
  RETURN_IF_ERROR(ValidateTaskSpec(spec, options_.limits));
  RETURN_IF_ERROR(ValidateRequestId(request_id));
  if (spec.has_not_before() && common::FromProtoTime(spec.not_before()) >
                                   clock_.Now() + kMaxNotBeforeAhead) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.not_before: at most ",
                     absl::FormatDuration(kMaxNotBeforeAhead), " ahead"));
  }
  return absl::OkStatus();
}

void Scheduler::CreateTaskAsync(const TenantScope& scope, TaskSpec spec,
                                std::string request_id, CreateDone done,
                                std::string trace_id) {
  absl::Status valid = CheckCreate(spec, request_id);
  // While the disk is full nothing new is taken on (reads go on).
  if (valid.ok()) valid = outbox_.health();
  if (!valid.ok()) return done(valid);
  const std::string& tenant = scope.tenant;
  if (tenant.empty()) return done(absl::InternalError("no tenant"));
  const std::string key = RequestKey(tenant, request_id);
  while (true) {
    // No disk under the lock: a request_id no active task has is looked up
    // in the store first. A task that already ended was durable before
    // anyone could end it (its id only leaves after its create is durable),
    // so the store has it.
    uint64_t ends = 0;
    std::optional<absl::StatusOr<Task>> stored;
    if (!request_id.empty()) {
      bool active = false;
      {
        absl::MutexLock lock(&mu_);
        active = requests_.contains(key);
        ends = RequestEndsLocked(key);
      }
      if (!active) stored = store_.FindByRequestId(tenant, request_id);
    }
    Op op(this);
    // A task of this request_id may have been created and ended while the
    // store was read: read again.
    if (!request_id.empty() && !requests_.contains(key) &&
        RequestEndsLocked(key) != ends) {
      continue;
    }
    absl::StatusOr<Task> result =
        CreateLocked(tenant, std::move(spec), std::move(request_id),
                     std::move(trace_id), std::move(stored), op.out);
    if (result.ok()) DispatchLocked(op.out);
    // Answers once every write decided so far is durable.
    op.then = [done = std::move(done),
               result = std::move(result)](absl::Status s) mutable {
      if (s.ok()) return done(std::move(result));
      done(s);
    };
    return;
  }
}

uint64_t& Scheduler::RequestEndsLocked(const std::string& key) {
  constexpr size_t kBuckets = sizeof(request_ends_) / sizeof(request_ends_[0]);
  return request_ends_[absl::Hash<std::string>()(key) % kBuckets];
}

absl::StatusOr<Task> Scheduler::CreateLocked(
    const std::string& tenant, TaskSpec spec, std::string request_id,
    std::string trace_id, std::optional<absl::StatusOr<Task>> stored,
    Outbox& out) {
  if (!request_id.empty()) {
    // An active task answers from memory; else the store's answer holds.
    auto r = requests_.find(RequestKey(tenant, request_id));
    absl::StatusOr<Task> existing = absl::NotFoundError("no such request_id");
    if (r != requests_.end()) {
      existing = active_.at(*r->second).Copy();
    } else if (stored.has_value()) {
      existing = *std::move(stored);
    }
    if (existing.ok()) {
      // The stored spec is the one submitted, so comparing with it holds
      // across restarts. Equivalent: an empty sub-message equals an unset
      // one, map order does not matter.
      if (!google::protobuf::util::MessageDifferencer::Equivalent(
              existing->spec(), spec)) {
        return absl::AlreadyExistsError(
            absl::StrCat("request_id ", Abbreviate(request_id),
                         " was already used for task ", existing->id(),
                         " with a different spec"));
      }
      VLOG(1) << "CreateTask: request_id " << Abbreviate(request_id) << " is "
              << common::TaskTag(existing->id(), existing->trace_id());
      return *std::move(existing);
    }
    if (!absl::IsNotFound(existing.status())) return existing.status();
  }
  // After the request_id lookup: a repeat of a create that was accepted
  // returns its task whatever the fleet is now. In memory only.
  if (options_.admission != nullptr) {
    if (absl::Status admitted = options_.admission->Check(spec);
        !admitted.ok()) {
      return admitted;
    }
  }
  // The tenant's quotas, last: only an admitted task spends a token of its
  // rate. Under the lock, so the counts are those of every decision so far,
  // and before anything is written, so a refusal leaves nothing behind (and
  // its request_id free).
  if (absl::Status admitted = quotas_.Admit(tenant, spec); !admitted.ok()) {
    VLOG(1) << "CreateTask refused: " << admitted.message();
    return admitted;
  }
  Task task;
  task.set_id(NewTaskIdLocked());
  *task.mutable_spec() = std::move(spec);
  task.set_state(crucible::v1::TASK_STATE_QUEUED);
  absl::Time now = clock_.Now();
  *task.mutable_create_time() = common::ToProtoTime(now);
  *task.mutable_update_time() = common::ToProtoTime(now);
  task.set_tenant(tenant);
  task.set_request_id(std::move(request_id));
  // The client's trace, if it sent one; else a new one, so every task has
  // a trace id to grep its log lines by.
  task.set_trace_id(common::IsTraceId(trace_id) ? std::move(trace_id)
                                                : NewIdLocked());
  TaskWrite insert = TaskWrite::Insert(task);
  std::string bytes = insert.row.blob;  // kept while it waits
  outbox_.Submit(std::move(insert));
  VLOG(1) << common::TaskTag(task.id(), task.trace_id()) << " created (tenant "
          << tenant << ")";
  AddEntryLocked(task, std::move(bytes));
  metrics_.Created();
  if (delivery_.followed()) {  // as in CommitLocked
    TaskEvent event;
    event.set_task_id(task.id());
    event.set_state(task.state());
    *event.mutable_event_time() = task.create_time();
    event.set_message("created");
    out.events.push_back(std::move(event));
  }
  return task;
}

absl::StatusOr<Task> Scheduler::CreateTask(const TenantScope& scope,
                                           TaskSpec spec,
                                           std::string request_id,
                                           std::string trace_id) {
  absl::Notification done;
  absl::StatusOr<Task> result;
  CreateTaskAsync(
      scope, std::move(spec), std::move(request_id),
      [&](absl::StatusOr<Task> t) {
        result = std::move(t);
        done.Notify();
      },
      std::move(trace_id));
  done.WaitForNotification();
  return result;
}

absl::StatusOr<Task> Scheduler::GetTask(const TenantScope& scope,
                                        const std::string& task_id) {
  RETURN_IF_ERROR(ValidateTaskId(task_id));
  // Never show a state a crash could undo: wait for what memory says (or
  // what was written before the task left memory) to be durable.
  WriteTicket ticket;
  std::optional<Task> active;
  {
    absl::MutexLock lock(&mu_);
    if (going_away_) {
      return absl::UnavailableError(GoingAwayMessage(going_away_reason_));
    }
    ticket = outbox_.LastTicket();
    auto it = active_.find(task_id);
    if (it != active_.end() && scope.Sees(it->second.tenant)) {
      active = it->second.Copy();
    }
  }
  absl::Status durable = outbox_.AwaitDurable(ticket);
  if (absl::IsResourceExhausted(durable)) {
    active.reset();  // the disk is full: show what is durable, from the store
  } else {
    RETURN_IF_ERROR(durable);
  }
  if (active) return *std::move(active);
  absl::StatusOr<Task> task = store_.GetTask(task_id);
  if ((task.ok() && !scope.Sees(task->tenant())) ||
      absl::IsNotFound(task.status())) {
    return absl::NotFoundError(
        absl::StrCat("task ", Abbreviate(task_id), " not found"));
  }
  return task;
}

absl::StatusOr<ListTasksPage> Scheduler::ListTasks(const TenantScope& scope,
                                                   ListTasksQuery query) {
  query.tenant = scope.all_tenants ? "" : scope.tenant;
  RETURN_IF_ERROR(
      ValidateListFilter(query.states, query.page_token, query.labels));
  if (query.page_size < 0) {
    return absl::InvalidArgumentError("page_size: must not be negative");
  }
  if (query.page_size == 0) query.page_size = 50;
  query.page_size = std::min(query.page_size, 1000);
  RETURN_IF_ERROR(DurableOrFull(outbox_.AwaitDurable(outbox_.LastTicket())));
  return store_.ListTasks(query);
}

absl::StatusOr<Task> Scheduler::CancelTask(const TenantScope& scope,
                                           const std::string& task_id,
                                           const std::string& reason) {
  RETURN_IF_ERROR(ValidateTaskId(task_id));
  RETURN_IF_ERROR(ValidateCancelReason(reason));
  RETURN_IF_ERROR(outbox_.health());  // refused while the disk is full
  absl::StatusOr<Task> result;
  absl::Notification stored;
  absl::Status durable;
  {
    Op op(this);
    result = CancelLocked(scope, task_id, reason, op.out);
    // Answered once durable, even if the disk fills meanwhile (the cancel
    // took effect in memory: RESOURCE_EXHAUSTED would be a wrong answer).
    // Not active: answered once its end is durable, from the store.
    op.then = [&](absl::Status s) {
      durable = std::move(s);
      stored.Notify();
    };
  }
  stored.WaitForNotification();
  if (absl::IsNotFound(result.status())) {
    // Ended (or unknown): the store says which, read without the lock.
    absl::StatusOr<Task> task = store_.GetTask(task_id);
    if (!task.ok() || !scope.Sees(task->tenant())) {
      return absl::NotFoundError(
          absl::StrCat("task ", Abbreviate(task_id), " not found"));
    }
    return absl::FailedPreconditionError(
        absl::StrCat("task ", task_id, " already ended (",
                     crucible::v1::TaskState_Name(task->state()), ")"));
  }
  RETURN_IF_ERROR(result.status());
  RETURN_IF_ERROR(durable);
  return result;
}

absl::StatusOr<Task> Scheduler::CancelLocked(const TenantScope& scope,
                                             const std::string& task_id,
                                             const std::string& reason,
                                             Outbox& out) {
  auto it = active_.find(task_id);
  if (it == active_.end() || !scope.Sees(it->second.tenant)) {
    return absl::NotFoundError("not active");
  }
  Entry& e = it->second;
  std::string why = reason.empty() ? "cancelled by client" : reason;
  if (e.task().state() == crucible::v1::TASK_STATE_QUEUED) {
    TaskResult result;
    result.set_reason(crucible::v1::TERMINATION_REASON_CANCELLED);
    result.set_error_message(why);
    *result.mutable_finish_time() = common::ToProtoTime(clock_.Now());
    Task ended;
    RETURN_IF_ERROR(FinishLocked(e, crucible::v1::TASK_STATE_CANCELLED, result,
                                 why, out, &ended));
    return ended;
  }
  // LEASED or RUNNING: the worker kills the container and reports CANCELLED;
  // if it never does, the lease lapses and the task ends CANCELLED then.
  e.lease().cancel_requested = true;
  e.lease().cancel_reason = why;
  SendCancelLocked(e, why, out);
  return e.task();
}

absl::StatusOr<TaskSubscription> Scheduler::Subscribe(
    const TenantScope& scope, const std::string& task_id,
    TaskListener* listener) {
  RETURN_IF_ERROR(ValidateTaskId(task_id));
  // Registered under mu_: no operation can slip between the snapshot and
  // the registration.
  TaskSubscription sub;
  WriteTicket ticket;
  bool active = false;
  {
    absl::MutexLock lock(&mu_);
    ticket = outbox_.LastTicket();
    auto it = active_.find(task_id);
    active = it != active_.end() && scope.Sees(it->second.tenant);
    if (active) {
      sub.task = it->second.Copy();
      // Operations up to last_op_ are in the snapshot; later ones reach us.
      sub.id = delivery_.Subscribe(task_id, listener, last_op_);
      metrics_.Subscribers(1);
    }
  }
  if (!active) {  // ended (or unknown): nothing to follow
    ASSIGN_OR_RETURN(sub.task, GetTask(scope, task_id));
    return sub;
  }
  // The snapshot is shown only once durable.
  absl::Status s = outbox_.AwaitDurable(ticket);
  if (absl::IsResourceExhausted(s)) {
    // The disk is full: start from what the store has instead. Every
    // operation delivered so far is in it; later ones reach the listener
    // (some again, harmlessly). A change made while nobody followed the
    // task is not announced again: the watcher sees the next one.
    delivery_.FollowFromDelivered(sub.id);
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
  if (delivery_.Unsubscribe(subscription_id)) metrics_.Subscribers(-1);
}

absl::StatusOr<std::vector<crucible::v1::OutputChunk>> Scheduler::ReadOutput(
    const TenantScope& scope, const std::string& task_id, int32_t attempt,
    int64_t offset, crucible::v1::OutputStream stream, int64_t max_bytes) {
  RETURN_IF_ERROR(ValidateTaskId(task_id));
  RETURN_IF_ERROR(ValidateOutputRequest(stream, offset, attempt));
  RETURN_IF_ERROR(CheckVisible(scope, task_id));
  // What was reported before this call is readable (or, while the disk is
  // full, what is durable).
  RETURN_IF_ERROR(DurableOrFull(outbox_.AwaitDurable(outbox_.LastTicket())));
  return store_.ReadOutput(task_id, attempt, offset, stream, max_bytes);
}

absl::Status Scheduler::CheckVisible(const TenantScope& scope,
                                     const std::string& task_id) {
  if (scope.all_tenants) return absl::OkStatus();
  std::optional<bool> seen;
  {
    absl::MutexLock lock(&mu_);
    auto it = active_.find(task_id);
    if (it != active_.end()) seen = scope.Sees(it->second.tenant);
  }
  if (!seen.has_value()) {
    absl::StatusOr<Task> task = store_.GetTask(task_id);
    seen = task.ok() && scope.Sees(task->tenant());
  }
  if (*seen) return absl::OkStatus();
  return absl::NotFoundError(
      absl::StrCat("task ", Abbreviate(task_id), " not found"));
}

absl::StatusOr<StoredArtifact> Scheduler::FindArtifact(
    const TenantScope& scope, const std::string& task_id,
    const std::string& path, int32_t attempt) {
  RETURN_IF_ERROR(ValidateTaskId(task_id));
  if (path.empty()) return absl::InvalidArgumentError("path: required");
  if (attempt < 0) {
    return absl::InvalidArgumentError("attempt: must not be negative");
  }
  RETURN_IF_ERROR(CheckVisible(scope, task_id));
  // An artifact is recorded with its attempt's completion, which may still
  // be on its way to the store: what was reported before this call is
  // readable (or, while the disk is full, what is durable).
  RETURN_IF_ERROR(DurableOrFull(outbox_.AwaitDurable(outbox_.LastTicket())));
  absl::StatusOr<StoredArtifact> found =
      store_.FindArtifact(task_id, path, attempt);
  if (absl::IsNotFound(found.status())) {
    absl::StatusOr<Task> task = store_.GetTask(task_id);
    if (!task.ok()) return task.status();
    return absl::NotFoundError(absl::StrCat(
        "task ", task_id, " has no collected artifact \"", Abbreviate(path),
        "\"", attempt > 0 ? absl::StrCat(" of attempt ", attempt) : "",
        " (its result lists what became of each artifact)"));
  }
  return found;
}

absl::StatusOr<std::vector<crucible::v1::ArtifactChunk>>
Scheduler::ReadArtifact(const std::string& task_id, int32_t attempt,
                        const std::string& path, int64_t offset,
                        int64_t max_bytes) {
  return store_.ReadArtifact(task_id, attempt, path, offset, max_bytes);
}

absl::StatusOr<int> Scheduler::PurgeExpired(int limit) {
  // A delete needs room in the WAL too.
  RETURN_IF_ERROR(outbox_.health());
  return store_.PurgeEndedBefore(clock_.Now() - options_.retention, limit);
}

}  // namespace server
