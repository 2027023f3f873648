// crucible-worker: takes tasks from the server's QueueService and runs them
// on executors. Serves only gRPC health and reflection on --listen: "" and
// crucible.worker ready while it has a stream to the server and an executor
// in rotation; "liveness" until it stops.
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/grpc_server.h"
#include "common/metrics_flags.h"
#include "common/process.h"
#include "common/status_macros.h"
#include "common/tls.h"
#include "glog/logging.h"
#include "worker/discovery.h"
#include "worker/readiness.h"
#include "worker/worker.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:8081",
          "host:port of the health service");
ABSL_FLAG(std::string, port_file, "", "if set, the bound port is written here");
ABSL_FLAG(std::string, server, "127.0.0.1:8080",
          "host:port of crucible-server; for several servers of one "
          "PostgreSQL store, ipv4:host:port,host:port,... (calls go to the "
          "one whose health is SERVING: the leader)");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM client certificate chain presented to the server and to the "
          "executors (mutual TLS); re-read when it changes");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM bundle of the CAs that sign the certificates of the server "
          "and of the executors (concatenate two CAs into one file)");
ABSL_FLAG(absl::Duration, tls_reload_interval, absl::Seconds(60),
          "how often --tls_cert, --tls_key and --tls_ca are checked for "
          "changes (a rotated certificate serves new connections)");
ABSL_FLAG(bool, insecure, false,
          "plaintext channels to the server and the executors instead of "
          "TLS (then no --tls_* file)");
ABSL_FLAG(std::string, server_tls_name, "",
          "name the server's certificate must carry (DNS SAN); default: the "
          "host of --server");
ABSL_FLAG(std::string, executor_tls_name, "",
          "name every executor's certificate must carry (DNS SAN); default: "
          "the host of each executor address (an IP with --executors_dns, so "
          "set this then, e.g. crucible-executor)");
ABSL_FLAG(
    std::string, executors, "",
    "comma-separated host:port list of crucible-executors (127.0.0.1:8082 when "
    "neither this, --executors_dns nor --executors_file is given)");
ABSL_FLAG(std::string, executors_dns, "",
          "host:port whose host resolves to the executors (e.g. a Kubernetes "
          "headless "
          "Service), re-resolved every --resolve_interval");
ABSL_FLAG(std::string, executors_file, "",
          "file of host:port lines naming executors, re-read every "
          "--resolve_interval");
ABSL_FLAG(absl::Duration, resolve_interval, absl::Seconds(5),
          "how often --executors_dns and --executors_file are looked at again");
ABSL_FLAG(int, executor_slots, 4,
          "tasks one executor runs at once (its --slots)");
ABSL_FLAG(
    int, slots, 0,
    "most tasks at once over all executors; 0: the free slots of the executors "
    "in rotation");
ABSL_FLAG(absl::Duration, health_interval, absl::Seconds(2),
          "how often a healthy executor is checked (grpc.health.v1)");
ABSL_FLAG(
    absl::Duration, health_retry_max, absl::Seconds(2),
    "longest delay between checks of an executor out of rotation (from 500ms, "
    "doubling): how late, at worst, its return is noticed");
ABSL_FLAG(
    absl::Duration, rejoin_window, absl::Seconds(2),
    "an executor that left rotation re-enters only after SERVING checks in a "
    "row "
    "spanning this long (0: at the first); new executors enter at their first");
ABSL_FLAG(absl::Duration, placement_timeout, absl::Seconds(30),
          "how long an assignment waits for a free executor slot before it is "
          "given back");
ABSL_FLAG(
    absl::Duration, drain_grace, absl::Seconds(25),
    "on SIGTERM, how long running tasks may go on before they are cancelled");
ABSL_FLAG(std::string, worker_id, "", "worker name; default <hostname>-<pid>");
ABSL_FLAG(absl::Duration, heartbeat_interval, absl::Seconds(5),
          "how often running leases are extended");
ABSL_FLAG(absl::Duration, keepalive_time, absl::Seconds(15),
          "a keepalive ping goes on every channel (server, executors) after "
          "this long "
          "without one, calls or not (at least 10s: servers refuse pings more "
          "often)");
ABSL_FLAG(
    absl::Duration, keepalive_timeout, absl::Seconds(10),
    "a keepalive ping unanswered this long closes the connection; the channel "
    "reconnects, resolving its name again");

namespace {

// The worker's readiness service next to "" (crucible.worker serves no
// service of its own on --listen).
constexpr char kWorkerHealth[] = "crucible.worker";

}  // namespace

namespace {

std::string DefaultWorkerId() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host[0] != '\0' ? host : "worker", "-", getpid());
}

