// Worker sessions, dispatch under credits, leases and the reports of the
// QueueService protocol.
#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "glog/logging.h"
#include "server/scheduler/request_validation.h"
#include "server/scheduler/scheduler.h"
#include "server/scheduler/transitions.h"

namespace server {

using crucible::v1::ConnectResponse;
using crucible::v1::OutputChunk;
using crucible::v1::Task;
using crucible::v1::TaskResult;

namespace {

bool RetryableCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
      return true;
    default:
      return false;
  }
}

// Of the retryable codes, those that say the system failed (an engine,
// executor or worker unreachable or full, a conflict) rather than anything
// about the task. A deadline, an internal error or an unknown one may come
// from the task itself (a stream it broke), so they spend its attempts.
Blame BlameOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kResourceExhausted:
      return Blame::kSystem;
    default:
      return Blame::kTask;
  }
}

}  // namespace

absl::StatusOr<int64_t> Scheduler::ConnectWorker(const std::string& worker_id,
                                                 int credits,
                                                 WorkerSink* sink) {
  if (worker_id.empty()) {
    return absl::InvalidArgumentError("hello.worker_id: required");
  }
  if (credits < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hello.credits: must not be negative (got ", credits, ")"));
  }
  Op op(this);
  int64_t id = ++next_session_;
  int64_t replaced = 0;
  auto old = session_of_worker_.find(worker_id);
  if (old != session_of_worker_.end()) {
    replaced = old->second;
    LOG(WARNING) << "worker " << worker_id << " reconnected; session "
                 << replaced << " replaced by " << id;
    sessions_.erase(replaced);
  }
  sessions_[id] = Session{worker_id, credits};
  session_of_worker_[worker_id] = id;
  {
    // Registered under both locks, so the first delivery after this Op
    // already reaches the new sink and none reaches the replaced one.
    absl::MutexLock plock(&publish_mu_);
    if (replaced != 0) sinks_.erase(replaced);
    sinks_[id] = sink;
  }
  // Cancels the old session may have missed.
  for (auto& [task_id, e] : active_) {
    if (e.cancel_requested && e.worker_id == worker_id && !e.lease_id.empty()) {
      SendCancelLocked(e, e.cancel_reason, op.out);
    }
  }
  LOG(INFO) << "worker " << worker_id << " connected (session " << id
            << ", credits " << credits << ")";
  if (going_away_) {
    ConnectResponse bye;
    bye.mutable_going_away()->set_reason(going_away_reason_);
    op.out.messages.emplace_back(id, std::move(bye));
  }
  DispatchLocked(op.out);
  return id;
}

void Scheduler::WorkerLost(const std::string& worker_id) {
  absl::MutexLock lock(&mu_);
  // Connected again already: the new stream's heartbeat names its leases.
  if (session_of_worker_.contains(worker_id)) return;
  const absl::Time lapse = clock_.Now() + options_.lost_worker_grace;
  int shortened = 0;
  for (const auto& [lease_id, task_id] : leases_) {
    Entry& e = active_.at(task_id);
    if (e.worker_id != worker_id || e.lease_deadline <= lapse) continue;
    e.lease_deadline = lapse;
    e.lapse_why = absl::StrCat("lease lapsed: worker ", worker_id,
                               " lost (its stream ended without a goodbye)");
    ++shortened;
  }
  LOG(WARNING) << "worker " << worker_id
               << " lost (its stream ended without a goodbye); its "
               << shortened << " leases lapse in "
               << absl::FormatDuration(options_.lost_worker_grace)
               << " unless it reconnects and names them";
}

void Scheduler::GoAway(const std::string& reason) {
  Op op(this);
  going_away_ = true;
  going_away_reason_ = reason;
  for (const auto& [session_id, session] : sessions_) {
    ConnectResponse bye;
    bye.mutable_going_away()->set_reason(reason);
    op.out.messages.emplace_back(session_id, std::move(bye));
  }
  LOG(INFO) << "going away (" << reason << "): told " << sessions_.size()
            << " workers; no more assignments";
}

