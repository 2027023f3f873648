// crucible-server: the public TaskService and the workers' QueueService over
// one scheduler and a store: an embedded SQLite file, or PostgreSQL shared
// by several servers of which one leads (the others are standbys).
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/grpc_server.h"
#include "common/metrics_flags.h"
#include "common/process.h"
#include "common/tls.h"
#include "glog/logging.h"
#include "server/auth/setup.h"
#include "server/blocking_pool.h"
#include "server/callback/callback_sender.h"
#include "server/maintenance.h"
#include "server/outbox/durable_outbox.h"
#include "server/periodic.h"
#include "server/queue_service.h"
#include "server/scheduler/request_validation.h"
#include "server/scheduler/scheduler.h"
#include "server/standby.h"
#include "server/store/pg_leader.h"
#include "server/store/pg_task_store.h"
#include "server/store/sqlite_task_store.h"
#include "server/task_service.h"
#include "server/tenancy/tenants_file.h"
#include "server/token_service.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:8080", "host:port to serve on");
ABSL_FLAG(std::string, port_file, "",
          "if set, the bound port is written to this file once serving");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain this process presents (TLS); re-read when it "
          "changes");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM bundle of the CAs that sign the certificates of workers (client "
          "certificates) and of whoever dials with one");
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
          "admitted to QueueService; 'prefix*' matches by prefix, '*' admits "
          "any certificate the --tls_ca signed");
ABSL_FLAG(std::string, db, ".crucible/crucible.db",
          "SQLite database file; its directory is created if missing");
ABSL_FLAG(std::string, store, "",
          "the store: empty for the embedded SQLite file at --db; a "
          "postgresql:// (or postgres://) libpq URI for PostgreSQL, shared by "
          "several servers of which one leads and the others stand by");
ABSL_FLAG(std::string, store_file, "",
          "a file holding the --store value (so that a password is not on the "
          "command line); not with --store");
ABSL_FLAG(absl::Duration, leader_lease, absl::Seconds(5),
          "PostgreSQL store: how long the leader's lease lasts unless renewed "
          "(every lease/5); a standby takes over about this long after the "
          "leader dies or is cut off");
ABSL_FLAG(std::string, server_id, "",
          "PostgreSQL store: this server's name in the leader lease, shown to "
          "clients of standbys; default <hostname>-<pid>");
ABSL_FLAG(absl::Duration, store_full_retry, absl::Seconds(1),
          "while the disk of --db is full, how often the waiting writes are "
          "tried again (writing resumes by itself once space is freed)");
ABSL_FLAG(absl::Duration, lease_ttl, absl::Seconds(30),
          "a lease lapses this long after its last heartbeat");
ABSL_FLAG(absl::Duration, restart_lease_grace, absl::Seconds(20),
          "at start, leases that were live are kept this long for their "
          "workers to reconnect and name them; then they lapse (0: at once)");
ABSL_FLAG(absl::Duration, lost_worker_grace, absl::Seconds(5),
          "the leases of a worker whose stream ended without a goodbye lapse "
          "this long after, unless it reconnects and names them");
ABSL_FLAG(int, max_attempts, 3,
          "attempts of a task whose spec sets no retry_policy.max_attempts");
ABSL_FLAG(absl::Duration, infra_initial_backoff, absl::Seconds(1),
          "an attempt that ended for the system's own faults (engine, "
          "executor or worker lost; not counted against max_attempts) is "
          "retried after this, doubled with each such failure...");
ABSL_FLAG(absl::Duration, infra_max_backoff, absl::Seconds(30),
          "...up to this");
ABSL_FLAG(absl::Duration, infra_horizon, absl::Hours(1),
          "a task whose attempts keep failing for the system's faults this "
          "long ends FAILED (INFRASTRUCTURE)");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "on SIGTERM, how long running calls get before they are cancelled");
ABSL_FLAG(int, blocking_threads, 8,
          "threads that run store-bound work on behalf of gRPC calls");
ABSL_FLAG(absl::Duration, sweep_interval, absl::Seconds(1),
          "how often expired leases and due tasks are looked at");
ABSL_FLAG(int, fairness_interval, 10,
          "every n-th dispatch of a tenant goes to its oldest ready task "
          "whatever its priority (bounded starvation); 0: strict priority");
ABSL_FLAG(absl::Duration, timeout_grace, absl::Seconds(30),
          "an attempt with no result by its timeout plus this is ended "
          "TIMED_OUT by the server");
