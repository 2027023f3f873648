#ifndef CRUCIBLE_COMMON_GRPC_SERVER_H_
#define CRUCIBLE_COMMON_GRPC_SERVER_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/server_reflection.h"

namespace common {

// The health service name that means "the process is alive and its gRPC
// server answers": SERVING from the start until the process begins to stop,
// whatever its dependencies do. For liveness probes. "" and the names in
// GrpcServerOptions::health_service_names mean readiness: "can do its job
// now".
inline constexpr char kLivenessService[] = "liveness";

// Clients may send keepalive pings this often, with or without calls in
// flight, without the server answering GOAWAY ENHANCE_YOUR_CALM; clients
// must not ping more often (the worker refuses a shorter --keepalive_time).
inline constexpr absl::Duration kMinClientPingInterval = absl::Seconds(5);

// The trailing metadata of a grpc.health.v1.Health/Check answer that says
// NOT_SERVING: why, in words (printable ASCII), when the process said why
// (GrpcServer::SetServing, SetServiceServing, BeginStop). The health
// protocol's response has no field for it.
inline constexpr char kHealthReasonKey[] = "crucible-health-reason";

struct GrpcServerOptions {
  // host:port to listen on; port 0 picks a free port (see GrpcServer::port).
  std::string listen_address = "127.0.0.1:0";
  // If set, the bound port is written to this file once the server serves
  // (written to a temp file, then renamed), so scripts can find it.
  std::string port_file;
  // Fully qualified names of the services, reported by the health service
  // next to the overall "" entry.
  std::vector<std::string> health_service_names;
  // Whether readiness ("" and health_service_names) starts SERVING; false:
  // NOT_SERVING until SetServing(true). kLivenessService always starts
  // SERVING.
  bool initially_ready = true;
  // Why readiness is NOT_SERVING at the start, when !initially_ready.
  std::string not_ready_reason = "starting";
  // Largest request message accepted.
  int max_receive_message_bytes = 64 << 20;
  // Transport security of the listening port (common::MakeServerCredentials);
  // null: plaintext, for tests that start a server in-process.
  std::shared_ptr<grpc::ServerCredentials> credentials;
  // If set, host:port of a second, plaintext port that serves only the
  // health service, with the same statuses: for probes that speak no TLS
  // (the kubelet's gRPC probes). It reveals nothing but those statuses.
  std::string health_listen_address;
  // If set (not owned), answers every call of a method no service has
  // (a standby server's refusals, server/standby.h).
  grpc::CallbackGenericService* generic_service = nullptr;
};

// A started gRPC server with the standard health service
// (grpc.health.v1.Health) and server reflection (grpc.reflection.v1 and
// v1alpha) whose descriptors keep the comments of proto/. Thread-safe.
class GrpcServer {
 public:
  // Builds and starts a server for `services` (not owned; they must outlive
  // the server). UNAVAILABLE if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(
      const GrpcServerOptions& options,
      const std::vector<grpc::Service*>& services);

  ~GrpcServer();

  // The bound port.
  int port() const { return port_; }
  // The bound port of health_listen_address; 0 without one.
  int health_port() const { return health_port_; }
  // The health statuses, of both ports, without reasons: for whoever sets
  // a service's status of its own (SetServiceServing says why).
  grpc::HealthCheckServiceInterface* health() { return health_.get(); }
  // Readiness: sets SERVING / NOT_SERVING for "" and every
  // health_service_name; kLivenessService is left as it is. `reason`: why
  // it is NOT_SERVING (kHealthReasonKey), ignored when serving. No effect
  // once BeginStop was called.
  void SetServing(bool serving, absl::string_view reason);
  // Sets one health service's status, as SetServing does.
  void SetServiceServing(const std::string& service, bool serving,
                         absl::string_view reason);
  // The process begins to stop: every health service, kLivenessService
  // too, reports NOT_SERVING from now on, for good, with `reason`. Calls
  // still run.
  void BeginStop(absl::string_view reason = "stopping");
  // Stops accepting calls, waits up to `grace` for running calls, then
  // cancels the rest. BeginStop first, if it was not called. Returns as
  // soon as no call runs, even while clients keep connections open.
  void Shutdown(absl::Duration grace);
  // Calls of the main port that have started and not yet ended.
  int live_calls() const { return live_calls_->load(); }
  grpc::Server* server() { return server_.get(); }

 private:
  // Sets every status on the health services of both ports; nothing once
  // the servers are gone (Detach). Keeps why each service is NOT_SERVING,
  // for the Check answers' kHealthReasonKey. Thread-safe.
  class MirroredHealth final : public grpc::HealthCheckServiceInterface {
   public:
    // Without a reason.
    void SetServingStatus(const std::string& service_name,
                          bool serving) override;
    void SetServingStatus(bool serving) override;
    void Shutdown() override;
    // `reason` is kept while the service is NOT_SERVING.
    void Set(const std::string& service_name, bool serving,
             absl::string_view reason);
    // Shutdown, with why.
    void Stop(absl::string_view reason);
    // Why `service_name` is NOT_SERVING; "" if no one said.
    std::string Reason(const std::string& service_name) const;
    // Adds a health service (not owned; null is skipped).
    void Add(grpc::HealthCheckServiceInterface* target);
    // Forgets every health service: their servers are about to go.
    void Detach();

   private:
    // gRPC's health services take their own lock and never block, so they
    // are called under this one: a Detach cannot overtake a call.
    mutable absl::Mutex mu_;
    std::vector<grpc::HealthCheckServiceInterface*> targets_
        ABSL_GUARDED_BY(mu_);
    absl::flat_hash_map<std::string, std::string> reasons_ ABSL_GUARDED_BY(mu_);
    bool stopped_ ABSL_GUARDED_BY(mu_) = false;
    std::string stop_reason_ ABSL_GUARDED_BY(mu_);
  };

  GrpcServer(std::unique_ptr<ServerReflection> reflection,
             std::shared_ptr<std::atomic<int>> live_calls,
             std::shared_ptr<MirroredHealth> health,
             std::unique_ptr<grpc::Server> server, int port,
             std::unique_ptr<grpc::Server> health_server, int health_port,
             std::vector<std::string> names);
  // Declared first so that they outlive the server that calls them.
  const std::unique_ptr<ServerReflection> reflection_;
  // Kept by an interceptor of every call (CallCounter).
  const std::shared_ptr<std::atomic<int>> live_calls_;
  // Read by an interceptor of every call too (HealthReasonAdder).
  const std::shared_ptr<MirroredHealth> health_;
  std::unique_ptr<grpc::Server> server_;
  const int port_;
  std::unique_ptr<grpc::Server> health_server_;  // may be null
  const int health_port_;
  const std::vector<std::string> health_names_;
};

}  // namespace common

#endif  // CRUCIBLE_COMMON_GRPC_SERVER_H_
