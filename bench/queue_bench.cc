// crucible-queue-bench: tasks per second through the queue path alone.
//
// Many concurrent CreateTask callers (gRPC, completion queues) and workers
// that speak QueueService and complete each assignment at once, against a
// crucible-server (in-process by default, on a durable SQLite file; or a
// running one with --server). Reports tasks/s from the first CreateTask to
// the moment the server holds no unfinished task: created -> leased ->
// completed. Not a test; see bench/README.md.
#include <curl/curl.h>
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/bench_worker.h"
#include "bench/create_load.h"
#include "common/clock.h"
#include "common/grpc_server.h"
#include "common/metrics_http.h"
#include "common/tls.h"
#include "crucible/v1/queue_service.grpc.pb.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "server/auth/api_tokens.h"
#include "server/auth/authenticator.h"
#include "server/blocking_pool.h"
#include "server/outbox/durable_outbox.h"
#include "server/queue_service.h"
#include "server/scheduler/scheduler.h"
#include "server/store/pg_leader.h"
#include "server/store/pg_task_store.h"
#include "server/store/sqlite_task_store.h"
#include "server/task_service.h"

ABSL_FLAG(int, tasks, 50000, "tasks to push through");
ABSL_FLAG(int, inflight, 256, "CreateTask calls in flight at once");
ABSL_FLAG(int, channels, 1,
          "client channels (connections) the CreateTask calls share; 1 is one "
          "client process, more are as many processes");
ABSL_FLAG(int, caller_threads, 2, "threads making the CreateTask calls");
ABSL_FLAG(int, batch, 1,
          "tasks per call: 1 makes one CreateTask per task; more, one "
          "BatchCreateTasks of that many (at most 1000) per call");
ABSL_FLAG(int, workers, 4, "QueueService workers");
ABSL_FLAG(int, credits, 256, "credits each worker keeps granted");
ABSL_FLAG(
    std::string, server, "",
    "host:port of a running crucible-server; empty: start one in-process");
ABSL_FLAG(std::string, db, "crucible-queue-bench.db",
          "SQLite file of the in-process server (deleted first)");
ABSL_FLAG(std::string, store, "",
          "in-process server: a postgresql:// URI for the PostgreSQL store "
          "instead of --db (its tasks are deleted first; one server, holding "
          "the leader lease, so commits are fenced as deployed)");
ABSL_FLAG(absl::Duration, scrape_interval, absl::ZeroDuration(),
          "in-process server: serve /metrics and GET it this often, as "
          "Prometheus would (0: no endpoint; the series are kept either way)");
ABSL_FLAG(int, blocking_threads, 8, "in-process server: blocking pool threads");
ABSL_FLAG(std::string, tls_dir, "",
          "in-process server: mutual TLS as deployed: the server serves "
          "DIR/server.{pem,key}, the workers present DIR/worker.{pem,key} "
          "(QueueService admits crucible-worker), every client trusts "
          "DIR/ca.pem (deploy/local/certs DIR makes them); empty: plaintext");
ABSL_FLAG(bool, tokens, false,
          "in-process server: every API call carries an API token the server "
          "checks (issued at start in the store); false: calls without "
          "credentials (--allow_anonymous)");

namespace {

namespace v1 = crucible::v1;

// Polls until the server holds no QUEUED, LEASED or RUNNING task.
bool WaitIdle(v1::TaskService::Stub& stub, const std::string& token,
              absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    v1::ListTasksRequest req;
    req.set_page_size(1);
    req.add_states(v1::TASK_STATE_QUEUED);
    req.add_states(v1::TASK_STATE_LEASED);
    req.add_states(v1::TASK_STATE_RUNNING);
    v1::ListTasksResponse resp;
    if (stub.ListTasks(&ctx, req, &resp).ok() && resp.tasks_size() == 0) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  return false;
}

size_t CountBytes(char*, size_t size, size_t n, void* total) {
  *static_cast<size_t*>(total) += size * n;
  return size * n;
}

// GETs http://127.0.0.1:`port`/metrics every `interval` until stopped, as
// a Prometheus scrape would; counts the scrapes that answered 200 and
// their bytes.
class Scraper {
 public:
  Scraper(int port, absl::Duration interval)
      : thread_([this, port, interval] { Loop(port, interval); }) {}
  ~Scraper() {
    stop_.Notify();
    thread_.join();
  }
  int scrapes() const { return scrapes_.load(); }
  size_t bytes() const { return bytes_.load(); }

