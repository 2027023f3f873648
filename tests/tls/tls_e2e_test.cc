// Mutual TLS end to end, with the real engine behind the real docker-proxy:
// crucible-server, crucible-executor and crucible-worker with certificates
// made at test time, a task through TaskService over TLS and through the
// CLI with --tls-ca, run by the executor the worker reaches over mutual TLS.
// The executor's certificate names only crucible-executor (no IP), as on
// Kubernetes, where the worker dials pod IPs with --executor_tls_name.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"
#include "tests/testing/process_flags.h"
#include "tests/testing/test_stack.h"
#include "tests/tls/tls_certs.h"

namespace {

using testing_util::BinaryPath;
using testing_util::Process;
using tls_testing::ClientCredentials;
using tls_testing::FreshChannel;
using tls_testing::TlsFlags;

constexpr char kImage[] = "localhost/crucible/busybox:latest";

// The flags every test server gets, but TLS instead of --insecure.
std::vector<std::string> WithoutInsecure(std::vector<std::string> flags) {
  std::erase(flags, "--insecure");
  return flags;
}

class TlsEndToEndTest : public testing::Test {
 protected:
  void SetUp() override {
    stack_ = testing_util::TestStackFromEnv();
    if (stack_.docker_host.empty()) {
      if (testing_util::InCi()) FAIL() << "no engine; run through ctest";
      GTEST_SKIP() << "no engine (CRUCIBLE_TEST_DOCKER_HOST)";
    }
    dir_ = testing_util::MakeTempDir("tls-e2e");
    certs_ = dir_ + "/certs";
    ASSERT_TRUE(tls_testing::MakeCerts(certs_).ok());
    // No IP address: the worker must verify it by --executor_tls_name.
    ASSERT_TRUE(
        tls_testing::IssueCert(certs_, "executor", {"DNS:crucible-executor"})
            .ok());
  }

  int Start(const std::string& name, std::vector<std::string> args,
            std::optional<Process>& process) {
    const std::string port_file = absl::StrCat(dir_, "/", name, ".port");
    args.insert(args.begin(), BinaryPath("crucible-" + name));
    args.push_back("--listen=127.0.0.1:0");
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

  // Waits until the worker's health ("" on its plaintext port) is SERVING:
  // its stream to the server is open and the executor in rotation.
  bool WorkerReady(int port) {
    auto stub = grpc::health::v1::Health::NewStub(
        FreshChannel(port, grpc::InsecureChannelCredentials()));
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
      grpc::health::v1::HealthCheckResponse response;
      if (stub->Check(&ctx, {}, &response).ok() &&
          response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(100));  // polling readiness
    }
    return false;
  }

  int StartServer() {
    std::vector<std::string> args =
        WithoutInsecure(testing_util::ServerTestFlags());
    for (std::string& f : TlsFlags(certs_, "server")) args.push_back(f);
    args.push_back("--db=" + dir_ + "/crucible.db");
    return Start("server", args, server_);
  }

  testing_util::TestStack stack_;
  std::string dir_, certs_;
  std::optional<Process> server_, executor_, worker_;
};

TEST_F(TlsEndToEndTest, TaskRunsOverMutualTlsOnEveryHop) {
  const int server_port = StartServer();
  std::vector<std::string> executor_args =
      WithoutInsecure(testing_util::ExecutorTestFlags());
  for (std::string& f : TlsFlags(certs_, "executor")) {
    executor_args.push_back(f);
  }
  executor_args.push_back("--docker_host=" + stack_.docker_host);
  executor_args.push_back("--executor_id=tls-e2e-" + std::to_string(getpid()));
  const int executor_port = Start("executor", executor_args, executor_);
  ASSERT_GT(server_port, 0);
  ASSERT_GT(executor_port, 0);
  std::vector<std::string> worker_args =
      WithoutInsecure(testing_util::WorkerTestFlags());
  for (std::string& f : TlsFlags(certs_, "worker")) worker_args.push_back(f);
  worker_args.push_back(absl::StrCat("--server=127.0.0.1:", server_port));
  worker_args.push_back(absl::StrCat("--executors=127.0.0.1:", executor_port));
  worker_args.push_back("--executor_tls_name=crucible-executor");
  const int worker_port = Start("worker", worker_args, worker_);
  ASSERT_GT(worker_port, 0);
  ASSERT_TRUE(WorkerReady(worker_port)) << worker_->Log();

  // The CLI over TLS, trusting the CA: submit waits for the end and prints
  // the output.
  auto cli = testing_util::RunCommand(
      {BinaryPath("crucible"), "--server",
       absl::StrCat("127.0.0.1:", server_port), "--tls-ca", certs_ + "/ca.pem",
       "submit", "--image", kImage, "--timeout", "60s", "--", "sh", "-c",
       "echo over-mutual-tls"},
      absl::Seconds(120));
  ASSERT_TRUE(cli.ok());
  EXPECT_EQ(cli->exit_code, 0) << cli->err << "\n" << worker_->Log();
  EXPECT_TRUE(absl::StrContains(cli->out, "over-mutual-tls")) << cli->out;

  // A gRPC client over TLS sees the task it made.
  auto tasks = crucible::v1::TaskService::NewStub(
      FreshChannel(server_port, ClientCredentials(certs_ + "/ca.pem")));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  crucible::v1::ListTasksRequest list;
  crucible::v1::ListTasksResponse listed;
  grpc::Status s = tasks->ListTasks(&ctx, list, &listed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(listed.tasks_size(), 1);
  EXPECT_EQ(listed.tasks(0).state(), crucible::v1::TASK_STATE_SUCCEEDED);
}

// Without --executor_tls_name the worker verifies the executor against the
// address it dials (127.0.0.1), which the certificate does not name: the
// executor never enters rotation.
TEST_F(TlsEndToEndTest, WorkerRefusesAnExecutorCertificateOfAnotherName) {
  std::vector<std::string> executor_args =
      WithoutInsecure(testing_util::ExecutorTestFlags());
  for (std::string& f : TlsFlags(certs_, "executor")) {
    executor_args.push_back(f);
  }
  executor_args.push_back("--docker_host=" + stack_.docker_host);
  executor_args.push_back("--executor_id=tls-e2e-n-" +
                          std::to_string(getpid()));
  const int executor_port = Start("executor", executor_args, executor_);
  ASSERT_GT(executor_port, 0);
  std::vector<std::string> worker_args =
      WithoutInsecure(testing_util::WorkerTestFlags());
  for (std::string& f : TlsFlags(certs_, "worker")) worker_args.push_back(f);
  const int server_port = StartServer();
  ASSERT_GT(server_port, 0);
  worker_args.push_back(absl::StrCat("--server=127.0.0.1:", server_port));
  worker_args.push_back(absl::StrCat("--executors=127.0.0.1:", executor_port));
  ASSERT_GT(Start("worker", worker_args, worker_), 0);
  // GLOG_v=1 (Start): the worker logs each failed check of the executor.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!absl::StrContains(worker_->Log(), "not serving:") &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));  // polling the log
  }
  EXPECT_TRUE(absl::StrContains(worker_->Log(), "not serving:"))
      << worker_->Log();
  // The fleet's own line, not the readiness reason ("no executor in
  // rotation").
  EXPECT_FALSE(absl::StrContains(
      worker_->Log(),
      absl::StrCat("executor 127.0.0.1:", executor_port, " in rotation")))
      << worker_->Log();
}

}  // namespace