void Scheduler::DisconnectWorker(int64_t session_id) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(session_id);
  if (it != sessions_.end()) {
    LOG(INFO) << "worker " << it->second.worker_id << " disconnected (session "
              << session_id << "); its leases run until their deadlines";
    auto w = session_of_worker_.find(it->second.worker_id);
    if (w != session_of_worker_.end() && w->second == session_id) {
      session_of_worker_.erase(w);
    }
    sessions_.erase(it);
  }
  absl::MutexLock plock(&publish_mu_);
  sinks_.erase(session_id);
}

absl::Status Scheduler::AddCredits(int64_t session_id, int credits) {
  if (credits <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("credit.credits: must be positive (got ", credits, ")"));
  }
  Op op(this);
  auto it = sessions_.find(session_id);
  if (it == sessions_.end()) {
    return absl::NotFoundError(absl::StrCat("no session ", session_id));
  }
  it->second.credits += credits;
  DispatchLocked(op.out);
  return absl::OkStatus();
}

void Scheduler::DispatchLocked(Outbox& out) {
  // While the disk is full an assignment could not leave (it goes once
  // durable) and its lease would lapse meanwhile: hand out nothing; the
  // sweep dispatches again once writes succeed.
  if (!store_.health().ok()) return;
  if (going_away_) return;  // what is handed out now would wait for a restart
  PromoteDueLocked(clock_.Now());
  while (!ready_.empty()) {
    // The session with the most credits left, so work spreads out (a look
    // at each connected worker, not at the queue).
    auto best = sessions_.end();
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
      if (it->second.credits > 0 &&
          (best == sessions_.end() || it->second.credits > best->second.credits)) {
        best = it;
      }
    }
    if (best == sessions_.end()) return;
    // Highest priority first, FIFO among equals; now and then the oldest.
    Entry& next = PickLocked();
    absl::Status s = LeaseLocked(next, best->first, out);
    if (!s.ok()) {
      LOG(WARNING) << "cannot lease task " << next.task.id() << ": " << s;
      return;  // the timer retries
    }
  }
}

absl::Status Scheduler::LeaseLocked(Entry& e, int64_t session_id,
                                    Outbox& out) {
  Session& session = sessions_.at(session_id);
  DequeueLocked(e);
  RETURN_IF_ERROR(CommitLocked(
      e, crucible::v1::TASK_STATE_LEASED,
      [](Task& t) {
        t.set_attempt(t.attempt() + 1);
        t.clear_next_attempt_time();
      },
      absl::StrCat("leased to ", session.worker_id),
      /*ends_attempt=*/false, out));
  e.lease_id = NewIdLocked();
  e.lease_deadline = clock_.Now() + options_.lease_ttl;
  e.worker_id = session.worker_id;
  e.lapse_why.clear();
  e.output_truncated = false;
  e.output_bytes = 0;
  e.output_end = 0;
  e.run_deadline = absl::InfiniteFuture();
  e.start_time = absl::InfinitePast();
  leases_[e.lease_id] = e.task.id();
  --session.credits;
  ConnectResponse msg;
  crucible::v1::Assignment* a = msg.mutable_assignment();
  *a->mutable_task() = e.task;
  a->set_lease_id(e.lease_id);
  *a->mutable_lease_deadline() = common::ToProtoTime(e.lease_deadline);
  a->set_attempt(e.task.attempt());
  out.messages.emplace_back(session_id, std::move(msg));
  return absl::OkStatus();
}

void Scheduler::ReleaseLeaseLocked(Entry& e) {
  unclaimed_.erase(e.task.id());
  if (e.lease_id.empty()) return;
  leases_.erase(e.lease_id);
  e.lease_id.clear();
  e.worker_id.clear();
  e.lapse_why.clear();
}

bool Scheduler::ClaimLocked(const crucible::v1::HeldLease& held,
                            const std::string& worker_id, Outbox& out) {
  auto u = unclaimed_.find(held.task_id());
  if (u == unclaimed_.end() || held.lease_id().empty() ||
      held.lease_id().size() > 128 || leases_.contains(held.lease_id())) {
    return false;
  }
  Entry& e = active_.at(*u);
  // Fencing: only the attempt stored as leased is live; its lapse may not
  // have been recorded before the restart, but then nothing said so.
  if (held.attempt() != e.task.attempt() || clock_.Now() >= e.lease_deadline) {
    return false;
  }
  unclaimed_.erase(u);
  e.lease_id = held.lease_id();
  e.worker_id = worker_id;
  e.lease_deadline = clock_.Now() + options_.lease_ttl;
  leases_[e.lease_id] = e.task.id();
  LOG(INFO) << "worker " << worker_id << " took back the lease of task "
            << e.task.id() << " (attempt " << e.task.attempt() << ")";
  if (e.cancel_requested) SendCancelLocked(e, e.cancel_reason, out);
  return true;
}

