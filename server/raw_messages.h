#ifndef CRUCIBLE_SERVER_RAW_MESSAGES_H_
#define CRUCIBLE_SERVER_RAW_MESSAGES_H_

#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"

namespace server {

// TaskService takes its requests as bytes and parses them itself, because
// gRPC C++ answers a request it cannot parse with a code of its own
// (UNIMPLEMENTED from the callback API, INTERNAL elsewhere) and no field:
// proto3 string fields must be UTF-8, so one bad byte fails the parse
// before any handler runs.

// Parses `raw` into `message`. INVALID_ARGUMENT naming the field (e.g.
// "spec.env[value]: not valid UTF-8") when a string field is not UTF-8;
// INVALID_ARGUMENT "request is not a valid <type>" for other malformed bytes.
absl::Status ParseRequest(const grpc::ByteBuffer& raw,
                          google::protobuf::Message& message);

// `message`, serialized for a raw reply or stream write.
grpc::ByteBuffer SerializeMessage(const google::protobuf::Message& message);

// A stream reactor that finishes at once with `status` (a request that
// could not be parsed or validated). Owns itself.
grpc::ServerWriteReactor<grpc::ByteBuffer>* FailedStream(grpc::Status status);

}  // namespace server

#endif  // CRUCIBLE_SERVER_RAW_MESSAGES_H_
