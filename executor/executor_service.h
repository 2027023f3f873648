#ifndef CRUCIBLE_EXECUTOR_EXECUTOR_SERVICE_H_
#define CRUCIBLE_EXECUTOR_EXECUTOR_SERVICE_H_

#include "crucible/v1/executor_service.grpc.pb.h"
#include "executor/runner/runner.h"

namespace executor {

// gRPC adapter of runner::Runner (callback API). Each Run call gets its own
// thread, owned by the call's reactor and joined when the call is done, so
// the blocking run never executes inside a reaction. Cancelling the call
// cancels the run. Thread-safe.
class ExecutorService final
    : public crucible::v1::ExecutorService::CallbackService {
 public:
  explicit ExecutorService(runner::Runner& runner) : runner_(runner) {}

  grpc::ServerWriteReactor<crucible::v1::RunResponse>* Run(
      grpc::CallbackServerContext* context,
      const crucible::v1::RunRequest* request) override;
  grpc::ServerUnaryReactor* Cancel(
      grpc::CallbackServerContext* context,
      const crucible::v1::CancelRequest* request,
      crucible::v1::CancelResponse* response) override;
  grpc::ServerUnaryReactor* Describe(
      grpc::CallbackServerContext* context,
      const crucible::v1::DescribeRequest* request,
      crucible::v1::DescribeResponse* response) override;

 private:
  runner::Runner& runner_;
};

}  // namespace executor

#endif  // CRUCIBLE_EXECUTOR_EXECUTOR_SERVICE_H_