ABSL_FLAG(absl::Duration, retention, absl::Hours(24 * 7),
          "finished tasks and their output are purged this long after they "
          "ended");
ABSL_FLAG(int64_t, max_output_bytes, int64_t{16} << 20,
          "output kept per attempt at most (and when the spec sets none)");
ABSL_FLAG(int64_t, max_stdin_bytes, int64_t{1} << 20,
          "largest spec.stdin accepted (at most 1 MiB)");
ABSL_FLAG(int64_t, max_memory_bytes, 0,
          "largest spec.resources.memory_bytes accepted; 0: no maximum");
ABSL_FLAG(int64_t, max_cpu_millis, 0,
          "largest spec.resources.cpu_millis accepted; 0: no maximum");
ABSL_FLAG(int64_t, max_pids_limit, 0,
          "largest spec.resources.pids_limit accepted; 0: no maximum");
ABSL_FLAG(int64_t, max_tmpfs_bytes, 0,
          "largest spec.resources.tmpfs_bytes accepted; 0: no maximum");
ABSL_FLAG(absl::Duration, max_timeout, absl::ZeroDuration(),
          "longest spec.timeout accepted; 0: no maximum");
ABSL_FLAG(bool, fleet_admission, true,
          "refuse at CreateTask a task that no connected executor accepts "
          "(image rules and maxima, which workers pass on from their "
          "executors); false: admit on the server's own limits alone");
ABSL_FLAG(absl::Duration, fleet_memory, absl::Minutes(10),
          "what a worker's executors accept is still counted this long "
          "after its stream ended");
ABSL_FLAG(absl::Duration, admission_wait, absl::Seconds(10),
          "for this long after start, a CreateTask that finds no executor "
          "known waits for one instead of failing UNAVAILABLE at once");
ABSL_FLAG(std::string, tenants_file, "",
          "JSON file of each tenant's quotas and fair-share weight (see the "
          "operator guide); empty: no quotas, every tenant weight 1");
ABSL_FLAG(absl::Duration, tenants_reload_interval, absl::Seconds(5),
          "how often --tenants_file is read again; a change applies without "
          "a restart, a file that does not parse is logged and ignored");

ABSL_FLAG(bool, allow_anonymous, false,
          "TaskService calls without credentials act as --anonymous_tenant "
          "with ROLE_USER; off: every call must authenticate");
ABSL_FLAG(std::string, anonymous_tenant, "default",
          "the tenant of calls without credentials (--allow_anonymous)");
ABSL_FLAG(std::string, admin_token_file, "",
          "file holding a bearer token that acts as an admin (ROLE_ADMIN of "
          "--admin_tenant), e.g. to create the first API tokens; only its "
          "hash is kept in memory");
ABSL_FLAG(std::string, admin_tenant, "admin",
          "the tenant of the --admin_token_file token");
ABSL_FLAG(absl::Duration, token_refresh_interval, absl::Seconds(5),
          "how often API tokens are read again from the store (tokens "
          "created or revoked by another server of the same store)");
ABSL_FLAG(std::string, jwks_file, "",
          "if set, JWTs are accepted: a JWKS file of the issuer's public keys "
          "(RSA or EC), read again when it changes");
ABSL_FLAG(std::string, jwt_issuer, "", "the `iss` every JWT must have");
ABSL_FLAG(std::string, jwt_audience, "",
          "a value the `aud` of every JWT must have");
ABSL_FLAG(std::string, jwt_tenant_claim, "crucible_tenant",
          "the JWT claim naming the caller's tenant; '/' descends into "
          "objects (kubernetes.io/namespace for service-account tokens)");
ABSL_FLAG(std::string, jwt_role_claim, "crucible_role",
          "the JWT claim naming the role: reader, user or admin");
ABSL_FLAG(std::string, jwt_default_role, "user",
          "the role of a JWT without --jwt_role_claim: reader, user or admin");

ABSL_FLAG(std::vector<std::string>, callback_allowed_hosts, {},
          "host or host:port entries a task's callback_url may name "
          "(comma-separated; IPv6 in brackets); empty: callbacks refused");
ABSL_FLAG(std::string, callback_signing_key_file, "",
          "file of completion callback signing keys, one 'KEY_ID SECRET' a "
          "line; the first signs (needed with --callback_allowed_hosts)");
ABSL_FLAG(absl::Duration, callback_horizon, absl::Hours(24),
          "after a task ends, how long its callback is retried before it "
          "is given up");
