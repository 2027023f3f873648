#include "worker/protocol.h"

#include "absl/strings/str_cat.h"
#include "common/trace.h"

namespace worker {

using crucible::v1::ConnectRequest;

ConnectRequest MakeHello(
    const std::string& worker_id, int credits,
    const std::vector<crucible::v1::ExecutorAccepts>& executors) {
  ConnectRequest req;
  crucible::v1::WorkerHello& hello = *req.mutable_hello();
  hello.set_worker_id(worker_id);
  hello.set_credits(credits);
  hello.set_accepts_assignment_batches(true);
  hello.set_publishes_executors(true);
  hello.mutable_executors()->Add(executors.begin(), executors.end());
  return req;
}

ConnectRequest MakeExecutorsUpdate(
    const std::vector<crucible::v1::ExecutorAccepts>& executors) {
  ConnectRequest req;
  req.mutable_executors()->mutable_executors()->Add(executors.begin(),
                                                    executors.end());
  return req;
}

ConnectRequest MakeCredit(int credits) {
  ConnectRequest req;
  req.mutable_credit()->set_credits(credits);
  return req;
}

ConnectRequest MakeHeartbeat(const std::vector<std::string>& lease_ids) {
  ConnectRequest req;
  for (const std::string& id : lease_ids)
    req.mutable_heartbeat()->add_lease_ids(id);
  return req;
}

ConnectRequest MakeResumeHeartbeat(
    const std::vector<crucible::v1::HeldLease>& held) {
  ConnectRequest req;
  req.mutable_heartbeat()->mutable_held_leases()->Add(held.begin(), held.end());
  // The ids alone too, for a server that does not know held_leases.
  for (const crucible::v1::HeldLease& h : held)
    req.mutable_heartbeat()->add_lease_ids(h.lease_id());
  return req;
}

crucible::v1::HeldLease HeldLeaseOf(
    const crucible::v1::Assignment& assignment) {
  crucible::v1::HeldLease held;
  held.set_lease_id(assignment.lease_id());
  held.set_task_id(assignment.task().id());
  held.set_attempt(assignment.attempt());
  return held;
}

crucible::v1::RunRequest MakeRunRequest(
    const crucible::v1::Assignment& assignment) {
  crucible::v1::RunRequest req;
  req.set_run_id(assignment.lease_id());
  req.set_task_id(assignment.task().id());
  req.set_attempt(assignment.attempt());
  *req.mutable_spec() = assignment.task().spec();
  req.set_trace_id(assignment.task().trace_id());
  return req;
}

std::string LeaseTag(const crucible::v1::Assignment& assignment) {
  return absl::StrCat(
      "lease ", assignment.lease_id(), " (",
      common::TaskTag(assignment.task().id(), assignment.task().trace_id()),
      ")");
}

std::optional<ConnectRequest> RelayRunEvent(
    const std::string& lease_id, const crucible::v1::RunResponse& event) {
  ConnectRequest req;
  switch (event.event_case()) {
    case crucible::v1::RunResponse::kStarted:
      req.mutable_started()->set_lease_id(lease_id);
      *req.mutable_started()->mutable_start_time() =
          event.started().start_time();
      if (event.started().has_limits()) {
        *req.mutable_started()->mutable_limits() = event.started().limits();
      }
      return req;
    case crucible::v1::RunResponse::kOutput:
      req.mutable_output()->set_lease_id(lease_id);
      *req.mutable_output()->mutable_chunk() = event.output();
      return req;
    case crucible::v1::RunResponse::kArtifact:
      req.mutable_artifact()->set_lease_id(lease_id);
      *req.mutable_artifact()->mutable_chunk() = event.artifact();
      return req;
    default:
      return std::nullopt;
  }
}

ConnectRequest MakeCompletion(
    const std::string& lease_id, const absl::Status& run_status,
    const std::optional<crucible::v1::TaskResult>& result, StopCause cause,
    const std::string& cancel_reason) {
  ConnectRequest req;
  crucible::v1::AttemptCompletion* c = req.mutable_completion();
  c->set_lease_id(lease_id);
  if (result.has_value()) {
    *c->mutable_result() = *result;
    return req;
  }
  if (cause == StopCause::kServerCancel && !run_status.ok()) {
    c->mutable_result()->set_reason(crucible::v1::TERMINATION_REASON_CANCELLED);
    c->mutable_result()->set_error_message(
        cancel_reason.empty() ? "cancelled"
                              : absl::StrCat("cancelled: ", cancel_reason));
    return req;
  }
  if (cause == StopCause::kShutdown) {
    c->mutable_error()->set_code(
        static_cast<int>(absl::StatusCode::kUnavailable));
    c->mutable_error()->set_message("worker stopped the run (shutting down)");
    return req;
  }
  if (run_status.ok()) {
    c->mutable_error()->set_code(static_cast<int>(absl::StatusCode::kInternal));
    c->mutable_error()->set_message("executor ended the run without a result");
    return req;
  }
  c->mutable_error()->set_code(static_cast<int>(run_status.code()));
  c->mutable_error()->set_message(std::string(run_status.message()));
  return req;
}

}  // namespace worker
