#ifndef CRUCIBLE_SERVER_QUEUE_SERVICE_H_
#define CRUCIBLE_SERVER_QUEUE_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "common/tls.h"
#include "crucible/v1/queue_service.grpc.pb.h"
#include "server/blocking_pool.h"
#include "server/scheduler/fleet_admission.h"
#include "server/scheduler/scheduler.h"

namespace server {

// gRPC adapter of QueueService: one bidi Connect stream per worker, mapped
// onto a Scheduler worker session. Each worker message is applied in the
// read reaction (the scheduler queues its writes and never waits for the
// disk), and the next one is read after that, so a worker's reports are
// applied in order. What each worker says its executors accept goes to
// `fleet` (if not null), for admission at CreateTask. If `workers` is not
// null, a stream opens only for a peer whose client certificate it admits
// (UNAUTHENTICATED without one, PERMISSION_DENIED for another identity).
// Thread-safe. `scheduler`, `pool`, `fleet` and `workers` must outlive it
// and the server serving it.
class QueueService final : public crucible::v1::QueueService::CallbackService {
 public:
  QueueService(Scheduler& scheduler, BlockingPool& pool,
               FleetAdmission* fleet = nullptr,
               const common::PeerAuthorizer* workers = nullptr)
      : scheduler_(scheduler), pool_(pool), fleet_(fleet), workers_(workers) {}

  grpc::ServerBidiReactor<crucible::v1::ConnectRequest,
                          crucible::v1::ConnectResponse>*
  Connect(grpc::CallbackServerContext* ctx) override;

 private:
  Scheduler& scheduler_;
  BlockingPool& pool_;
  FleetAdmission* const fleet_;
  const common::PeerAuthorizer* const workers_;
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_QUEUE_SERVICE_H_