ABSL_FLAG(absl::Duration, callback_initial_backoff, absl::Seconds(1),
          "wait before a callback's second POST; doubles each time, with "
          "jitter");
ABSL_FLAG(absl::Duration, callback_max_backoff, absl::Minutes(10),
          "longest wait between two POSTs of a callback");
ABSL_FLAG(absl::Duration, callback_timeout, absl::Seconds(10),
          "longest one callback POST may take, connect included");

// Health entry of the store's writes.
constexpr char kStoreHealth[] = "crucible.store";

// `address` (host:port) with its port replaced by `port`.
std::string WithPort(const std::string& address, int port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return address;
  return absl::StrCat(address.substr(0, colon + 1), port);
}

// The --store value: the flag, or the first line of --store_file.
absl::StatusOr<std::string> StoreFlag() {
  const std::string file = absl::GetFlag(FLAGS_store_file);
  if (file.empty()) return absl::GetFlag(FLAGS_store);
  if (!absl::GetFlag(FLAGS_store).empty()) {
    return absl::InvalidArgumentError("give --store or --store_file, not both");
  }
  std::ifstream in(file);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("--store_file ", file, ": cannot read it"));
  }
  std::stringstream text;
  text << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(text.str()));
}

std::string DefaultServerId() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return absl::StrCat(host[0] ? host : "server", "-", getpid());
}

// Why a standby's health is NOT_SERVING; `leader` "" if none leads.
std::string StandbyReason(const std::string& leader) {
  return absl::StrCat("standby: not the leader of the PostgreSQL store (",
                      leader.empty()
                          ? std::string("no server holds the leader lease")
                          : absl::StrCat("the leader is ", leader),
                      "); it takes over when the lease is free");
}

