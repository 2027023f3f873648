#ifndef CRUCIBLE_CLI_CONNECTION_H_
#define CRUCIBLE_CLI_CONNECTION_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/args.h"

namespace cli {

// The channel to one server and the per-call settings every call shares
// (bearer token, deadline). Thread-safe.
class Connection {
 public:
  // Deadline of every unary call.
  static constexpr absl::Duration kUnaryDeadline = absl::Seconds(10);

  // Plaintext unless args.tls; with a CA file, trusts only its roots; with
  // a client certificate and key, presents them. INVALID_ARGUMENT if a file
  // cannot be read.
  static absl::StatusOr<Connection> Open(const ConnectionArgs& args);
  // For tests: a given channel, no token.
  explicit Connection(std::shared_ptr<grpc::Channel> channel,
                      std::string token = "")
      : channel_(std::move(channel)), token_(std::move(token)) {}

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  // A context for a unary call: deadline kUnaryDeadline, the token if any.
  std::unique_ptr<grpc::ClientContext> UnaryContext() const;
  // A context for a stream that may last as long as a task: no deadline.
  std::unique_ptr<grpc::ClientContext> StreamContext() const;

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::string token_;
};

}  // namespace cli

#endif  // CRUCIBLE_CLI_CONNECTION_H_
