#ifndef CRUCIBLE_SERVER_TASK_SERVICE_H_
#define CRUCIBLE_SERVER_TASK_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "crucible/v1/task_service.grpc.pb.h"
#include "server/auth/authenticator.h"
#include "server/blocking_pool.h"
#include "server/callback/callback_url.h"
#include "server/scheduler/scheduler.h"

namespace server {

struct TaskServiceOptions {
  // Events a WatchTask stream may hold (queued or being written) for a slow
  // reader; past it the stream ends with RESOURCE_EXHAUSTED (resume with a
  // new WatchTask, which starts from the current state).
  size_t max_watch_backlog = 1024;
  // Live output a StreamTaskOutput follower may fall behind by; past it the
  // stream drops it and reads it again from the store.
  int64_t max_follow_live_bytes = int64_t{4} << 20;
  // The fleet the scheduler admits specs against (SchedulerOptions::
  // admission), if any. Until `admission_wait_until`, a CreateTask that
  // finds no executor known waits for one (workers reconnect within seconds
  // of a server start) instead of being refused at once as UNAVAILABLE.
  const FleetAdmission* fleet = nullptr;
  absl::Time admission_wait_until = absl::InfinitePast();
  // Hosts a spec's callback_url may name; null: none (callbacks refused).
  const CallbackHosts* callback_hosts = nullptr;
};

// Every TaskService method takes its request as bytes and parses it itself
// (see raw_messages.h), so that a malformed request is INVALID_ARGUMENT.
using RawTaskServiceBase =
    crucible::v1::TaskService::WithRawCallbackMethod_CreateTask<
        crucible::v1::TaskService::WithRawCallbackMethod_BatchCreateTasks<
            crucible::v1::TaskService::WithRawCallbackMethod_GetTask<
                crucible::v1::TaskService::WithRawCallbackMethod_ListTasks<
                    crucible::v1::TaskService::WithRawCallbackMethod_CancelTask<
                        crucible::v1::TaskService::
                            WithRawCallbackMethod_WatchTask<
                                crucible::v1::TaskService::
                                    WithRawCallbackMethod_StreamTaskOutput<
                                        crucible::v1::TaskService::
                                            WithRawCallbackMethod_GetArtifact<
                                                crucible::v1::TaskService::
                                                    Service>>>>>>>>;

// gRPC adapter of the public TaskService over a Scheduler: authenticates the
// caller (its tenant and role), converts protos and statuses, and writes the
// audit line of each mutating call. Calls into the scheduler (which may wait
// for a store write) run on `pool`, never in a reaction. Thread-safe.
// `scheduler`, `pool` and `authenticator` must outlive it and the server
// serving it.
class TaskService final : public RawTaskServiceBase {
 public:
  TaskService(Scheduler& scheduler, BlockingPool& pool,
              const auth::Authenticator& authenticator,
              TaskServiceOptions options = {})
      : scheduler_(scheduler),
        pool_(pool),
        authenticator_(authenticator),
        options_(options) {}

  grpc::ServerUnaryReactor* CreateTask(grpc::CallbackServerContext* ctx,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* BatchCreateTasks(
      grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
      grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetTask(grpc::CallbackServerContext* ctx,
                                    const grpc::ByteBuffer* request,
                                    grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* ListTasks(grpc::CallbackServerContext* ctx,
                                      const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* CancelTask(grpc::CallbackServerContext* ctx,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* WatchTask(
      grpc::CallbackServerContext* ctx,
      const grpc::ByteBuffer* request) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* StreamTaskOutput(
      grpc::CallbackServerContext* ctx,
      const grpc::ByteBuffer* request) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* GetArtifact(
      grpc::CallbackServerContext* ctx,
      const grpc::ByteBuffer* request) override;

 private:
  Scheduler& scheduler_;
  BlockingPool& pool_;
  const auth::Authenticator& authenticator_;
  const TaskServiceOptions options_;
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_TASK_SERVICE_H_
