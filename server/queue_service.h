#ifndef CRUCIBLE_SERVER_QUEUE_SERVICE_H_
#define CRUCIBLE_SERVER_QUEUE_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "crucible/v1/queue_service.grpc.pb.h"
#include "server/blocking_pool.h"
#include "server/scheduler/scheduler.h"

namespace server {

// gRPC adapter of QueueService: one bidi Connect stream per worker, mapped
// onto a Scheduler worker session. Each worker message is applied in the
// read reaction (the scheduler queues its writes and never waits for the
// disk), and the next one is read after that, so a worker's reports are
// applied in order. Thread-safe.
// `scheduler` and `pool` must outlive it and the server serving it.
class QueueService final : public crucible::v1::QueueService::CallbackService {
 public:
  QueueService(Scheduler& scheduler, BlockingPool& pool)
      : scheduler_(scheduler), pool_(pool) {}

  grpc::ServerBidiReactor<crucible::v1::ConnectRequest,
                          crucible::v1::ConnectResponse>*
  Connect(grpc::CallbackServerContext* ctx) override;

 private:
  Scheduler& scheduler_;
  BlockingPool& pool_;
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_QUEUE_SERVICE_H_