int Scheduler::LapseUnclaimedLocked(absl::Time now, Outbox& out) {
  std::vector<std::string> lapsed;
  for (const std::string& task_id : unclaimed_) {
    if (active_.at(task_id).lease_deadline <= now) lapsed.push_back(task_id);
  }
  const std::string why = absl::StrCat(
      "lease lapsed: server restarted and no worker named it within ",
      absl::FormatDuration(options_.restart_grace));
  for (const std::string& task_id : lapsed) {
    Entry& e = active_.at(task_id);
    absl::Status s = RetryOrFailLocked(e, AbandonedResult(e, why), why, out);
    if (!s.ok()) {
      LOG(WARNING) << "cannot lapse the lease of task " << task_id << ": " << s;
      unclaimed_.erase(task_id);
    }
  }
  if (!lapsed.empty()) {
    LOG(WARNING) << lapsed.size() << " leases kept since the restart lapsed: "
                 << "no worker named them";
  }
  return static_cast<int>(lapsed.size());
}

TaskResult Scheduler::AbandonedResult(const Entry& e,
                                     const std::string& why) const {
  TaskResult result;
  result.set_reason(crucible::v1::TERMINATION_REASON_INFRASTRUCTURE);
  result.set_error_message(why);
  if (e.start_time != absl::InfinitePast()) {
    *result.mutable_start_time() = common::ToProtoTime(e.start_time);
  }
  *result.mutable_finish_time() = common::ToProtoTime(clock_.Now());
  return result;
}

void Scheduler::SendCancelLocked(const Entry& e, const std::string& reason,
                                 Outbox& out) {
  auto s = session_of_worker_.find(e.worker_id);
  if (s == session_of_worker_.end()) return;  // lapses, then CANCELLED
  ConnectResponse msg;
  msg.mutable_cancel()->set_lease_id(e.lease_id);
  msg.mutable_cancel()->set_reason(reason);
  out.messages.emplace_back(s->second, std::move(msg));
}

absl::StatusOr<Scheduler::Entry*> Scheduler::LiveLeaseLocked(
    const std::string& lease_id, Outbox& out) {
  auto l = leases_.find(lease_id);
  if (l != leases_.end()) {
    auto it = active_.find(l->second);
    if (it != active_.end() && it->second.lease_id == lease_id) {
      Entry& e = it->second;
      if (clock_.Now() < e.lease_deadline) return &e;
      const std::string why =
          e.lapse_why.empty() ? "lease expired" : e.lapse_why;
      RETURN_IF_ERROR(
          RetryOrFailLocked(e, AbandonedResult(e, why), why, out));
      DispatchLocked(out);
    }
  }
  return absl::FailedPreconditionError(
      absl::StrCat("lease ", Abbreviate(lease_id), " is not live"));
}

std::vector<std::string> Scheduler::Heartbeat(
    int64_t session_id, const std::vector<std::string>& lease_ids,
    const std::vector<crucible::v1::HeldLease>& held) {
  Op op(this);
  std::vector<std::string> stale;
  auto extend = [&](const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::StatusOr<Entry*> e = LiveLeaseLocked(id, op.out);
    if (!e.ok()) {
      stale.push_back(id);
      return;
    }
    (*e)->lease_deadline = clock_.Now() + options_.lease_ttl;
    (*e)->lapse_why.clear();
  };
  auto session = sessions_.find(session_id);
  absl::flat_hash_set<std::string> named;
  for (const crucible::v1::HeldLease& h : held) {
    named.insert(h.lease_id());
    if (leases_.contains(h.lease_id())) {
      extend(h.lease_id());
    } else if (session == sessions_.end() ||
               !ClaimLocked(h, session->second.worker_id, op.out)) {
      stale.push_back(h.lease_id());
    }
  }
  // A worker lists its held leases in lease_ids too (for older servers).
  for (const std::string& id : lease_ids) {
    if (!named.contains(id)) extend(id);
  }
  return stale;
}