int main(int argc, char** argv) {
  common::BlockStopSignals();
  // Abseil's lock-order graph costs a few percent on every lock; the
  // thread-safety annotations already check lock use at build time.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  common::ParseFlags(
      argc, argv,
      "the Crucible API (TaskService) and durable task queue (QueueService).");
  common::InitLogging(argv[0]);

  const common::TlsOptions tls{
      .cert_file = absl::GetFlag(FLAGS_tls_cert),
      .key_file = absl::GetFlag(FLAGS_tls_key),
      .ca_file = absl::GetFlag(FLAGS_tls_ca),
      .reload_interval = absl::GetFlag(FLAGS_tls_reload_interval),
      .insecure = absl::GetFlag(FLAGS_insecure),
      .insecure_listen_any = absl::GetFlag(FLAGS_insecure_listen_any)};
  // API clients may come without a certificate (they present tokens);
  // QueueService admits only workers whose certificate names an allowed
  // identity. Plaintext has no certificates: every worker is admitted.
  auto credentials = common::MakeServerCredentials(
      tls, absl::GetFlag(FLAGS_listen),
      common::ClientCertificates::kRequestAndVerify);
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

  // The stop signal is waited for in a thread of its own, from now on: a
  // standby waits for it and for the leader lease at once.
  absl::Notification stop_requested;
  std::atomic<int> stop_signal{0};
  std::thread([&stop_requested, &stop_signal] {
    stop_signal = common::WaitForStopSignal();
    stop_requested.Notify();
  }).detach();

  absl::StatusOr<std::string> store_flag = StoreFlag();
  if (!store_flag.ok()) {
    LOG(ERROR) << store_flag.status().message();
    return 2;
  }
  std::unique_ptr<server::TaskStore> task_store;
  server::auth::TokenStore* token_store = nullptr;
  server::PgTaskStore* pg_store = nullptr;
  std::string store_name;
  if (server::IsPostgresUri(*store_flag)) {
    store_name = server::RedactPostgresUri(*store_flag);
    auto store = server::PgTaskStore::Open({.uri = *store_flag});
    if (!store.ok()) {
      LOG(ERROR) << "cannot open store: " << store.status();
      return 1;
    }
    pg_store = store->get();
    token_store = store->get();
    task_store = *std::move(store);
  } else if (!store_flag->empty()) {
    LOG(ERROR) << "--store must be a postgresql:// URI (or empty for the "
                  "SQLite file at --db)";
    return 2;
  } else {
    server::SqliteTaskStoreOptions store_options;
    store_options.path = absl::GetFlag(FLAGS_db);
    store_name = store_options.path;
    std::filesystem::path parent =
        std::filesystem::path(store_options.path).parent_path();
    if (!parent.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(parent, ec);
      if (ec) {
        LOG(ERROR) << "cannot create " << parent << ": " << ec.message();
        return 1;
      }
    }
    auto store = server::SqliteTaskStore::Open(store_options);
    if (!store.ok()) {
      LOG(ERROR) << "cannot open store: " << store.status();
      return 1;
    }
    token_store = store->get();
    task_store = *std::move(store);
  }

  // Completion callbacks: which hosts, and the keys that sign them.
  auto callback_hosts =
      server::CallbackHosts::Parse(absl::GetFlag(FLAGS_callback_allowed_hosts));
  if (!callback_hosts.ok()) {
    LOG(ERROR) << callback_hosts.status().message();
    return 2;
  }
  std::vector<server::CallbackKey> callback_keys;
  if (!callback_hosts->empty()) {
    if (absl::GetFlag(FLAGS_callback_signing_key_file).empty()) {
      LOG(ERROR) << "--callback_allowed_hosts needs "
                    "--callback_signing_key_file: callbacks are signed";
      return 2;
    }
    auto keys = server::ReadCallbackKeys(
        absl::GetFlag(FLAGS_callback_signing_key_file));
    if (!keys.ok()) {
      LOG(ERROR) << keys.status().message();
      return 2;
    }
    callback_keys = *std::move(keys);
  }

  common::GrpcServerOptions server_options;
  server_options.credentials = *credentials;
  server_options.health_listen_address = absl::GetFlag(FLAGS_health_listen);
  server_options.listen_address = absl::GetFlag(FLAGS_listen);
  server_options.port_file = absl::GetFlag(FLAGS_port_file);
  server_options.max_receive_message_bytes =
      static_cast<int>(server::kMaxReceiveMessageBytes);
  // "crucible.store": NOT_SERVING while the disk is full (server::Maintenance).
  server_options.health_service_names = {
      kStoreHealth, "crucible.v1.TaskService", "crucible.v1.QueueService",
      "crucible.v1.TokenService"};

  // PostgreSQL: stand by until this server holds the leader lease.
  std::unique_ptr<server::PgLeaderLease> lease;
  if (pg_store != nullptr) {
    std::string server_id = absl::GetFlag(FLAGS_server_id);
    if (server_id.empty()) server_id = DefaultServerId();
    auto connected = server::PgLeaderLease::Connect(
        {.uri = *store_flag,
         .holder = server_id,
         .lease = absl::GetFlag(FLAGS_leader_lease)});
    if (!connected.ok()) {
      LOG(ERROR) << "cannot take part in the leader election: "
                 << connected.status();
      return 1;
    }
    lease = *std::move(connected);
    server::StandbyService standby;
    common::GrpcServerOptions standby_options = server_options;
    standby_options.initially_ready = false;
    standby_options.not_ready_reason = StandbyReason("");
    standby_options.generic_service = &standby;
    auto standby_server = common::GrpcServer::Start(standby_options, {});
    if (!standby_server.ok()) {
      LOG(ERROR) << "cannot serve: " << standby_server.status();
      return 1;
    }
    LOG(INFO) << "crucible-server " << server_id << " on port "
              << (*standby_server)->port() << ", store " << store_name
              << ": standing by until it holds the leader lease";
    auto fence = lease->Acquire(stop_requested, [&](const std::string& leader) {
      standby.SetLeader(leader);
      (*standby_server)->SetServing(false, StandbyReason(leader));
      LOG(INFO) << "standby: "
                << (leader.empty() ? std::string("no leader now")
                                   : absl::StrCat("the leader is ", leader));
    });
    // The leader serves on the ports the standby had (port 0 picked them).
    server_options.listen_address =
        WithPort(server_options.listen_address, (*standby_server)->port());
    if ((*standby_server)->health_port() != 0) {
      server_options.health_listen_address =
          WithPort(server_options.health_listen_address,
                   (*standby_server)->health_port());
    }
    (*standby_server)->Shutdown(absl::ZeroDuration());
    standby_server->reset();
    if (!fence.ok()) {
      LOG(INFO) << "signal " << stop_signal << ": stopped as a standby";
      return 0;
    }
    pg_store->SetFence(*fence);
    lease->KeepRenewing([](absl::string_view reason) {
      // Crash-only: what was acknowledged is committed, and the next leader
      // reads it; nothing may be dispatched once another could lead.
      LOG(ERROR) << "lost the leader lease: " << reason
                 << "; exiting now so that another server leads";
      google::FlushLogFiles(google::GLOG_INFO);
      std::_Exit(1);
    });
    LOG(INFO) << "crucible-server " << server_id
              << " holds the leader lease (epoch " << fence->epoch << ")";
  }
  server::DurableOutbox outbox(
      *task_store,
      {.full_retry_interval = absl::GetFlag(FLAGS_store_full_retry)});

  server::SchedulerOptions scheduler_options;
  scheduler_options.lease_ttl = absl::GetFlag(FLAGS_lease_ttl);
  scheduler_options.restart_grace = absl::GetFlag(FLAGS_restart_lease_grace);
  scheduler_options.lost_worker_grace = absl::GetFlag(FLAGS_lost_worker_grace);
  scheduler_options.default_max_attempts = absl::GetFlag(FLAGS_max_attempts);
  scheduler_options.infra_initial_backoff =
      absl::GetFlag(FLAGS_infra_initial_backoff);
  scheduler_options.infra_max_backoff = absl::GetFlag(FLAGS_infra_max_backoff);
  scheduler_options.infra_horizon = absl::GetFlag(FLAGS_infra_horizon);
  scheduler_options.fairness_interval = absl::GetFlag(FLAGS_fairness_interval);
  scheduler_options.timeout_grace = absl::GetFlag(FLAGS_timeout_grace);
  scheduler_options.retention = absl::GetFlag(FLAGS_retention);
  scheduler_options.max_output_bytes = absl::GetFlag(FLAGS_max_output_bytes);
  server::ValidationLimits& limits = scheduler_options.limits;
  limits.max_stdin_bytes = absl::GetFlag(FLAGS_max_stdin_bytes);
  limits.max_memory_bytes = absl::GetFlag(FLAGS_max_memory_bytes);
  limits.max_cpu_millis = absl::GetFlag(FLAGS_max_cpu_millis);
  limits.max_pids_limit = absl::GetFlag(FLAGS_max_pids_limit);
  limits.max_tmpfs_bytes = absl::GetFlag(FLAGS_max_tmpfs_bytes);
  limits.max_timeout = absl::GetFlag(FLAGS_max_timeout);
  limits.max_output_bytes = absl::GetFlag(FLAGS_max_output_bytes);
  server::FleetAdmission fleet({.enabled = absl::GetFlag(FLAGS_fleet_admission),
                                .memory = absl::GetFlag(FLAGS_fleet_memory)},
                               common::Clock::Real());
  scheduler_options.admission = &fleet;
  auto scheduler = server::Scheduler::Create(scheduler_options, *task_store,
                                             outbox, common::Clock::Real());
  if (!scheduler.ok()) {
    LOG(ERROR) << "cannot start scheduler: " << scheduler.status();
    return 1;
  }
  // Completion callbacks go out from the leader only (this point is past
  // the standby's wait), on a thread of their own.
  std::unique_ptr<server::CallbackSender> callbacks;
  if (!callback_hosts->empty()) {
    callbacks = std::make_unique<server::CallbackSender>(
        *task_store, outbox,
        server::CallbackSenderOptions{
            .hosts = *callback_hosts,
            .keys = callback_keys,
            .horizon = absl::GetFlag(FLAGS_callback_horizon),
            .initial_backoff = absl::GetFlag(FLAGS_callback_initial_backoff),
            .max_backoff = absl::GetFlag(FLAGS_callback_max_backoff),
            .post_timeout = absl::GetFlag(FLAGS_callback_timeout)},
        common::Clock::Real());
  }
  // Tenants' quotas and weights: read now, and again on a timer (a bad
  // change is logged and the quotas in force stay).
  std::unique_ptr<server::TenantsFile> tenants_file;
  std::unique_ptr<server::PeriodicRunner> tenants_reload;
  if (!absl::GetFlag(FLAGS_tenants_file).empty()) {
    auto file = server::TenantsFile::Open(absl::GetFlag(FLAGS_tenants_file));
    if (!file.ok()) {
      LOG(ERROR) << file.status().message();
      return 1;
    }
    tenants_file = *std::move(file);
    (*scheduler)->SetTenants(tenants_file->current());
    LOG(INFO) << "tenants file " << tenants_file->path() << ": "
              << server::DescribeTenantsConfig(*tenants_file->current());
    tenants_reload = std::make_unique<server::PeriodicRunner>(
        absl::GetFlag(FLAGS_tenants_reload_interval), [&] {
          auto changed = tenants_file->ReloadIfChanged();
          if (changed) (*scheduler)->SetTenants(std::move(changed));
        });
  }

  // Who calls TaskService and TokenService.
  auto api_tokens =
      server::auth::ApiTokens::Create(*token_store, common::Clock::Real());
  if (!api_tokens.ok()) {
    LOG(ERROR) << "cannot load the API tokens: " << api_tokens.status();
    return 1;
  }
  server::PeriodicRunner token_refresh(
      absl::GetFlag(FLAGS_token_refresh_interval), [&] {
        if (absl::Status s = (*api_tokens)->Refresh(); !s.ok()) {
          LOG(WARNING) << "cannot read the API tokens again: " << s;
        }
      });
  auto auth = server::auth::SetUpAuth(
      {.allow_anonymous = absl::GetFlag(FLAGS_allow_anonymous),
       .anonymous_tenant = absl::GetFlag(FLAGS_anonymous_tenant),
       .admin_token_file = absl::GetFlag(FLAGS_admin_token_file),
       .admin_tenant = absl::GetFlag(FLAGS_admin_tenant),
       .jwks_file = absl::GetFlag(FLAGS_jwks_file),
       .jwt_issuer = absl::GetFlag(FLAGS_jwt_issuer),
       .jwt_audience = absl::GetFlag(FLAGS_jwt_audience),
       .jwt_tenant_claim = absl::GetFlag(FLAGS_jwt_tenant_claim),
       .jwt_role_claim = absl::GetFlag(FLAGS_jwt_role_claim),
       .jwt_default_role = absl::GetFlag(FLAGS_jwt_default_role)},
      api_tokens->get());
  if (!auth.ok()) {
    LOG(ERROR) << auth.status().message();
    return 2;
  }

  // Outlives the services and the server: their pending jobs run on it.
  server::BlockingPool pool(absl::GetFlag(FLAGS_blocking_threads));
  server::TaskServiceOptions task_options;
  if (absl::GetFlag(FLAGS_fleet_admission)) {
    task_options.fleet = &fleet;
    task_options.admission_wait_until =
        absl::Now() + absl::GetFlag(FLAGS_admission_wait);
  }
  task_options.callback_hosts = &*callback_hosts;
  server::TaskService task_service(**scheduler, pool, *(*auth)->authenticator,
                                   task_options);
  server::TokenService token_service(**api_tokens, pool,
                                     *(*auth)->authenticator);
  common::PeerAuthorizer worker_authorizer(
      absl::GetFlag(FLAGS_worker_identities));
  server::QueueService queue_service(
      **scheduler, pool, &fleet, tls.insecure ? nullptr : &worker_authorizer);
  auto grpc_server = common::GrpcServer::Start(
      server_options, {&task_service, &queue_service, &token_service});
  if (!grpc_server.ok()) {
    LOG(ERROR) << "cannot serve: " << grpc_server.status();
    return 1;
  }
  LOG(INFO) << "crucible-server serving on port " << (*grpc_server)->port()
            << (tls.insecure ? " (plaintext)" : " (TLS)") << ", store "
            << store_name;
  bool store_failed = false;
  {
    server::Maintenance maintenance(
        **scheduler, grpc_server->get(),
        {.interval = absl::GetFlag(FLAGS_sweep_interval),
         .store_health_service = kStoreHealth},
        common::RequestStop);
    stop_requested.WaitForNotification();
    LOG(INFO) << "signal " << stop_signal << ": stopping";
    // Every health service NOT_SERVING, liveness too.
    (*grpc_server)
        ->BeginStop(maintenance.store_failed()
                        ? "stopping: the store failed (a restart rebuilds "
                          "from the store)"
                        : absl::StrCat("stopping (signal ", stop_signal.load(),
                                       "): draining"));
    // Workers half-close their streams on this and reconnect (to the next
    // server) at once, which also lets the shutdown below end early.
    (*scheduler)->GoAway("server shutting down");
    (*grpc_server)->Shutdown(absl::GetFlag(FLAGS_shutdown_grace));
    store_failed = maintenance.store_failed();
  }
  grpc_server->reset();
  // A standby takes over at once, not after the lease would have expired.
  if (lease != nullptr && !store_failed) lease->Release();
  LOG(INFO) << "stopped";
  return store_failed ? 1 : 0;
}
