// crucible-docker-guard: the engine guard behind the docker-proxy. HAProxy
// sends it every container create; it forwards to the engine only bodies
// that the executor's own container policy produces (executor/guard).
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <iostream>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/port_file.h"
#include "common/process.h"
#include "executor/guard/create_guard.h"
#include "executor/guard/describe.h"
#include "executor/guard/guard_server.h"
#include "executor/policy/container_policy.h"
#include "executor/policy/policy_file.h"
#include "glog/logging.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:2376",
          "host:port to serve on; keep it on loopback (only the docker-proxy "
          "talks to it)");
ABSL_FLAG(std::string, port_file, "",
          "if set, the bound port is written to this file once serving");
ABSL_FLAG(std::string, engine_socket, "",
          "the engine's Unix socket, e.g. /var/run/docker.sock (required)");
ABSL_FLAG(std::string, policy_file, "",
          "the executor's JSON container policy file: the same file as the "
          "executor's --policy_file; empty: the built-in defaults, as the "
          "executor without one");
ABSL_FLAG(std::string, executor_id, "",
          "if set, the only crucible.executor label admitted (a proxy in one "
          "executor's pod); empty: any");
ABSL_FLAG(bool, describe, false,
          "print what the guard admits under the policy (Markdown) and exit");
ABSL_FLAG(absl::Duration, engine_timeout, absl::Seconds(60),
          "limit of each forwarded create");
ABSL_FLAG(bool, probe, false,
          "connect to --listen's address and exit 0 if something accepts, 1 "
          "if not: the health check of an image without a shell");

namespace {

// True if a TCP connection to host:port is accepted.
bool Accepts(const std::string& host, const std::string& port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0) {
    return false;
  }
  bool ok = false;
  for (addrinfo* a = found; a != nullptr && !ok; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    ok = connect(fd, a->ai_addr, a->ai_addrlen) == 0;
    close(fd);
  }
  freeaddrinfo(found);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  // The docker-proxy image's STOPSIGNAL is SIGUSR1, HAProxy's soft stop;
  // the guard, PID 1 there, gets it too and stops as on SIGTERM.
  common::BlockStopSignals({SIGUSR1});
  common::ParseFlags(argc, argv,
                     "admits to the container engine only the container "
                     "creates that Crucible's container policy produces.");
  common::InitLogging(argv[0]);

  auto policy = policy::LoadPolicy(absl::GetFlag(FLAGS_policy_file));
  if (!policy.ok()) {
    LOG(ERROR) << "bad policy: " << policy.status();
    return 1;
  }

  if (absl::GetFlag(FLAGS_describe)) {
    std::cout << guard::DescribeAllowedCreate(policy->options());
    return 0;
  }

  guard::GuardServerOptions options;
  std::pair<std::string, std::string> host_port =
      absl::StrSplit(absl::GetFlag(FLAGS_listen), absl::MaxSplits(':', 1));
  if (absl::GetFlag(FLAGS_probe)) {
    return Accepts(host_port.first, host_port.second) ? 0 : 1;
  }
  options.host = host_port.first;
  if (!absl::SimpleAtoi(host_port.second, &options.port) || options.port < 0) {
    LOG(ERROR) << "--listen must be host:port";
    return 1;
  }
  options.engine_socket = absl::GetFlag(FLAGS_engine_socket);
  options.engine_timeout = absl::GetFlag(FLAGS_engine_timeout);
  auto server = guard::GuardServer::Start(
      options,
      guard::CreateGuard(policy->options(), absl::GetFlag(FLAGS_executor_id)));
  if (!server.ok()) {
    LOG(ERROR) << "cannot serve: " << server.status();
    return 1;
  }
  if (std::string path = absl::GetFlag(FLAGS_port_file); !path.empty()) {
    if (absl::Status s = common::WritePortFile(path, (*server)->port());
        !s.ok()) {
      LOG(ERROR) << s;
      return 1;
    }
  }
  LOG(INFO) << "crucible-docker-guard serving on " << options.host << ":"
            << (*server)->port() << ", engine " << options.engine_socket;
  int sig = common::WaitForStopSignal({SIGUSR1});
  LOG(INFO) << "signal " << sig << ": stopping";
  server->reset();
  return 0;
}