 private:
  void Loop(int port, absl::Duration interval) {
    CURL* curl = curl_easy_init();
    const std::string url = absl::StrCat("http://127.0.0.1:", port, "/metrics");
    size_t got = 0;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, CountBytes);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &got);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
    do {
      got = 0;
      long code = 0;  // NOLINT(runtime/int): libcurl's type
      if (curl_easy_perform(curl) == CURLE_OK &&
          curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK &&
          code == 200) {
        scrapes_.fetch_add(1);
        bytes_.fetch_add(got);
      }
    } while (!stop_.WaitForNotificationWithTimeout(interval));
    curl_easy_cleanup(curl);
  }

  absl::Notification stop_;
  std::atomic<int> scrapes_{0};
  std::atomic<size_t> bytes_{0};
  std::thread thread_;  // last: starts once the rest is there
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // Abseil's lock-order graph costs a few percent on every lock; the
  // thread-safety annotations already check lock use at build time.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const int tasks = absl::GetFlag(FLAGS_tasks);
  if (!bench::LoadShapeOk(absl::GetFlag(FLAGS_channels),
                          absl::GetFlag(FLAGS_caller_threads))) {
    return 2;
  }

  std::unique_ptr<server::TaskStore> store;
  server::auth::TokenStore* token_store = nullptr;
  std::unique_ptr<server::PgLeaderLease> lease;
  std::unique_ptr<server::DurableOutbox> outbox;
  std::unique_ptr<server::Scheduler> scheduler;
  std::unique_ptr<server::BlockingPool> pool;
  std::unique_ptr<server::auth::ApiTokens> api_tokens;
  std::unique_ptr<server::auth::Authenticator> authenticator;
  std::string token;  // what the clients send, if anything
  const std::string tls_dir = absl::GetFlag(FLAGS_tls_dir);
  auto tls_files = [&](const std::string& name) {
    return common::TlsOptions{
        .cert_file = absl::StrCat(tls_dir, "/", name, ".pem"),
        .key_file = absl::StrCat(tls_dir, "/", name, ".key"),
        .ca_file = absl::StrCat(tls_dir, "/ca.pem")};
  };
  const common::PeerAuthorizer workers_allowed({"crucible-worker"});
  std::unique_ptr<server::TaskService> task_service;
  std::unique_ptr<server::QueueService> queue_service;
  std::unique_ptr<common::GrpcServer> grpc_server;
  std::unique_ptr<common::MetricsServer> metrics_server;
  std::unique_ptr<Scraper> scraper;  // goes before the server it scrapes
  std::string target = absl::GetFlag(FLAGS_server);
  if (target.empty()) {
    const std::string uri = absl::GetFlag(FLAGS_store);
    if (!uri.empty()) {
      auto opened = server::PgTaskStore::Open({.uri = uri});
      if (!opened.ok()) {
        std::fprintf(stderr, "store: %s\n", opened.status().ToString().c_str());
        return 1;
      }
      auto connection = server::PgConnection::Connect(uri);
      absl::Status emptied = connection.status();
      if (emptied.ok()) {
        emptied =
            (*connection)
                ->ExecScript(
                    "TRUNCATE tasks, task_labels, output_chunks; DELETE FROM "
                    "crucible_leader");
      }
      auto connected =
          server::PgLeaderLease::Connect({.uri = uri, .holder = "queue-bench"});
      absl::Notification never;
      absl::StatusOr<server::PgFence> fence =
          connected.ok()
              ? (*connected)->Acquire(never, [](const std::string&) {})
              : absl::StatusOr<server::PgFence>(connected.status());
      if (!emptied.ok() || !fence.ok()) {
        std::fprintf(
            stderr, "store: %s\n",
            (emptied.ok() ? fence.status() : emptied).ToString().c_str());
        return 1;
      }
      lease = *std::move(connected);
      lease->KeepRenewing([](absl::string_view reason) {
        std::fprintf(stderr, "lost the leader lease: %s\n",
                     std::string(reason).c_str());
        std::_Exit(1);
      });
      (*opened)->SetFence(*fence);
      token_store = opened->get();
      store = *std::move(opened);
    } else {
      std::string db = absl::GetFlag(FLAGS_db);
      for (const char* suffix : {"", "-wal", "-shm"}) {
        std::filesystem::remove(db + suffix);
      }
      auto opened = server::SqliteTaskStore::Open({.path = db});
      if (!opened.ok()) {
        std::fprintf(stderr, "store: %s\n", opened.status().ToString().c_str());
        return 1;
      }
      token_store = opened->get();
      store = *std::move(opened);
    }
    outbox = std::make_unique<server::DurableOutbox>(
        *store, server::DurableOutboxOptions{});
    auto created =
        server::Scheduler::Create({}, *store, *outbox, common::Clock::Real());
    if (!created.ok()) return 1;
    scheduler = *std::move(created);
    pool = std::make_unique<server::BlockingPool>(
        absl::GetFlag(FLAGS_blocking_threads));
    if (absl::GetFlag(FLAGS_tokens)) {
      auto made =
          server::auth::ApiTokens::Create(*token_store, common::Clock::Real());
      if (!made.ok()) return 1;
      api_tokens = *std::move(made);
      auto issued = api_tokens->Issue({.name = "bench",
                                       .tenant = "bench",
                                       .role = crucible::v1::ROLE_USER});
      if (!issued.ok()) return 1;
      token = issued->second;
    }
    authenticator = std::make_unique<server::auth::Authenticator>(
        server::auth::AuthenticatorOptions{.allow_anonymous = token.empty()},
        api_tokens.get(), nullptr);
    task_service = std::make_unique<server::TaskService>(*scheduler, *pool,
                                                         *authenticator);
    queue_service = std::make_unique<server::QueueService>(
        *scheduler, *pool, nullptr,
        tls_dir.empty() ? nullptr : &workers_allowed);
    common::GrpcServerOptions server_options{.listen_address = "127.0.0.1:0"};
    if (!tls_dir.empty()) {
      auto credentials = common::MakeServerCredentials(
          tls_files("server"), server_options.listen_address,
          common::ClientCertificates::kRequestAndVerify);
      if (!credentials.ok()) {
        std::fprintf(stderr, "%s\n", credentials.status().ToString().c_str());
        return 1;
      }
      server_options.credentials = *credentials;
    }
    auto started = common::GrpcServer::Start(
        server_options, {task_service.get(), queue_service.get()});
    if (!started.ok()) {
      std::fprintf(stderr, "server: %s\n", started.status().ToString().c_str());
      return 1;
    }
    grpc_server = *std::move(started);
    target = absl::StrCat("127.0.0.1:", grpc_server->port());
    if (absl::GetFlag(FLAGS_scrape_interval) > absl::ZeroDuration()) {
      auto served = common::MetricsServer::Start("127.0.0.1:0");
      if (!served.ok()) {
        std::fprintf(stderr, "metrics: %s\n",
                     served.status().ToString().c_str());
        return 1;
      }
      metrics_server = *std::move(served);
      scraper = std::make_unique<Scraper>(metrics_server->port(),
                                          absl::GetFlag(FLAGS_scrape_interval));
    }
  }

  // Workers present their certificate; API clients too (a CLI would not
  // need one, but the handshake costs the same).
  std::shared_ptr<grpc::ChannelCredentials> client_credentials;
  if (!tls_dir.empty()) {
    auto credentials = common::MakeChannelCredentials(tls_files("worker"));
    if (!credentials.ok()) {
      std::fprintf(stderr, "%s\n", credentials.status().ToString().c_str());
      return 1;
    }
    client_credentials = *credentials;
  }
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < absl::GetFlag(FLAGS_channels); ++i) {
    channels.push_back(bench::Channel(target, i, client_credentials));
  }
  std::atomic<bool> stop{false};
  std::atomic<int64_t> completed{0};
  std::atomic<int64_t> messages{0};  // carrying assignments
  std::vector<std::thread> workers;
  std::vector<std::unique_ptr<grpc::ClientContext>> worker_ctxs;
  for (int i = 0; i < absl::GetFlag(FLAGS_workers); ++i) {
    worker_ctxs.push_back(std::make_unique<grpc::ClientContext>());
    workers.emplace_back(
        bench::Worker, bench::Channel(target, 100 + i, client_credentials), i,
        absl::GetFlag(FLAGS_credits), worker_ctxs.back().get(), std::ref(stop),
        std::ref(completed), std::ref(messages));
  }
  auto control =
      v1::TaskService::NewStub(bench::Channel(target, 99, client_credentials));

  absl::Time start = absl::Now();
  bench::CreateLoad creator(channels, tasks,
                            absl::GetFlag(FLAGS_caller_threads),
                            absl::GetFlag(FLAGS_batch));
  if (!token.empty()) creator.SetToken(token);
  creator.Run(absl::GetFlag(FLAGS_inflight));
  absl::Time created = absl::Now();
  bool idle = WaitIdle(*control, token, absl::Minutes(5));
  absl::Time end = absl::Now();
  stop = true;
  for (auto& ctx : worker_ctxs) ctx->TryCancel();  // ends the worker streams
  for (std::thread& t : workers) t.join();
  grpc_server.reset();
  if (scraper) {
    std::printf(
        "metrics: %d scrapes every %s, %zu bytes each\n", scraper->scrapes(),
        absl::FormatDuration(absl::GetFlag(FLAGS_scrape_interval)).c_str(),
        scraper->bytes() / std::max(1, scraper->scrapes()));
  }

  double secs = absl::ToDoubleSeconds(end - start);
  std::printf(
      "tasks=%d batch=%d inflight=%d workers=%d credits=%d%s%s\n"
      "created in %.2fs (%.0f/s); all ended after %.2fs%s\n"
      "throughput: %.0f tasks/s created -> leased -> completed\n"
      "completions sent: %lld in %lld messages, CreateTask failures retried: "
      "%d\n",
      tasks, absl::GetFlag(FLAGS_batch), absl::GetFlag(FLAGS_inflight),
      absl::GetFlag(FLAGS_workers), absl::GetFlag(FLAGS_credits),
      tls_dir.empty() ? "" : " tls", token.empty() ? "" : " tokens",
      absl::ToDoubleSeconds(created - start),
      tasks / absl::ToDoubleSeconds(created - start), secs,
      idle ? "" : " (TIMED OUT waiting)", tasks / secs,
      static_cast<long long>(completed.load()),
      static_cast<long long>(messages.load()), creator.failures());
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  double cpu = usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
               (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  std::printf(
      "cpu: %.2fs user+sys in this process (clients, workers%s): %.0f us per "
      "task, %.2f cores busy\n",
      cpu, store ? ", server" : "", cpu / tasks * 1e6, cpu / secs);
  if (outbox) {
    std::printf("store commits (batches): %lld, %.1f writes per commit\n",
                static_cast<long long>(outbox->batches_committed()),
                static_cast<double>(outbox->LastTicket()) /
                    std::max<int64_t>(1, outbox->batches_committed()));
  }
  return idle ? 0 : 1;
}
