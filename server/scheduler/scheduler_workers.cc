// Worker sessions, dispatch under credits, leases and heartbeats. Their
// reports: scheduler_reports.cc.
#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "common/trace.h"
#include "glog/logging.h"
#include "server/scheduler/request_validation.h"
#include "server/scheduler/scheduler.h"
#include "server/scheduler/transitions.h"

namespace server {

using crucible::v1::ConnectResponse;
using crucible::v1::OutputChunk;
using crucible::v1::Task;
using crucible::v1::TaskResult;

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
    auto gone = sessions_.find(replaced);
    if (gone != sessions_.end()) {
      metrics_.Credits(-gone->second.credits);
      sessions_.erase(gone);
    }
  } else {
    metrics_.WorkersConnected(1);
  }
  sessions_[id] = Session{worker_id, credits};
  metrics_.Credits(credits);
  session_of_worker_[worker_id] = id;
  {
    // Registered under mu_, so the first delivery after this Op already
    // reaches the new sink and none reaches the replaced one.
    delivery_.AddSink(id, sink, replaced);
  }
  // Cancels the old session may have missed: of live leases only, never a
  // walk of the whole queue.
  for (const auto& [lease_id, task_id] : leases_) {
    Entry& e = active_.at(task_id);
    if (e.lease().cancel_requested && e.lease().worker_id == worker_id) {
      SendCancelLocked(e, e.lease().cancel_reason, op.out);
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
    if (e.lease().worker_id != worker_id || e.lease().lease_deadline <= lapse)
      continue;
    e.lease().lease_deadline = lapse;
    e.lease().lapse_why =
        absl::StrCat("lease lapsed: worker ", worker_id,
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
  // Watches and output streams end now rather than at the end of the
  // shutdown grace; their clients watch again (on the next server).
  delivery_.GoAway(reason);
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
    metrics_.Credits(-it->second.credits);
    sessions_.erase(it);
    metrics_.WorkersConnected(-1);
  }
  delivery_.RemoveSink(session_id);
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
  metrics_.Credits(credits);
  DispatchLocked(op.out);
  return absl::OkStatus();
}

void Scheduler::DispatchLocked(Outbox& out) {
  // While the disk is full an assignment could not leave (it goes once
  // durable) and its lease would lapse meanwhile: hand out nothing; the
  // sweep dispatches again once writes succeed.
  if (!outbox_.health().ok()) return;
  if (going_away_) return;  // what is handed out now would wait for a restart
  queue_.PromoteDue(clock_.Now());
  while (queue_.HasReady()) {
    // The session with the most credits left, so work spreads out (a look
    // at each connected worker, not at the queue).
    auto best = sessions_.end();
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
      if (it->second.credits > 0 &&
          (best == sessions_.end() ||
           it->second.credits > best->second.credits)) {
        best = it;
      }
    }
    if (best == sessions_.end()) return;
    // Highest priority first, FIFO among equals; now and then the oldest.
    Entry& next = active_.at(queue_.Pick());
    absl::Status s = LeaseLocked(next, best->first, out);
    if (!s.ok()) {
      LOG(WARNING) << "cannot lease "
                   << common::TaskTag(next.task().id(), next.task().trace_id())
                   << ": " << s;
      return;  // the timer retries
    }
  }
}

absl::Status Scheduler::LeaseLocked(Entry& e, int64_t session_id, Outbox& out) {
  Session& session = sessions_.at(session_id);
  // Ready since it was queued, or since its not_before or backoff if later.
  const absl::Time ready =
      std::max(common::FromProtoTime(e.task().update_time()), e.ready_at);
  metrics_.Leased(std::max(clock_.Now() - ready, absl::ZeroDuration()));
  DequeueLocked(e);
  RETURN_IF_ERROR(CommitLocked(
      e, crucible::v1::TASK_STATE_LEASED,
      [](Task& t) {
        t.set_attempt(t.attempt() + 1);
        t.clear_next_attempt_time();
      },
      absl::StrCat("leased to ", session.worker_id),
      /*ends_attempt=*/false, out));
  e.lease().lease_id = NewIdLocked();
  e.lease().lease_deadline = clock_.Now() + options_.lease_ttl;
  e.lease().worker_id = session.worker_id;
  e.lease().lapse_why.clear();
  e.lease().output_truncated = false;
  e.lease().output_bytes = 0;
  e.lease().output_end = 0;
  e.lease().run_deadline = absl::InfiniteFuture();
  e.lease().start_time = absl::InfinitePast();
  e.lease().leased_at = clock_.Now();
  leases_[e.lease().lease_id] = e.task().id();
  --session.credits;
  metrics_.Credits(-1);
  ConnectResponse msg;
  crucible::v1::Assignment* a = msg.mutable_assignment();
  *a->mutable_task() = e.task();
  a->set_lease_id(e.lease().lease_id);
  *a->mutable_lease_deadline() = common::ToProtoTime(e.lease().lease_deadline);
  a->set_attempt(e.task().attempt());
  out.messages.emplace_back(session_id, std::move(msg));
  return absl::OkStatus();
}

