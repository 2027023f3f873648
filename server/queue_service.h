#ifndef CRUCIBLE_SERVER_QUEUE_SERVICE_H_
#define CRUCIBLE_SERVER_QUEUE_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "crucible/v1/queue_service.grpc.pb.h"
#include "server/scheduler/scheduler.h"

namespace server {

// gRPC adapter of QueueService: one bidi Connect stream per worker, mapped
// onto a Scheduler worker session. Thread-safe. `scheduler` must outlive it.
//
// First version: each worker message is handled inline in OnReadDone, so
// reports that change state wait for their store write there; the stream
// reads the next message only after that.
class QueueService final : public crucible::v1::QueueService::CallbackService {
 public:
  explicit QueueService(Scheduler& scheduler) : scheduler_(scheduler) {}

  grpc::ServerBidiReactor<crucible::v1::ConnectRequest,
                          crucible::v1::ConnectResponse>*
  Connect(grpc::CallbackServerContext* ctx) override;

 private:
  Scheduler& scheduler_;
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_QUEUE_SERVICE_H_
