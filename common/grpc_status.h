#ifndef CRUCIBLE_COMMON_GRPC_STATUS_H_
#define CRUCIBLE_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"

namespace common {

// absl::StatusCode and grpc::StatusCode both follow google.rpc.Code, so the
// casts are exact.
inline grpc::Status ToGrpcStatus(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      std::string(s.message()));
}

inline absl::Status FromGrpcStatus(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      s.error_message());
}

}  // namespace common

#endif  // CRUCIBLE_COMMON_GRPC_STATUS_H_
