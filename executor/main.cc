// crucible-executor: runs task attempts in hardened containers through the
// Docker Engine API and serves crucible.v1.ExecutorService.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/grpc_server.h"
#include "common/metrics_flags.h"
#include "common/process.h"
#include "common/tls.h"
#include "executor/docker/engine_client.h"
#include "executor/docker/metered_engine.h"
#include "executor/engine_health.h"
#include "executor/engine_probe.h"
#include "executor/executor_id.h"
#include "executor/executor_service.h"
#include "executor/policy/container_policy.h"
#include "executor/policy/policy_file.h"
#include "executor/runner/reaper.h"
#include "executor/runner/runner.h"
#include "glog/logging.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:8082", "host:port to serve on");
ABSL_FLAG(std::string, port_file, "",
          "if set, the bound port is written to this file once serving");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain this process presents (TLS); re-read when it "
          "changes");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM bundle of the CAs that sign the certificates of workers (a "
          "client certificate is required)");
ABSL_FLAG(absl::Duration, tls_reload_interval, absl::Seconds(60),
          "how often --tls_cert, --tls_key and --tls_ca are checked for "
          "changes (a rotated certificate serves new connections)");
ABSL_FLAG(bool, insecure, false,
          "plaintext instead of TLS (then no --tls_* file); refused on a "
          "listen address that is not loopback unless --insecure_listen_any");
ABSL_FLAG(std::string, health_listen, "",
          "if set, host:port of a plaintext port serving only the gRPC health "
          "service (same statuses as --listen), for probes that speak no TLS "
          "such as the kubelet's");
ABSL_FLAG(bool, insecure_listen_any, false,
          "with --insecure: plaintext also on a non-loopback --listen address "
          "(only where something else encrypts and authenticates the "
          "network)");
ABSL_FLAG(std::vector<std::string>, worker_identities,
          std::vector<std::string>({"crucible-worker"}),
          "comma-separated identities (certificate SAN DNS/URI or subject CN) "
          "admitted as callers; 'prefix*' matches by prefix, '*' admits any "
          "certificate the --tls_ca signed");
ABSL_FLAG(std::string, docker_host, "",
          "engine address, unix:///path or tcp://host:port; default: env "
          "DOCKER_HOST, else tcp://127.0.0.1:2375 (the docker-proxy)");
ABSL_FLAG(absl::Duration, engine_timeout, absl::Seconds(30),
          "limit of each non-streaming engine call; a run whose engine does "
          "not answer 3 inspections in a row ends UNAVAILABLE");
ABSL_FLAG(int, slots, 4, "concurrent runs; more get RESOURCE_EXHAUSTED");
ABSL_FLAG(
    std::string, executor_id, "",
    "value of the crucible.executor label, unique per executor sharing an "
    "engine; default: the id kept in --executor_id_file if set, else "
    "<hostname>-<port of --listen>, or <hostname>-<pid> when that port is 0 "
    "(not stable across restarts)");
ABSL_FLAG(
    std::string, executor_id_file, "",
    "if set (and --executor_id is not), the executor's id is kept in this "
    "file: read at start, generated and written if missing, and locked "
    "while the executor runs (a second executor on the same file refuses "
    "to start); one file per executor, on a disk that outlives restarts");
ABSL_FLAG(std::string, policy_file, "",
          "JSON container policy (images, limits, user, runtime, network); "
          "the docker-proxy's engine guard must read the same file; empty: "
          "the built-in policy");
ABSL_FLAG(absl::Duration, reap_interval, absl::Seconds(60),
          "how often containers labelled with this executor's id that no run "
          "owns (left by a crash) are removed; also done at start");
ABSL_FLAG(absl::Duration, ping_interval, absl::Seconds(5),
          "how often the engine is pinged while it answers; any engine call "
          "that finds it unreachable sets NOT_SERVING at once");
ABSL_FLAG(
    absl::Duration, unhealthy_ping_interval, absl::Seconds(1),
    "how often the engine is pinged while it does not answer (NOT_SERVING); "
    "the first successful ping sets SERVING and reaps orphans at once");
ABSL_FLAG(absl::Duration, cancel_grace, absl::Seconds(3),
          "on SIGTERM, how long running runs may go on before being cancelled");
ABSL_FLAG(std::string, engine_probe_image, "localhost/crucible/busybox:latest",
          "image (allowed by the policy, present on the engine, with sh, cat "
          "and head) of the container probed once the engine first answers: "
          "if the engine drops its memory or pids limit, or gives it no user "
          "namespace when the policy asks for one, the executor logs why and "
          "exits 1 without taking a task; empty: no probe (not advised)");