void Scheduler::ReleaseLeaseLocked(Entry& e) {
  unclaimed_.erase(e.task().id());
  if (e.lease().lease_id.empty()) return;
  leases_.erase(e.lease().lease_id);
  e.lease().lease_id.clear();
  e.lease().worker_id.clear();
  e.lease().lapse_why.clear();
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
  if (held.attempt() != e.task().attempt() ||
      clock_.Now() >= e.lease().lease_deadline) {
    return false;
  }
  unclaimed_.erase(u);
  e.lease().lease_id = held.lease_id();
  e.lease().worker_id = worker_id;
  e.lease().lease_deadline = clock_.Now() + options_.lease_ttl;
  leases_[e.lease().lease_id] = e.task().id();
  if (e.task().state() == crucible::v1::TASK_STATE_RUNNING &&
      held.has_timeout()) {
    SetRunDeadlineLocked(e, e.lease().start_time,
                         common::FromProtoDuration(held.timeout()));
  }
  LOG(INFO) << "worker " << worker_id << " took back the lease of "
            << common::TaskTag(e.task().id(), e.task().trace_id())
            << " (attempt " << e.task().attempt() << ")";
  if (e.lease().cancel_requested)
    SendCancelLocked(e, e.lease().cancel_reason, out);
  return true;
}

int Scheduler::LapseUnclaimedLocked(absl::Time now, Outbox& out) {
  std::vector<std::string> lapsed;
  for (const std::string& task_id : unclaimed_) {
    if (active_.at(task_id).lease().lease_deadline <= now)
      lapsed.push_back(task_id);
  }
  const std::string why = absl::StrCat(
      "lease lapsed: server restarted and no worker named it within ",
      absl::FormatDuration(options_.restart_grace));
  for (const std::string& task_id : lapsed) {
    Entry& e = active_.at(task_id);
    absl::Status s = RetryOrFailLocked(e, AbandonedResult(e, why), why, out);
    if (!s.ok()) {
      LOG(WARNING) << "cannot lapse the lease of "
                   << common::TaskTag(task_id, e.task().trace_id()) << ": "
                   << s;
      unclaimed_.erase(task_id);
    }
  }
  if (!lapsed.empty()) {
    LOG(WARNING) << lapsed.size() << " leases kept since the restart lapsed: "
                 << "no worker named them";
  }
  metrics_.LeaseExpired(static_cast<int>(lapsed.size()));
  return static_cast<int>(lapsed.size());
}

TaskResult Scheduler::AbandonedResult(const Entry& e,
                                      const std::string& why) const {
  TaskResult result;
  result.set_reason(crucible::v1::TERMINATION_REASON_INFRASTRUCTURE);
  result.set_error_message(why);
  if (e.lease().start_time != absl::InfinitePast()) {
    *result.mutable_start_time() = common::ToProtoTime(e.lease().start_time);
  }
  *result.mutable_finish_time() = common::ToProtoTime(clock_.Now());
  return result;
}

void Scheduler::SendCancelLocked(const Entry& e, const std::string& reason,
                                 Outbox& out) {
  auto s = session_of_worker_.find(e.lease().worker_id);
  if (s == session_of_worker_.end()) return;  // lapses, then CANCELLED
  ConnectResponse msg;
  msg.mutable_cancel()->set_lease_id(e.lease().lease_id);
  msg.mutable_cancel()->set_reason(reason);
  out.messages.emplace_back(s->second, std::move(msg));
}

absl::StatusOr<Scheduler::Entry*> Scheduler::LiveLeaseLocked(
    const std::string& lease_id, Outbox& out) {
  auto l = leases_.find(lease_id);
  if (l != leases_.end()) {
    auto it = active_.find(l->second);
    if (it != active_.end() && it->second.lease().lease_id == lease_id) {
      Entry& e = it->second;
      if (clock_.Now() < e.lease().lease_deadline) return &e;
      const std::string why =
          e.lease().lapse_why.empty() ? "lease expired" : e.lease().lapse_why;
      metrics_.LeaseExpired();
      RETURN_IF_ERROR(RetryOrFailLocked(e, AbandonedResult(e, why), why, out));
      DispatchLocked(out);
    }
  }
  return absl::FailedPreconditionError(
      absl::StrCat("lease ", Abbreviate(lease_id), " is not live"));
}

absl::StatusOr<Scheduler::Entry*> Scheduler::ReportedLeaseLocked(
    const std::string& lease_id, Outbox& out) {
  absl::StatusOr<Entry*> e = LiveLeaseLocked(lease_id, out);
  if (!e.ok()) metrics_.ReportRefused();
  return e;
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
    (*e)->lease().lease_deadline = clock_.Now() + options_.lease_ttl;
    (*e)->lease().lapse_why.clear();
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

}  // namespace server