// Flags -> options; INVALID_ARGUMENT naming the flag.
absl::StatusOr<worker::WorkerOptions> OptionsFromFlags() {
  worker::WorkerOptions o;
  o.server_address = absl::GetFlag(FLAGS_server);
  // ipv4:a:p,b:q: the servers of one PostgreSQL store.
  absl::string_view listed = o.server_address;
  const bool is_list = absl::ConsumePrefix(&listed, "ipv4:");
  for (absl::string_view address :
       is_list ? std::vector<absl::string_view>(absl::StrSplit(listed, ','))
               : std::vector<absl::string_view>{listed}) {
    if (absl::Status s = worker::ValidateHostPort(std::string(address));
        !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--server: ", s.message()));
    }
  }
  if (is_list && !absl::GetFlag(FLAGS_insecure) &&
      absl::GetFlag(FLAGS_server_tls_name).empty()) {
    return absl::InvalidArgumentError(
        "--server lists several servers: give --server_tls_name, the name "
        "their certificates carry");
  }
  worker::DiscoveryOptions& d = o.fleet.discovery;
  d.static_addresses = absl::StrSplit(absl::GetFlag(FLAGS_executors), ',',
                                      absl::SkipWhitespace());
  d.dns_name = absl::GetFlag(FLAGS_executors_dns);
  d.file = absl::GetFlag(FLAGS_executors_file);
  if (d.static_addresses.empty() && d.dns_name.empty() && d.file.empty()) {
    d.static_addresses = {"127.0.0.1:8082"};
  }
  if (absl::Status s = worker::Discovery::Validate(d); !s.ok()) return s;
  o.fleet.resolve_interval = absl::GetFlag(FLAGS_resolve_interval);
  o.fleet.pool.slots_per_executor = absl::GetFlag(FLAGS_executor_slots);
  o.fleet.pool.probe_interval = absl::GetFlag(FLAGS_health_interval);
  o.fleet.pool.retry_max = absl::GetFlag(FLAGS_health_retry_max);
  o.fleet.pool.rejoin_window = absl::GetFlag(FLAGS_rejoin_window);
  if (o.fleet.pool.rejoin_window < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--rejoin_window: must not be negative");
  }
  o.core.max_tasks = absl::GetFlag(FLAGS_slots);
  o.core.placement_timeout = absl::GetFlag(FLAGS_placement_timeout);
  o.core.worker_id = absl::GetFlag(FLAGS_worker_id);
  if (o.core.worker_id.empty()) o.core.worker_id = DefaultWorkerId();
  o.core.heartbeat_interval = absl::GetFlag(FLAGS_heartbeat_interval);
  o.channel.keepalive_time = absl::GetFlag(FLAGS_keepalive_time);
  o.channel.keepalive_timeout = absl::GetFlag(FLAGS_keepalive_timeout);
  o.channel.initial_reconnect_backoff = o.reconnect_backoff.initial;
  ASSIGN_OR_RETURN(
      o.channel.credentials,
      common::MakeChannelCredentials(
          {.cert_file = absl::GetFlag(FLAGS_tls_cert),
           .key_file = absl::GetFlag(FLAGS_tls_key),
           .ca_file = absl::GetFlag(FLAGS_tls_ca),
           .reload_interval = absl::GetFlag(FLAGS_tls_reload_interval),
           .insecure = absl::GetFlag(FLAGS_insecure)}));
  o.server_tls_name = absl::GetFlag(FLAGS_server_tls_name);
  o.executor_tls_name = absl::GetFlag(FLAGS_executor_tls_name);
  if (absl::Status s = worker::ValidateChannelOptions(o.channel); !s.ok())
    return s;
  const std::pair<const char*, absl::Duration> positive[] = {
      {"--resolve_interval", o.fleet.resolve_interval},
      {"--health_interval", o.fleet.pool.probe_interval},
      {"--health_retry_max", o.fleet.pool.retry_max},
      {"--placement_timeout", o.core.placement_timeout},
      {"--heartbeat_interval", o.core.heartbeat_interval},
  };
  for (const auto& [flag, value] : positive) {
    if (value <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": must be positive"));
    }
  }
  if (absl::GetFlag(FLAGS_drain_grace) < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--drain_grace: must not be negative");
  }
  if (o.fleet.pool.slots_per_executor < 1) {
    return absl::InvalidArgumentError("--executor_slots: must be at least 1");
  }
  if (o.core.max_tasks < 0)
    return absl::InvalidArgumentError("--slots: must not be negative");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  common::BlockStopSignals();
  common::ParseFlags(
      argc, argv,
      "takes tasks from crucible-server and runs them on crucible-executors.");
  common::InitLogging(argv[0]);

  absl::StatusOr<worker::WorkerOptions> options = OptionsFromFlags();
  if (!options.ok()) {
    LOG(ERROR) << options.status().message();
    return 2;
  }

  // Prometheus' scrapes, on a port of their own; a port that cannot be
  // bound stops the process, as --listen does.
  auto metrics_server = common::StartMetricsFromFlags();
  if (!metrics_server.ok()) {
    LOG(ERROR) << "cannot serve metrics: " << metrics_server.status();
    return 1;
  }

  common::GrpcServerOptions server_options;
  server_options.listen_address = absl::GetFlag(FLAGS_listen);
  server_options.port_file = absl::GetFlag(FLAGS_port_file);
  server_options.health_service_names = {kWorkerHealth};
  // Until a stream to the server is open and an executor is in rotation.
  server_options.initially_ready = false;
  server_options.not_ready_reason = worker::Readiness().NotReadyReason();
  absl::StatusOr<std::unique_ptr<common::GrpcServer>> server =
      common::GrpcServer::Start(server_options, {});
  if (!server.ok()) {
    LOG(ERROR) << server.status();
    return 1;
  }
  LOG(INFO) << "crucible-worker " << options->core.worker_id
            << " health on port " << (*server)->port() << "; server "
            << options->server_address;

  common::GrpcServer* health = server->get();
  worker::Worker worker(*options,
                        [health](bool ready, const std::string& reason) {
                          health->SetServing(ready, reason);
                        });
  worker.Start();
  const int sig = common::WaitForStopSignal();
  LOG(INFO) << "signal " << sig << ": draining";
  // Readiness and liveness NOT_SERVING for good.
  (*server)->BeginStop(
      absl::StrCat("draining (signal ", sig, "): taking no new tasks"));
  worker.Drain(absl::GetFlag(FLAGS_drain_grace));
  (*server)->Shutdown(absl::Seconds(1));
  LOG(INFO) << "stopped";
  return 0;
}
