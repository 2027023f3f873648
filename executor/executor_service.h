#ifndef CRUCIBLE_EXECUTOR_EXECUTOR_SERVICE_H_
#define CRUCIBLE_EXECUTOR_EXECUTOR_SERVICE_H_

#include "common/tls.h"
#include "crucible/v1/executor_service.grpc.pb.h"
#include "executor/runner/runner.h"

namespace executor {

// gRPC adapter of runner::Runner (callback API). Each Run call gets its own
// thread, owned by the call's reactor and joined when the call is done, so
// the blocking run never executes inside a reaction. Cancelling the call
// cancels the run. If `clients` is not null, every call comes from a peer
// whose client certificate it admits (UNAUTHENTICATED without one,
// PERMISSION_DENIED for another identity). Thread-safe; `runner` and
// `clients` must outlive it.
class ExecutorService final
    : public crucible::v1::ExecutorService::CallbackService {
 public:
  explicit ExecutorService(runner::Runner& runner,
                           const common::PeerAuthorizer* clients = nullptr)
      : runner_(runner), clients_(clients) {}

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
  // OK, or why the caller of `context` is refused.
  grpc::Status Admit(const grpc::CallbackServerContext& context) const;

  runner::Runner& runner_;
  const common::PeerAuthorizer* const clients_;
};

}  // namespace executor

#endif  // CRUCIBLE_EXECUTOR_EXECUTOR_SERVICE_H_