absl::Status Scheduler::ReportStarted(const std::string& lease_id,
                                      absl::Time start_time) {
  Op op(this);
  ASSIGN_OR_RETURN(Entry * e, LiveLeaseLocked(lease_id, op.out));
  if (e->task.state() == crucible::v1::TASK_STATE_RUNNING) return absl::OkStatus();
  RETURN_IF_ERROR(CommitLocked(*e, crucible::v1::TASK_STATE_RUNNING,
                               [](Task&) {}, "container started",
                               /*ends_attempt=*/false, op.out));
  e->start_time =
      start_time == absl::InfinitePast() ? clock_.Now() : start_time;
  if (e->task.spec().has_timeout()) {
    // Counted on our clock from the report, so a skewed worker clock cannot
    // shorten it.
    e->run_deadline = clock_.Now() +
                      common::FromProtoDuration(e->task.spec().timeout()) +
                      options_.timeout_grace;
  }
  return absl::OkStatus();
}

absl::Status Scheduler::ReportOutput(const std::string& lease_id,
                                     OutputChunk chunk) {
  Op op(this);
  ASSIGN_OR_RETURN(Entry * e, LiveLeaseLocked(lease_id, op.out));
  if (chunk.offset() < 0) {
    return absl::InvalidArgumentError("output.chunk.offset: must not be negative");
  }
  chunk.set_attempt(e->task.attempt());
  int64_t cap = e->task.spec().max_output_bytes() > 0
                    ? std::min(e->task.spec().max_output_bytes(),
                               options_.max_output_bytes)
                    : options_.max_output_bytes;
  // A replayed report (same or older offsets) adds nothing.
  int64_t end = chunk.offset() + static_cast<int64_t>(chunk.data().size());
  if (end <= e->output_end) return absl::OkStatus();
  if (chunk.offset() < e->output_end) {
    chunk.set_data(chunk.data().substr(e->output_end - chunk.offset()));
    chunk.set_offset(e->output_end);
  }
  e->output_end = end;
  int64_t room = std::max<int64_t>(0, cap - e->output_bytes);
  if (room < static_cast<int64_t>(chunk.data().size())) {
    e->output_truncated = true;
    chunk.mutable_data()->resize(room);
  }
  if (chunk.data().empty()) return absl::OkStatus();
  e->output_bytes += chunk.data().size();
  store_.Submit(TaskWrite::Output(e->task.id(), chunk));
  op.out.outputs.emplace_back(e->task.id(), std::move(chunk));
  return absl::OkStatus();
}

