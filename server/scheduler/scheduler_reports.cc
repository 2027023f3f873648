// The reports of the QueueService protocol (started, output, artifacts,
// completion)
// and the timer that ends attempts whose lease or run deadline passed.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "common/retry.h"
#include "common/status_macros.h"
#include "common/trace.h"
#include "glog/logging.h"
#include "server/scheduler/scheduler.h"

namespace server {

using crucible::v1::ArtifactChunk;
using crucible::v1::ArtifactInfo;
using crucible::v1::OutputChunk;
using crucible::v1::Task;
using crucible::v1::TaskResult;

void Scheduler::SetRunDeadlineLocked(Entry& e, absl::Time from,
                                     std::optional<absl::Duration> reported) {
  const crucible::v1::TaskSpec& spec = e.task().spec();
  std::optional<absl::Duration> timeout = reported;
  // A worker's garbage must not end the attempt at once.
  if (timeout.has_value() && *timeout <= absl::ZeroDuration()) timeout.reset();
  if (!timeout.has_value() && spec.has_timeout()) {
    timeout = common::FromProtoDuration(spec.timeout());
  }
  e.lease().run_deadline = timeout.has_value()
                               ? from + *timeout + options_.timeout_grace
                               : absl::InfiniteFuture();
}

absl::Status Scheduler::ReportStarted(const std::string& lease_id,
                                      absl::Time start_time,
                                      std::optional<absl::Duration> timeout) {
  Op op(this);
  ASSIGN_OR_RETURN(Entry * e, ReportedLeaseLocked(lease_id, op.out));
  if (e->task().state() == crucible::v1::TASK_STATE_RUNNING)
    return absl::OkStatus();
  RETURN_IF_ERROR(CommitLocked(
      *e, crucible::v1::TASK_STATE_RUNNING, [](Task&) {}, "container started",
      /*ends_attempt=*/false, op.out));
  e->lease().start_time =
      start_time == absl::InfinitePast() ? clock_.Now() : start_time;
  if (e->lease().leased_at != absl::InfinitePast()) {
    metrics_.Started(clock_.Now() - e->lease().leased_at);
  }
  // Counted on our clock from the report, so a skewed worker clock cannot
  // shorten it.
  SetRunDeadlineLocked(*e, clock_.Now(), timeout);
  return absl::OkStatus();
}

absl::Status Scheduler::ReportOutput(const std::string& lease_id,
                                     OutputChunk chunk) {
  Op op(this);
  ASSIGN_OR_RETURN(Entry * e, ReportedLeaseLocked(lease_id, op.out));
  if (chunk.offset() < 0) {
    return absl::InvalidArgumentError(
        "output.chunk.offset: must not be negative");
  }
  chunk.set_attempt(e->task().attempt());
  int64_t cap = e->task().spec().max_output_bytes() > 0
                    ? std::min(e->task().spec().max_output_bytes(),
                               options_.max_output_bytes)
                    : options_.max_output_bytes;
  // A replayed report (same or older offsets) adds nothing.
  int64_t end = chunk.offset() + static_cast<int64_t>(chunk.data().size());
  if (end <= e->lease().output_end) return absl::OkStatus();
  if (chunk.offset() < e->lease().output_end) {
    chunk.set_data(chunk.data().substr(e->lease().output_end - chunk.offset()));
    chunk.set_offset(e->lease().output_end);
  }
  e->lease().output_end = end;
  int64_t room = std::max<int64_t>(0, cap - e->lease().output_bytes);
  if (room < static_cast<int64_t>(chunk.data().size())) {
    e->lease().output_truncated = true;
    chunk.mutable_data()->resize(room);
  }
  if (chunk.data().empty()) return absl::OkStatus();
  e->lease().output_bytes += chunk.data().size();
  outbox_.Submit(TaskWrite::Output(e->task().id(), chunk));
  op.out.outputs.emplace_back(e->task().id(), std::move(chunk));
  return absl::OkStatus();
}

absl::Status Scheduler::ReportArtifact(const std::string& lease_id,
                                       ArtifactChunk chunk) {
  Op op(this);
  ASSIGN_OR_RETURN(Entry * e, ReportedLeaseLocked(lease_id, op.out));
  RETURN_IF_ERROR(ValidateReportedArtifactPath(e->task().spec(), chunk.path()));
  if (chunk.offset() < 0) {
    return absl::InvalidArgumentError(
        "artifact.chunk.offset: must not be negative");
  }
  Entry::Lease& lease = e->lease();
  auto [it, fresh] = lease.artifacts.try_emplace(chunk.path());
  Entry::Lease::ArtifactReceipt& got = it->second;
  const int64_t end =
      chunk.offset() + static_cast<int64_t>(chunk.data().size());
  // A replayed report (same or older offsets) adds nothing; an empty file
  // is one empty chunk.
  if (got.broken || (!fresh && end <= got.bytes)) return absl::OkStatus();
  const std::string tag = common::TaskTag(e->task().id(), e->task().trace_id());
  if (chunk.offset() > got.bytes) {
    // A report lost on the way (a stream that broke): the artifact cannot
    // be whole, and the completion will say so.
    LOG(WARNING) << tag << ": artifact " << chunk.path() << " skips from byte "
                 << got.bytes << " to " << chunk.offset() << "; not kept";
    got.broken = true;
    return absl::OkStatus();
  }
  chunk.mutable_data()->erase(0, got.bytes - chunk.offset());
  chunk.set_offset(got.bytes);
  const int64_t cap = e->task().spec().max_artifact_bytes() > 0
                          ? std::min(e->task().spec().max_artifact_bytes(),
                                     options_.max_artifact_bytes)
                          : options_.max_artifact_bytes;
  if (lease.artifact_bytes + static_cast<int64_t>(chunk.data().size()) > cap) {
    LOG(WARNING) << tag << ": artifact " << chunk.path()
                 << " goes past the attempt's " << cap
                 << " artifact bytes; not kept";
    got.broken = true;
    return absl::OkStatus();
  }
  got.sha256.Update(chunk.data());
  got.bytes = end;
  lease.artifact_bytes += chunk.data().size();
  outbox_.Submit(TaskWrite::ArtifactChunk(e->task().id(), e->task().attempt(),
                                          std::move(chunk)));
  return absl::OkStatus();
}

void Scheduler::KeepArtifactsLocked(Entry& e, TaskResult& result) {
  Entry::Lease& lease = e.lease();
  for (ArtifactInfo& info : *result.mutable_artifacts()) {
    if (info.status() != crucible::v1::ARTIFACT_STATUS_COLLECTED) continue;
    int64_t bytes = 0;
    std::string sha256 = common::Sha256Hex("");
    bool broken =
        !ValidateReportedArtifactPath(e.task().spec(), info.path()).ok();
    if (auto it = lease.artifacts.find(info.path());
        it != lease.artifacts.end()) {
      bytes = it->second.bytes;
      sha256 = it->second.sha256.HexDigest();
      broken = broken || it->second.broken;
      lease.artifacts.erase(it);  // listed twice: the second is INCOMPLETE
    } else if (info.size_bytes() != 0) {
      broken = true;
    }
    if (broken || bytes != info.size_bytes() || sha256 != info.sha256()) {
      LOG(WARNING) << common::TaskTag(e.task().id(), e.task().trace_id())
                   << ": artifact " << info.path() << " incomplete: " << bytes
                   << " bytes (SHA-256 " << sha256 << ") received of "
                   << info.size_bytes() << " (SHA-256 " << info.sha256() << ")";
      info.set_status(crucible::v1::ARTIFACT_STATUS_INCOMPLETE);
      info.clear_sha256();
      continue;
    }
    outbox_.Submit(
        TaskWrite::Artifact(e.task().id(), e.task().attempt(), info));
  }
  lease.artifacts.clear();
}

absl::Status Scheduler::ReportCompletion(
    const crucible::v1::AttemptCompletion& completion) {
  Op op(this);
  ASSIGN_OR_RETURN(Entry * e,
                   ReportedLeaseLocked(completion.lease_id(), op.out));
  absl::Time now = clock_.Now();
  TaskResult result;
  if (completion.has_result()) {
    result = completion.result();
    KeepArtifactsLocked(*e, result);
  }
  if (!result.has_start_time() &&
      e->lease().start_time != absl::InfinitePast()) {
    *result.mutable_start_time() = common::ToProtoTime(e->lease().start_time);
  }
  if (!result.has_finish_time()) {
    *result.mutable_finish_time() = common::ToProtoTime(now);
  }
  if (e->lease().output_truncated) result.set_output_truncated(true);

  if (completion.has_error()) {
    auto code = static_cast<absl::StatusCode>(completion.error().code());
    std::string msg = absl::StrCat(absl::StatusCodeToString(code), ": ",
                                   completion.error().message());
    const common::AttemptFailure failure = common::ClassifyAttemptFailure(code);
    if (failure != common::AttemptFailure::kFinal) {
      result.set_reason(crucible::v1::TERMINATION_REASON_INFRASTRUCTURE);
      result.set_error_message(msg);
      RETURN_IF_ERROR(RetryOrFailLocked(
          *e, std::move(result), msg, op.out,
          failure == common::AttemptFailure::kSystem ? Blame::kSystem
                                                     : Blame::kTask));
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
    return absl::InvalidArgumentError("completion: needs a result or an error");
  }
  switch (result.reason()) {
    case crucible::v1::TERMINATION_REASON_EXITED:
      if (result.exit_code() == 0) {
        RETURN_IF_ERROR(FinishLocked(*e, crucible::v1::TASK_STATE_SUCCEEDED,
                                     std::move(result), "exited 0", op.out));
      } else if (e->task().spec().retry_policy().retry_on_nonzero_exit()) {
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
  if (e.lease().output_truncated) result.set_output_truncated(true);
  return FinishLocked(e, crucible::v1::TASK_STATE_TIMED_OUT, std::move(result),
                      "timed out (server)", out);
}

int Scheduler::ExpireLeases() {
  Op op(this);
  absl::Time now = clock_.Now();
  // Expired leases, with how the log names their task.
  std::vector<std::pair<std::string, std::string>> expired;
  std::vector<std::string> timed_out;
  for (const auto& [lease_id, task_id] : leases_) {
    const Entry& e = active_.at(task_id);
    if (e.lease().run_deadline <= now) {
      timed_out.push_back(task_id);
    } else if (e.lease().lease_deadline <= now) {
      expired.emplace_back(lease_id,
                           common::TaskTag(task_id, e.task().trace_id()));
    }
  }
  for (const std::string& task_id : timed_out) {
    Entry& e = active_.at(task_id);
    const std::string tag = common::TaskTag(task_id, e.task().trace_id());
    absl::Status s = TimeOutLocked(e, op.out);
    if (!s.ok()) LOG(WARNING) << "cannot time out " << tag << ": " << s;
  }
  for (const auto& [lease_id, tag] : expired) {
    // LiveLeaseLocked expires a lease past its deadline and says so.
    absl::StatusOr<Entry*> e = LiveLeaseLocked(lease_id, op.out);
    if (e.ok()) continue;
    LOG(WARNING) << "lease " << lease_id << " of " << tag << " expired";
  }
  const int unclaimed = LapseUnclaimedLocked(now, op.out);
  DispatchLocked(op.out);
  return static_cast<int>(expired.size() + timed_out.size()) + unclaimed;
}

}  // namespace server
