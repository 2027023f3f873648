#ifndef CRUCIBLE_SERVER_STANDBY_H_
#define CRUCIBLE_SERVER_STANDBY_H_

#include <grpcpp/generic/async_generic_service.h>

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace server {

// What a standby server (one that does not hold the leader lease of the
// PostgreSQL store) answers to every call but health and reflection:
// UNAVAILABLE, naming the leader, so that clients and workers try again
// (elsewhere, or here once this server leads). Thread-safe.
class StandbyService final : public grpc::CallbackGenericService {
 public:
  // The current leader's server id; "" if none holds the lease.
  void SetLeader(std::string leader);
  std::string Message();

 private:
  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override;

  absl::Mutex mu_;
  std::string leader_ ABSL_GUARDED_BY(mu_);
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_STANDBY_H_