absl::Status Scheduler::ReportCompletion(
    const crucible::v1::AttemptCompletion& completion) {
  Op op(this);
  ASSIGN_OR_RETURN(Entry * e, LiveLeaseLocked(completion.lease_id(), op.out));
  absl::Time now = clock_.Now();
  TaskResult result;
  if (completion.has_result()) result = completion.result();
  if (!result.has_start_time() && e->start_time != absl::InfinitePast()) {
    *result.mutable_start_time() = common::ToProtoTime(e->start_time);
  }
  if (!result.has_finish_time()) {
    *result.mutable_finish_time() = common::ToProtoTime(now);
  }
  if (e->output_truncated) result.set_output_truncated(true);

  if (completion.has_error()) {
    auto code = static_cast<absl::StatusCode>(completion.error().code());
    std::string msg = absl::StrCat(absl::StatusCodeToString(code), ": ",
                                   completion.error().message());
    if (RetryableCode(code)) {
      result.set_reason(crucible::v1::TERMINATION_REASON_INFRASTRUCTURE);
      result.set_error_message(msg);
      RETURN_IF_ERROR(RetryOrFailLocked(*e, std::move(result), msg, op.out, BlameOf(code)));
    } else {
      result.set_reason(crucible::v1::TERMINATION_REASON_REJECTED);
      result.set_error_message(completion.error().message());
      RETURN_IF_ERROR(FinishLocked(*e, crucible::v1::TASK_STATE_FAILED,
                                   std::move(result), msg, op.out));
    }
    DispatchLocked(op.out);
    return absl::OkStatus();
  }
  if (!completion.has_result()) {
    return absl::InvalidArgumentError(
        "completion: needs a result or an error");
  }
  switch (result.reason()) {
    case crucible::v1::TERMINATION_REASON_EXITED:
      if (result.exit_code() == 0) {
        RETURN_IF_ERROR(FinishLocked(*e, crucible::v1::TASK_STATE_SUCCEEDED,
                                     std::move(result), "exited 0", op.out));
      } else if (e->task.spec().retry_policy().retry_on_nonzero_exit()) {
        RETURN_IF_ERROR(RetryOrFailLocked(*e, std::move(result), "", op.out));
      } else {
        std::string msg = absl::StrCat("exited ", result.exit_code());
        RETURN_IF_ERROR(FinishLocked(*e, crucible::v1::TASK_STATE_FAILED,
                                     std::move(result), msg, op.out));
      }
      break;
    case crucible::v1::TERMINATION_REASON_TIMEOUT:
      RETURN_IF_ERROR(FinishLocked(*e, crucible::v1::TASK_STATE_TIMED_OUT,
                                   std::move(result), "timed out", op.out));
      break;
    case crucible::v1::TERMINATION_REASON_CANCELLED:
      RETURN_IF_ERROR(FinishLocked(*e, crucible::v1::TASK_STATE_CANCELLED,
                                   std::move(result), "cancelled", op.out));
      break;
    case crucible::v1::TERMINATION_REASON_OOM_KILLED:
    case crucible::v1::TERMINATION_REASON_OUTPUT_LIMIT:
    case crucible::v1::TERMINATION_REASON_REJECTED: {
      std::string msg = crucible::v1::TerminationReason_Name(result.reason());
      RETURN_IF_ERROR(FinishLocked(*e, crucible::v1::TASK_STATE_FAILED,
                                   std::move(result), msg, op.out));
      break;
    }
    default: {  // INFRASTRUCTURE, or a reason this server does not know
      std::string msg = result.error_message().empty()
                            ? "infrastructure failure"
                            : result.error_message();
      result.set_reason(crucible::v1::TERMINATION_REASON_INFRASTRUCTURE);
      RETURN_IF_ERROR(RetryOrFailLocked(*e, std::move(result), msg, op.out));
      break;
    }
  }
  DispatchLocked(op.out);
  return absl::OkStatus();
}

absl::Status Scheduler::TimeOutLocked(Entry& e, Outbox& out) {
  const std::string why = "no result within the timeout plus grace";
  SendCancelLocked(e, why, out);
  TaskResult result = AbandonedResult(e, why);
  result.set_reason(crucible::v1::TERMINATION_REASON_TIMEOUT);
  if (e.output_truncated) result.set_output_truncated(true);
  return FinishLocked(e, crucible::v1::TASK_STATE_TIMED_OUT, std::move(result),
                      "timed out (server)", out);
}

int Scheduler::ExpireLeases() {
  Op op(this);
  absl::Time now = clock_.Now();
  std::vector<std::string> expired;
  std::vector<std::string> timed_out;
  for (const auto& [lease_id, task_id] : leases_) {
    const Entry& e = active_.at(task_id);
    if (e.run_deadline <= now) {
      timed_out.push_back(task_id);
    } else if (e.lease_deadline <= now) {
      expired.push_back(lease_id);
    }
  }
  for (const std::string& task_id : timed_out) {
    absl::Status s = TimeOutLocked(active_.at(task_id), op.out);
    if (!s.ok()) LOG(WARNING) << "cannot time out task " << task_id << ": " << s;
  }
  for (const std::string& lease_id : expired) {
    // LiveLeaseLocked expires a lease past its deadline and says so.
    absl::StatusOr<Entry*> e = LiveLeaseLocked(lease_id, op.out);
    if (e.ok()) continue;
    LOG(WARNING) << "lease " << lease_id << " expired";
  }
  const int unclaimed = LapseUnclaimedLocked(now, op.out);
  DispatchLocked(op.out);
  return static_cast<int>(expired.size() + timed_out.size()) + unclaimed;
}

}  // namespace server
