// crucible-worker: takes tasks from the server's QueueService and runs them
// on executors. Serves only gRPC health and reflection on --listen.
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/grpc_server.h"
#include "glog/logging.h"
#include "worker/worker.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:8081", "host:port of the health service");
ABSL_FLAG(std::string, port_file, "", "if set, the bound port is written here");
ABSL_FLAG(std::string, server, "127.0.0.1:8080", "host:port of crucible-server");
ABSL_FLAG(std::string, executors, "127.0.0.1:8082",
          "comma-separated host:port list of crucible-executors");
ABSL_FLAG(std::string, worker_id, "", "worker name; default <hostname>-<pid>");
ABSL_FLAG(int, slots, 4, "tasks run at once (the credits granted to the server)");
ABSL_FLAG(absl::Duration, heartbeat_interval, absl::Seconds(5),
          "how often running leases are extended");

namespace {

std::string DefaultWorkerId() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host[0] != '\0' ? host : "worker", "-", getpid());
}

}  // namespace

int main(int argc, char** argv) {
  common::BlockStopSignals();
  absl::ParseCommandLine(argc, argv);
  common::InitLogging(argv[0]);

  worker::WorkerOptions options;
  options.server_address = absl::GetFlag(FLAGS_server);
  options.executors = absl::StrSplit(absl::GetFlag(FLAGS_executors), ',', absl::SkipEmpty());
  options.session.worker_id = absl::GetFlag(FLAGS_worker_id);
  if (options.session.worker_id.empty()) options.session.worker_id = DefaultWorkerId();
  options.session.slots = absl::GetFlag(FLAGS_slots);
  options.session.heartbeat_interval = absl::GetFlag(FLAGS_heartbeat_interval);
  if (options.executors.empty() || options.session.slots < 1 ||
      options.session.heartbeat_interval <= absl::ZeroDuration()) {
    LOG(ERROR) << "need --executors, --slots >= 1 and a positive --heartbeat_interval";
    return 2;
  }

  common::GrpcServerOptions server_options;
  server_options.listen_address = absl::GetFlag(FLAGS_listen);
  server_options.port_file = absl::GetFlag(FLAGS_port_file);
  absl::StatusOr<std::unique_ptr<common::GrpcServer>> server =
      common::GrpcServer::Start(server_options, {});
  if (!server.ok()) {
    LOG(ERROR) << server.status();
    return 1;
  }
  LOG(INFO) << "crucible-worker health on port " << (*server)->port() << "; server "
            << options.server_address << "; executors "
            << absl::GetFlag(FLAGS_executors);

  worker::Worker worker(options);
  worker.Start();
  const int sig = common::WaitForStopSignal();
  LOG(INFO) << "signal " << sig << ": stopping";
  (*server)->SetServing(false);
  worker.Stop();
  (*server)->Shutdown(absl::Seconds(1));
  LOG(INFO) << "stopped";
  return 0;
}
