#ifndef CRUCIBLE_COMMON_GRPC_SERVER_H_
#define CRUCIBLE_COMMON_GRPC_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/server_reflection.h"

namespace common {

struct GrpcServerOptions {
  // host:port to listen on; port 0 picks a free port (see GrpcServer::port).
  std::string listen_address = "127.0.0.1:0";
  // If set, the bound port is written to this file once the server serves
  // (written to a temp file, then renamed), so scripts can find it.
  std::string port_file;
  // Fully qualified names of the services, reported by the health service
  // next to the overall "" entry.
  std::vector<std::string> health_service_names;
  // Largest request message accepted.
  int max_receive_message_bytes = 64 << 20;
};

// A started gRPC server with the standard health service
// (grpc.health.v1.Health) and server reflection (grpc.reflection.v1 and
// v1alpha) whose descriptors keep the comments of proto/. Thread-safe.
class GrpcServer {
 public:
  // Builds and starts a server for `services` (not owned; they must outlive
  // the server). UNAVAILABLE if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(
      const GrpcServerOptions& options, const std::vector<grpc::Service*>& services);

  ~GrpcServer();

  // The bound port.
  int port() const { return port_; }
  // Sets SERVING / NOT_SERVING for "" and every health_service_name.
  void SetServing(bool serving);
  // Stops accepting calls, waits up to `grace` for running calls, then
  // cancels the rest. Health reports NOT_SERVING from the first moment.
  void Shutdown(absl::Duration grace);
  grpc::Server* server() { return server_.get(); }

 private:
  GrpcServer(std::unique_ptr<ServerReflection> reflection,
             std::unique_ptr<grpc::Server> server, int port,
             std::vector<std::string> names);
  // Declared first so that it outlives the server that calls it.
  const std::unique_ptr<ServerReflection> reflection_;
  std::unique_ptr<grpc::Server> server_;
  const int port_;
  const std::vector<std::string> health_names_;
};

}  // namespace common

#endif  // CRUCIBLE_COMMON_GRPC_SERVER_H_
