// Transport security of the real binaries over real sockets, no engine:
// certificates made at test time (deploy/local/certs), crucible-server and
// crucible-executor serving mutual TLS, clients with and without the right
// certificate, a rotation on disk, the CLI, and the refusals to start.
#include <sys/wait.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "crucible/v1/executor_service.grpc.pb.h"
#include "crucible/v1/queue_service.grpc.pb.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"
#include "tests/testing/test_stack.h"
#include "tests/tls/tls_certs.h"

namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using testing_util::BinaryPath;
using testing_util::Process;
using tls_testing::ClientCredentials;
using tls_testing::FreshChannel;
using tls_testing::TlsFlags;

void SetDeadline(grpc::ClientContext& ctx) {
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
}

// grpc.health.v1.Health/Check of "" over `channel`; the call's status.
grpc::Status Check(const std::shared_ptr<grpc::Channel>& channel,
                   grpc::ClientContext* ctx = nullptr) {
  grpc::ClientContext own;
  if (ctx == nullptr) ctx = &own;
  SetDeadline(*ctx);
  HealthCheckResponse response;
  return Health::NewStub(channel)->Check(ctx, HealthCheckRequest(), &response);
}

// Opens QueueService.Connect, says hello, half-closes: the server ends an
// admitted stream OK at the half-close, and a refused one with its code.
grpc::Status ConnectAsWorker(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  auto stub = crucible::v1::QueueService::NewStub(channel);
  auto stream = stub->Connect(&ctx);
  crucible::v1::ConnectRequest hello;
  hello.mutable_hello()->set_worker_id("tls-test-worker");
  stream->Write(hello);
  stream->WritesDone();
  crucible::v1::ConnectResponse response;
  while (stream->Read(&response)) {
  }
  return stream->Finish();
}

class TlsProcessTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing_util::MakeTempDir("tls");
    certs_ = dir_ + "/certs";
    other_ = dir_ + "/other-ca";
    ASSERT_TRUE(tls_testing::MakeCerts(certs_).ok());
    ASSERT_TRUE(tls_testing::MakeCerts(other_).ok());
  }

  // Starts `binary` with `args`, a port file and --listen=127.0.0.1:0
  // unless `args` has a --listen; returns the bound port (0 on failure).
  int Start(const std::string& name, const std::string& binary,
            std::vector<std::string> args, std::optional<Process>& process) {
    const std::string port_file = absl::StrCat(dir_, "/", name, ".port");
    args.insert(args.begin(), BinaryPath(binary));
    bool listen = false;
    for (const std::string& a : args) {
      listen = listen || absl::StartsWith(a, "--listen=");
    }
    if (!listen) args.push_back("--listen=127.0.0.1:0");
    args.push_back("--port_file=" + port_file);
    absl::StatusOr<Process> p =
        Process::Start(args, absl::StrCat(dir_, "/", name, ".log"),
                       {"GLOG_logtostderr=1", "GLOG_v=1"});
    EXPECT_TRUE(p.ok()) << p.status();
    if (!p.ok()) return 0;
    process.emplace(*std::move(p));
    absl::StatusOr<int> port =
        testing_util::WaitForPortFile(port_file, *process, absl::Seconds(30));
    EXPECT_TRUE(port.ok()) << port.status() << "\n" << process->Log();
    return port.ok() ? *port : 0;
  }

  int StartServer(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = TlsFlags(certs_, "server");
    args.push_back("--db=" + dir_ + "/crucible.db");
    args.push_back("--tls_reload_interval=1s");
    args.insert(args.end(), extra.begin(), extra.end());
    return Start("server", "crucible-server", args, server_);
  }

  // An executor whose engine is unreachable: not ready, but it serves.
  int StartExecutor(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = TlsFlags(certs_, "executor");
    args.push_back("--docker_host=tcp://127.0.0.1:1");
    args.push_back("--executor_id=tls-test-" + std::to_string(getpid()));
    args.insert(args.end(), extra.begin(), extra.end());
    return Start("executor", "crucible-executor", args, executor_);
  }

  std::string Ca() const { return certs_ + "/ca.pem"; }

  std::string dir_, certs_, other_;
  std::optional<Process> server_, executor_, worker_;
};

