#ifndef CRUCIBLE_WORKER_PROTOCOL_H_
#define CRUCIBLE_WORKER_PROTOCOL_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "crucible/v1/executor_service.pb.h"
#include "crucible/v1/queue_service.pb.h"

namespace worker {

// Pure functions that build the worker's messages of the QueueService
// protocol and decide how a run's outcome is reported. No gRPC, no state.

// The hello publishes `executors`, what each executor the worker knows
// accepts (ExecutorFleet::Accepts); later changes go in MakeExecutorsUpdate.
crucible::v1::ConnectRequest MakeHello(
    const std::string& worker_id, int credits,
    const std::vector<crucible::v1::ExecutorAccepts>& executors);
crucible::v1::ConnectRequest MakeExecutorsUpdate(
    const std::vector<crucible::v1::ExecutorAccepts>& executors);
crucible::v1::ConnectRequest MakeCredit(int credits);
crucible::v1::ConnectRequest MakeHeartbeat(
    const std::vector<std::string>& lease_ids);
// The first heartbeat of a new stream: every lease still held, with its
// task and attempt, so that a restarted server can take them back (and
// their ids in lease_ids, for a server that does not know held_leases).
crucible::v1::ConnectRequest MakeResumeHeartbeat(
    const std::vector<crucible::v1::HeldLease>& held);
// What a resume heartbeat says about the lease of `assignment`.
crucible::v1::HeldLease HeldLeaseOf(const crucible::v1::Assignment& assignment);

// The executor request for an assignment: run_id is the lease id.
crucible::v1::RunRequest MakeRunRequest(
    const crucible::v1::Assignment& assignment);

// How a log line names an assignment: "lease <id> (task <id> trace=<id>)".
std::string LeaseTag(const crucible::v1::Assignment& assignment);

// The report to relay for one executor event of `lease_id`: started ->
// started, output -> output, artifact -> artifact. Returns nullopt for
// `finished` (it becomes the completion, see MakeCompletion) and for an empty
// event.
std::optional<crucible::v1::ConnectRequest> RelayRunEvent(
    const std::string& lease_id, const crucible::v1::RunResponse& event);

// Why the worker itself stopped a run, if it did.
enum class StopCause {
  kNone,          // nobody stopped it
  kServerCancel,  // the server sent cancel{lease_id}
  kShutdown,      // the worker is stopping or lost its server stream
};

// The completion of `lease_id` once the executor's Run ended with
// `run_status`, having sent `result` (its `finished`, if any):
// - a result always wins: completion{result};
// - the server cancelled and the call ended without a result (we cancelled
//   the call ourselves): completion{result{reason CANCELLED}}, since the
//   container was killed on the client's request;
// - the worker stopped: completion{error{UNAVAILABLE}} so the server retries;
// - OK without a result: completion{error{INTERNAL}} (retryable);
// - otherwise completion{error{code, message}} with the executor's code.
crucible::v1::ConnectRequest MakeCompletion(
    const std::string& lease_id, const absl::Status& run_status,
    const std::optional<crucible::v1::TaskResult>& result, StopCause cause,
    const std::string& cancel_reason);

}  // namespace worker

#endif  // CRUCIBLE_WORKER_PROTOCOL_H_