namespace {

std::string DockerHost() {
  std::string flag = absl::GetFlag(FLAGS_docker_host);
  if (!flag.empty()) return flag;
  const char* env = std::getenv("DOCKER_HOST");
  if (env != nullptr && env[0] != '\0') return env;
  return "tcp://127.0.0.1:2375";
}

std::string HostName() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) == 0 && host[0] != '\0') return host;
  return "executor";
}

}  // namespace

int main(int argc, char** argv) {
  common::BlockStopSignals();
  common::ParseFlags(argc, argv,
                     "runs Crucible tasks in hardened containers through the "
                     "Docker Engine API "
                     "(behind the docker-proxy).");
  common::InitLogging(argv[0]);

  const common::TlsOptions tls{
      .cert_file = absl::GetFlag(FLAGS_tls_cert),
      .key_file = absl::GetFlag(FLAGS_tls_key),
      .ca_file = absl::GetFlag(FLAGS_tls_ca),
      .reload_interval = absl::GetFlag(FLAGS_tls_reload_interval),
      .insecure = absl::GetFlag(FLAGS_insecure),
      .insecure_listen_any = absl::GetFlag(FLAGS_insecure_listen_any)};
  // Only workers call an executor: no handshake without a certificate from
  // --tls_ca, and then only the allowed identities.
  auto credentials = common::MakeServerCredentials(
      tls, absl::GetFlag(FLAGS_listen),
      common::ClientCertificates::kRequireAndVerify);
  if (!credentials.ok()) {
    LOG(ERROR) << credentials.status().message();
    return 2;
  }

  // Prometheus' scrapes, on a port of their own; a port that cannot be
  // bound stops the process, as --listen does.
  auto metrics_server = common::StartMetricsFromFlags();
  if (!metrics_server.ok()) {
    LOG(ERROR) << "cannot serve metrics: " << metrics_server.status();
    return 1;
  }

  executor::ExecutorIdOptions id_options{
      .id = absl::GetFlag(FLAGS_executor_id),
      .id_file = absl::GetFlag(FLAGS_executor_id_file),
      .listen = absl::GetFlag(FLAGS_listen),
      .hostname = HostName(),
      .pid = static_cast<int>(getpid())};
  absl::BitGen gen;
  auto identity = executor::ExecutorIdentity::Resolve(id_options, gen);
  if (!identity.ok()) {
    LOG(ERROR) << "no executor id: " << identity.status();
    return 1;
  }

  // Health follows the engine: NOT_SERVING from the first call that finds
  // it unreachable, SERVING again from the first ping it answers.
  executor::EngineHealthOptions health_options;
  health_options.ping_interval = absl::GetFlag(FLAGS_ping_interval);
  health_options.unhealthy_ping_interval =
      absl::GetFlag(FLAGS_unhealthy_ping_interval);
  if (health_options.ping_interval <= absl::ZeroDuration() ||
      health_options.unhealthy_ping_interval <= absl::ZeroDuration()) {
    LOG(ERROR)
        << "--ping_interval and --unhealthy_ping_interval must be positive";
    return 1;
  }
  executor::EngineHealth health(common::Clock::Real(), health_options);

  docker::EngineClientOptions engine_options;
  engine_options.docker_host = DockerHost();
  engine_options.request_timeout = absl::GetFlag(FLAGS_engine_timeout);
  engine_options.on_unreachable = [&health](const absl::Status& s) {
    health.ReportUnreachable(s);
  };
  auto engine = docker::EngineClient::Create(engine_options);
  if (!engine.ok()) {
    LOG(ERROR) << "bad --docker_host: " << engine.status();
    return 1;
  }
  // Every engine call below is timed and its errors counted (/metrics).
  docker::MeteredEngine metered_engine(**engine, common::Clock::Real());

  auto policy =
      policy::LoadPolicy(absl::GetFlag(FLAGS_policy_file), identity->id());
  if (!policy.ok()) {
    LOG(ERROR) << "bad policy: " << policy.status();
    return 1;
  }

  runner::RunnerOptions runner_options;
  runner_options.slots = absl::GetFlag(FLAGS_slots);
  if (runner_options.slots <= 0) {
    LOG(ERROR) << "--slots must be positive";
    return 1;
  }
  runner::Runner runner(metered_engine, *policy, common::Clock::Real(),
                        runner_options);
  common::PeerAuthorizer worker_authorizer(
      absl::GetFlag(FLAGS_worker_identities));
  executor::ExecutorService service(
      runner, tls.insecure ? nullptr : &worker_authorizer);

  common::GrpcServerOptions server_options;
  server_options.credentials = *credentials;
  server_options.health_listen_address = absl::GetFlag(FLAGS_health_listen);
  server_options.listen_address = absl::GetFlag(FLAGS_listen);
  server_options.port_file = absl::GetFlag(FLAGS_port_file);
  server_options.health_service_names = {"crucible.v1.ExecutorService"};
  server_options.initially_ready = false;  // until the engine answers a ping
  server_options.not_ready_reason =
      absl::StrCat("waiting for the container engine (",
                   engine_options.docker_host, ") to answer its first ping");
  auto grpc_server = common::GrpcServer::Start(server_options, {&service});
  if (!grpc_server.ok()) {
    LOG(ERROR) << "cannot serve: " << grpc_server.status();
    return 1;
  }
  common::GrpcServer& server = **grpc_server;
  if (identity->stable()) {
    LOG(INFO) << "executor id " << identity->id() << " from "
              << identity->source();
  } else {
    LOG(WARNING) << "executor id " << identity->id() << " from "
                 << identity->source()
                 << ": a restarted executor will not reap this one's orphans";
  }
  LOG(INFO) << "crucible-executor " << identity->id() << " serving on port "
            << server.port() << (tls.insecure ? " (plaintext)" : " (TLS)")
            << ", engine " << engine_options.docker_host << ", "
            << runner_options.slots << " slots";

  // Containers of this executor that no run owns were left by a crash, or
  // by runs whose engine was lost mid-run: reaped at start, every
  // --reap_interval and as soon as the engine is back after an outage.
  // Started once the engine probe passed: its first round would take the
  // probe's container, which no run owns, for an orphan and remove it under
  // the probe.
  std::unique_ptr<runner::OrphanReaper> reaper;
  auto start_reaper = [&] {
    reaper = std::make_unique<runner::OrphanReaper>(
        runner, absl::GetFlag(FLAGS_reap_interval));
  };
  // Before the first SERVING: the engine must enforce the limits tasks
  // rely on (executor/engine_probe.h). An engine that drops one stops the
  // executor; an unreachable one is probed again at the next ping.
  executor::LimitsProbeOptions probe;
  probe.image = absl::GetFlag(FLAGS_engine_probe_image);
  probe.run_id = absl::StrCat("probe-", identity->id().substr(0, 58));
  // `probed` and `reaper` are touched by the health thread only, until
  // health.Stop().
  bool probed = probe.image.empty();
  if (probed) {
    LOG(WARNING) << "--engine_probe_image is empty: no engine probe";
    start_reaper();
  }
  std::atomic<bool> refused{false};
  auto ping_and_probe = [&] {
    absl::Status ping = metered_engine.Ping();
    if (!ping.ok() || probed) return ping;
    auto report = executor::ProbeEngineLimits(metered_engine, *policy,
                                              common::Clock::Real(), probe);
    if (report.ok()) {
      probed = true;
      start_reaper();
      LOG(INFO) << "engine probe: memory limit " << report->memory_bytes
                << ", pids limit " << report->pids_limit
                << " enforced; uid map \"" << report->uid_map << "\"";
      return ping;
    }
    if (!absl::IsUnavailable(report.status()) && !refused.exchange(true)) {
      LOG(ERROR) << "refusing to run tasks on this engine: " << report.status();
      common::RequestStop();
    }
    return report.status();
  };
  health.Start(ping_and_probe, [&](bool serving, bool after_outage,
                                   const absl::Status& why) {
    server.SetServing(serving, absl::StrCat("container engine unreachable (",
                                            engine_options.docker_host,
                                            "): ", why.ToString()));
    if (serving && after_outage && reaper) reaper->ReapNow();
  });

  int sig = common::WaitForStopSignal();
  LOG(INFO) << "signal " << sig << ": NOT_SERVING, taking no new runs";
  // Readiness and liveness NOT_SERVING for good: the engine coming back
  // (health's last callback) cannot undo it.
  server.BeginStop(
      absl::StrCat("draining (signal ", sig, "): taking no new runs"));
  runner.StopAccepting();
  health.Stop();
  reaper.reset();
  if (int stopped = runner.Drain(absl::GetFlag(FLAGS_cancel_grace));
      stopped > 0) {
    LOG(INFO) << "stopped " << stopped
              << " running runs (they end UNAVAILABLE, so they are retried)";
  }
  // Cancelled runs kill and remove their containers, then finish their calls.
  server.Shutdown(absl::Seconds(20));
  LOG(INFO) << "crucible-executor stopped";
  return refused ? 1 : 0;
}
