#ifndef CRUCIBLE_COMMON_PROTO_TIME_H_
#define CRUCIBLE_COMMON_PROTO_TIME_H_

#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace common {

// Conversions between absl time types and the protobuf well-known types.
google::protobuf::Timestamp ToProtoTime(absl::Time t);
absl::Time FromProtoTime(const google::protobuf::Timestamp& t);
google::protobuf::Duration ToProtoDuration(absl::Duration d);
absl::Duration FromProtoDuration(const google::protobuf::Duration& d);

}  // namespace common

#endif  // CRUCIBLE_COMMON_PROTO_TIME_H_