TEST_F(TlsProcessTest, ServerAnswersClientsThatTrustItsCa) {
  const int port = StartServer();
  ASSERT_GT(port, 0);
  // A client without a certificate reaches the health service (and
  // TaskService, whose callers authenticate with tokens).
  EXPECT_TRUE(Check(FreshChannel(port, ClientCredentials(Ca()))).ok());
}

TEST_F(TlsProcessTest, PlaintextClientCannotTalkToTlsServer) {
  const int port = StartServer();
  ASSERT_GT(port, 0);
  EXPECT_EQ(Check(FreshChannel(port, grpc::InsecureChannelCredentials()))
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsProcessTest, ClientThatDoesNotTrustTheCaFails) {
  const int port = StartServer();
  ASSERT_GT(port, 0);
  EXPECT_EQ(Check(FreshChannel(port, ClientCredentials(other_ + "/ca.pem")))
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsProcessTest, QueueServiceAdmitsOnlyWorkerCertificatesOfItsCa) {
  const int port = StartServer();
  ASSERT_GT(port, 0);
  // No client certificate: the handshake succeeds (API clients), the
  // stream does not.
  EXPECT_EQ(
      ConnectAsWorker(FreshChannel(port, ClientCredentials(Ca()))).error_code(),
      grpc::StatusCode::UNAUTHENTICATED);
  // A worker certificate of another CA: no handshake.
  EXPECT_EQ(ConnectAsWorker(
                FreshChannel(port, ClientCredentials(Ca(), other_, "worker")))
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // The right CA, an identity not allowed (--worker_identities defaults
  // to crucible-worker).
  EXPECT_EQ(ConnectAsWorker(
                FreshChannel(port, ClientCredentials(Ca(), certs_, "client")))
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // The worker's own certificate.
  grpc::Status ok = ConnectAsWorker(
      FreshChannel(port, ClientCredentials(Ca(), certs_, "worker")));
  EXPECT_TRUE(ok.ok()) << ok.error_code() << " " << ok.error_message();
}

TEST_F(TlsProcessTest, WorkerIdentitiesFlagChoosesWhoIsAWorker) {
  const int port = StartServer({"--worker_identities=crucible-c*"});
  ASSERT_GT(port, 0);
  EXPECT_TRUE(ConnectAsWorker(
                  FreshChannel(port, ClientCredentials(Ca(), certs_, "client")))
                  .ok());
  EXPECT_EQ(ConnectAsWorker(
                FreshChannel(port, ClientCredentials(Ca(), certs_, "worker")))
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(TlsProcessTest, RotatedServerCertificateIsServedWithoutRestart) {
  const int port = StartServer();
  ASSERT_GT(port, 0);
  const std::string before = testing_util::ReadFile(certs_ + "/server.pem");
  auto served = [&]() -> std::string {
    grpc::ClientContext ctx;
    if (!Check(FreshChannel(port, ClientCredentials(Ca())), &ctx).ok()) {
      return "";
    }
    std::vector<grpc::string_ref> pem =
        ctx.auth_context()->FindPropertyValues("x509_pem_cert");
    return pem.empty() ? "" : std::string(pem[0].data(), pem[0].size());
  };
  ASSERT_EQ(served(), before);
  ASSERT_TRUE(tls_testing::IssueCert(certs_, "server",
                                     {"DNS:localhost", "IP:127.0.0.1"})
                  .ok());
  const std::string after = testing_util::ReadFile(certs_ + "/server.pem");
  ASSERT_NE(after, before);
  // --tls_reload_interval=1s: new connections get the new certificate.
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  std::string now = served();
  while (now != after && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(200));  // polling the file watcher
    now = served();
  }
  EXPECT_EQ(now, after);
  EXPECT_TRUE(server_->Running());
}

// A CA rotation: the --tls_ca bundle gains a second CA on disk, and workers
// whose certificates it signed are admitted from then on, no restart.
TEST_F(TlsProcessTest, CaBundleRotatedOnDiskAdmitsTheNewCasWorkers) {
  const std::string bundle = dir_ + "/bundle.pem";
  const std::string ca1 = testing_util::ReadFile(Ca());
  const std::string ca2 = testing_util::ReadFile(other_ + "/ca.pem");
  auto write = [&](const std::string& text) {
    const std::string tmp = bundle + ".tmp";
    FILE* f = fopen(tmp.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs(text.c_str(), f);
    fclose(f);
    ASSERT_EQ(rename(tmp.c_str(), bundle.c_str()), 0);
  };
  write(ca1);
  std::vector<std::string> args = {
      "--tls_cert=" + certs_ + "/server.pem",
      "--tls_key=" + certs_ + "/server.key", "--tls_ca=" + bundle,
      "--tls_reload_interval=1s", "--db=" + dir_ + "/crucible.db"};
  const int port = Start("server", "crucible-server", args, server_);
  ASSERT_GT(port, 0);
  auto new_worker = [&] {
    return ConnectAsWorker(
        FreshChannel(port, ClientCredentials(Ca(), other_, "worker")));
  };
  EXPECT_EQ(new_worker().error_code(), grpc::StatusCode::UNAVAILABLE);
  write(ca1 + ca2);
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  grpc::Status status = new_worker();
  while (!status.ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(200));  // polling the file watcher
    status = new_worker();
  }
  EXPECT_TRUE(status.ok()) << status.error_code() << " "
                           << status.error_message();
  // The old CA's workers still connect.
  EXPECT_TRUE(ConnectAsWorker(
                  FreshChannel(port, ClientCredentials(Ca(), certs_, "worker")))
                  .ok());
}

TEST_F(TlsProcessTest, CliReachesTlsServerWithTlsCa) {
  const int port = StartServer();
  ASSERT_GT(port, 0);
  const std::string address = absl::StrCat("127.0.0.1:", port);
  auto ok = testing_util::RunCommand(
      {BinaryPath("crucible"), "--tls-ca", Ca(), "health", address},
      absl::Seconds(20));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->exit_code, 0) << ok->err;
  EXPECT_EQ(ok->out, "SERVING\n");
  // The environment does the same (CRUCIBLE_TLS_CA), as do the old
  // --ca-cert and a client certificate.
  auto env =
      testing_util::RunCommand({BinaryPath("crucible"), "health", address},
                               absl::Seconds(20), {"CRUCIBLE_TLS_CA=" + Ca()});
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->exit_code, 0) << env->err;
  auto with_cert = testing_util::RunCommand(
      {BinaryPath("crucible"), "--ca-cert", Ca(), "--tls-cert",
       certs_ + "/client.pem", "--tls-key", certs_ + "/client.key", "health",
       address},
      absl::Seconds(20));
  ASSERT_TRUE(with_cert.ok());
  EXPECT_EQ(with_cert->exit_code, 0) << with_cert->err;
  // Another name to check than the host dialled (a port-forward): one the
  // certificate carries works, another does not.
  auto named = testing_util::RunCommand(
      {BinaryPath("crucible"), "--tls-ca", Ca(), "--tls-server-name",
       "crucible-server", "health", address},
      absl::Seconds(20));
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->exit_code, 0) << named->err;
  auto misnamed = testing_util::RunCommand(
      {BinaryPath("crucible"), "--tls-ca", Ca(), "--tls-server-name",
       "elsewhere.example", "health", address},
      absl::Seconds(20));
  ASSERT_TRUE(misnamed.ok());
  EXPECT_NE(misnamed->exit_code, 0);
  // Plaintext against TLS fails.
  auto plain = testing_util::RunCommand(
      {BinaryPath("crucible"), "health", address}, absl::Seconds(20));
  ASSERT_TRUE(plain.ok());
  EXPECT_NE(plain->exit_code, 0);
}

// The CLI's commands over TLS, not only its health check: submit -d, get
// and list against a real TLS server (no worker: the task stays queued),
// trusting the CA by --tls-ca, by the server name the certificate carries,
// and by --tls, which trusts gRPC's default roots (here pointed at the
// test's CA by GRPC_DEFAULT_SSL_ROOTS_FILE_PATH). Plaintext to the TLS port,
// or --tls with roots of another CA, fails as the user guide says
// ("Connecting", "Exit codes"): UNAVAILABLE, exit 69, and makes no task.
TEST_F(TlsProcessTest, CliSubmitsGetsAndListsOverTls) {
  // No tokens, and no worker: admission cannot ask the fleet.
  const int port =
      StartServer({"--allow_anonymous", "--fleet_admission=false"});
  ASSERT_GT(port, 0);
  const std::vector<std::string> tls_ca = {BinaryPath("crucible"), "--server",
                                           absl::StrCat("127.0.0.1:", port),
                                           "--tls-ca", Ca()};
  auto run = [&](std::vector<std::string> argv,
                 std::vector<std::string> env = {}) {
    auto r = testing_util::RunCommand(argv, absl::Seconds(60), env);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : testing_util::CommandResult{.exit_code = -1};
  };
  auto with = [&](std::vector<std::string> head,
                  std::vector<std::string> command) {
    head.insert(head.end(), command.begin(), command.end());
    return head;
  };

  testing_util::CommandResult submitted =
      run(with(tls_ca, {"submit", "-d", "--image",
                        "localhost/crucible/busybox:latest", "--", "true"}));
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err << server_->Log();
  const std::string id(absl::StripTrailingAsciiWhitespace(submitted.out));
  ASSERT_FALSE(id.empty());
  ASSERT_FALSE(absl::StrContains(id, "\n")) << "only the id: " << id;

  testing_util::CommandResult got = run(with(tls_ca, {"get", id}));
  EXPECT_EQ(got.exit_code, 0) << got.err;
  EXPECT_TRUE(absl::StrContains(got.out, id)) << got.out;
  EXPECT_TRUE(absl::StrContains(got.out, "QUEUED")) << got.out;

  testing_util::CommandResult listed = run(with(tls_ca, {"list"}));
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_TRUE(absl::StrContains(listed.out, id)) << listed.out;

  // The name the certificate carries, checked instead of the host dialled.
  testing_util::CommandResult named =
      run(with(tls_ca, {"--tls-server-name", "crucible-server", "get", id}));
  EXPECT_EQ(named.exit_code, 0) << named.err;

  // --tls: gRPC's default roots, which the environment points at the CA.
  const std::vector<std::string> tls = {BinaryPath("crucible"), "--server",
                                        absl::StrCat("127.0.0.1:", port),
                                        "--tls"};
  testing_util::CommandResult default_roots =
      run(with(tls, {"get", id}), {"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=" + Ca()});
  EXPECT_EQ(default_roots.exit_code, 0) << default_roots.err;
  EXPECT_TRUE(absl::StrContains(default_roots.out, id)) << default_roots.out;

  // Failures: plaintext to the TLS port, and --tls with roots that do not
  // hold the test's CA. Each names UNAVAILABLE and exits 69, and neither
  // made a task.
  const std::vector<std::string> plain = {BinaryPath("crucible"), "--server",
                                          absl::StrCat("127.0.0.1:", port)};
  for (const auto& [what, argv, env] :
       std::vector<std::tuple<std::string, std::vector<std::string>,
                              std::vector<std::string>>>{
           {"plaintext", with(plain, {"list"}), {}},
           {"plaintext submit",
            with(plain, {"submit", "-d", "--image",
                         "localhost/crucible/busybox:latest", "--", "true"}),
            {}},
           {"--tls, other roots",
            with(tls, {"list"}),
            {"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=" + other_ + "/ca.pem"}}}) {
    testing_util::CommandResult failed = run(argv, env);
    EXPECT_EQ(failed.exit_code, 69) << what << ": " << failed.err;
    EXPECT_TRUE(absl::StartsWith(failed.err, "crucible: UNAVAILABLE"))
        << what << ": " << failed.err;
    EXPECT_EQ(failed.out, "") << what;
  }
  listed = run(with(tls_ca, {"list"}));
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  const std::vector<std::string> rows =
      absl::StrSplit(absl::StripTrailingAsciiWhitespace(listed.out), '\n');
  EXPECT_EQ(rows.size(), 2u) << "a header and the first submit's task only:\n"
                             << listed.out;
}

TEST_F(TlsProcessTest, ExecutorRefusesClientsWithoutWorkerCertificate) {
  const int port = StartExecutor();
  ASSERT_GT(port, 0);
  // No certificate: no handshake at all.
  EXPECT_EQ(Check(FreshChannel(port, ClientCredentials(Ca()))).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Check(FreshChannel(port, grpc::InsecureChannelCredentials()))
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // Another CA's worker certificate: no handshake.
  EXPECT_EQ(Check(FreshChannel(port, ClientCredentials(Ca(), other_, "worker")))
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // The CA's certificate of a non-worker: handshake, then refused.
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    crucible::v1::DescribeResponse response;
    EXPECT_EQ(crucible::v1::ExecutorService::NewStub(
                  FreshChannel(port, ClientCredentials(Ca(), certs_, "client")))
                  ->Describe(&ctx, crucible::v1::DescribeRequest(), &response)
                  .error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {  // Run and Cancel, likewise.
    auto stub = crucible::v1::ExecutorService::NewStub(
        FreshChannel(port, ClientCredentials(Ca(), certs_, "client")));
    grpc::ClientContext run_ctx;
    SetDeadline(run_ctx);
    crucible::v1::RunRequest run;
    run.set_run_id("r1");
    auto reader = stub->Run(&run_ctx, run);
    crucible::v1::RunResponse event;
    EXPECT_FALSE(reader->Read(&event));
    EXPECT_EQ(reader->Finish().error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    grpc::ClientContext cancel_ctx;
    SetDeadline(cancel_ctx);
    crucible::v1::CancelRequest cancel;
    cancel.set_run_id("r1");
    crucible::v1::CancelResponse cancelled;
    EXPECT_EQ(stub->Cancel(&cancel_ctx, cancel, &cancelled).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  // The worker's certificate.
  auto worker = FreshChannel(port, ClientCredentials(Ca(), certs_, "worker"));
  EXPECT_TRUE(Check(worker).ok());
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  crucible::v1::DescribeResponse response;
  grpc::Status described =
      crucible::v1::ExecutorService::NewStub(worker)->Describe(
          &ctx, crucible::v1::DescribeRequest(), &response);
  EXPECT_TRUE(described.ok()) << described.error_message();
}

// A real worker with its certificate: its stream to the TLS server opens
// and its health checks reach the TLS executor (NOT_SERVING: no engine).
// The server's certificate names only crucible-server, which the worker
// checks instead of the address it dials (--server_tls_name).
TEST_F(TlsProcessTest, WorkerTalksMutualTlsToServerAndExecutor) {
  ASSERT_TRUE(
      tls_testing::IssueCert(certs_, "server", {"DNS:crucible-server"}).ok());
  const int server_port = StartServer();
  const int executor_port = StartExecutor();
  ASSERT_GT(server_port, 0);
  ASSERT_GT(executor_port, 0);
  std::vector<std::string> args = TlsFlags(certs_, "worker");
  args.push_back(absl::StrCat("--server=127.0.0.1:", server_port));
  args.push_back(absl::StrCat("--executors=127.0.0.1:", executor_port));
  args.push_back("--worker_id=tls-worker");
  args.push_back("--server_tls_name=crucible-server");
  ASSERT_GT(Start("worker", "crucible-worker", args, worker_), 0);
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  bool connected = false, checked = false;
  while (!(connected && checked) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(200));  // polling the logs
    connected =
        absl::StrContains(server_->Log(), "worker tls-worker connected");
    checked = absl::StrContains(worker_->Log(), "not serving: NOT_SERVING");
  }
  EXPECT_TRUE(connected) << server_->Log();
  EXPECT_TRUE(checked) << worker_->Log();
}

// A worker with certificates still serves its --listen in plaintext, and
// only health: the probes' port carries no task data (operator guide,
// crucible-worker: "The worker's --listen serves only health and
// reflection, always in plaintext (probes), and no task data").
TEST_F(TlsProcessTest, WorkersListenIsPlaintextHealthOnly) {
  std::vector<std::string> args = TlsFlags(certs_, "worker");
  args.push_back("--server=127.0.0.1:1");
  args.push_back("--executors=127.0.0.1:2");
  const int port = Start("worker", "crucible-worker", args, worker_);
  ASSERT_GT(port, 0);
  // Health answers a plaintext client (NOT_SERVING: no server, no executor,
  // but an answer), and no TLS client: there is no TLS there.
  grpc::ClientContext health_ctx;
  SetDeadline(health_ctx);
  HealthCheckResponse response;
  grpc::Status plain =
      Health::NewStub(FreshChannel(port, grpc::InsecureChannelCredentials()))
          ->Check(&health_ctx, HealthCheckRequest(), &response);
  EXPECT_TRUE(plain.ok()) << plain.error_message();
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Check(FreshChannel(port, ClientCredentials(Ca()))).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // No task data: neither the server's nor an executor's services.
  auto channel = FreshChannel(port, grpc::InsecureChannelCredentials());
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    crucible::v1::ListTasksResponse listed;
    EXPECT_EQ(crucible::v1::TaskService::NewStub(channel)
                  ->ListTasks(&ctx, crucible::v1::ListTasksRequest(), &listed)
                  .error_code(),
              grpc::StatusCode::UNIMPLEMENTED);
  }
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    crucible::v1::DescribeResponse described;
    EXPECT_EQ(crucible::v1::ExecutorService::NewStub(channel)
                  ->Describe(&ctx, crucible::v1::DescribeRequest(), &described)
                  .error_code(),
              grpc::StatusCode::UNIMPLEMENTED);
  }
}

struct RefusedStart {
  const char* binary;
  std::vector<std::string> args;
  const char* says;
};

// Exits 2 with a message naming what to pass, before serving anything.
void ExpectRefusedStart(const std::string& dir, const RefusedStart& c) {
  std::vector<std::string> argv = {BinaryPath(c.binary)};
  argv.insert(argv.end(), c.args.begin(), c.args.end());
  auto r =
      testing_util::RunCommand(argv, absl::Seconds(30), {"GLOG_logtostderr=1"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 2) << c.binary << ": " << r->err;
  EXPECT_TRUE(absl::StrContains(r->err, c.says)) << r->err;
}

TEST_F(TlsProcessTest, ProcessesRefusePlaintextUnlessAskedAndOnlyOnLoopback) {
  const std::string db = "--db=" + dir_ + "/refused.db";
  const std::string docker = "--docker_host=tcp://127.0.0.1:1";
  const RefusedStart cases[] = {
      {"crucible-server", {"--listen=127.0.0.1:0", db}, "--insecure"},
      {"crucible-executor", {"--listen=127.0.0.1:0", docker}, "--insecure"},
      {"crucible-worker", {"--listen=127.0.0.1:0"}, "--insecure"},
      {"crucible-server",
       {"--listen=0.0.0.0:0", db, "--insecure"},
       "--insecure_listen_any"},
      {"crucible-executor",
       {"--listen=[::]:0", docker, "--insecure"},
       "--insecure_listen_any"},
      {"crucible-server",
       {"--listen=127.0.0.1:0", db, "--insecure", "--tls_ca=" + Ca()},
       "--insecure"},
      {"crucible-server",
       {"--listen=127.0.0.1:0", db, "--tls_cert=" + certs_ + "/server.pem",
        "--tls_key=" + certs_ + "/server.key"},
       "--tls_ca"},
      {"crucible-server",
       {"--listen=127.0.0.1:0", db, "--tls_cert=" + dir_ + "/missing.pem",
        "--tls_key=" + certs_ + "/server.key", "--tls_ca=" + Ca()},
       "missing.pem"},
  };
  for (const RefusedStart& c : cases) ExpectRefusedStart(dir_, c);

  // Forced: plaintext on every interface.
  std::optional<Process> forced;
  EXPECT_GT(
      Start("forced", "crucible-server",
            {db, "--insecure", "--insecure_listen_any", "--listen=0.0.0.0:0"},
            forced),
      0);
}

}  // namespace
