// Why a real process is NOT_SERVING, as `crucible health` shows it (the
// crucible-health-reason trailer of grpc.health.v1.Health/Check): a worker
// without a server, an executor without an engine, a server draining. Needs
// no engine.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "crucible/v1/queue_service.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"
#include "tests/testing/process_flags.h"
#include "tests/testing/test_stack.h"

namespace {

namespace v1 = crucible::v1;
using testing_util::CommandResult;
using testing_util::Process;

constexpr absl::Duration kStartTimeout = absl::Seconds(30);

// A port nothing listens on now (bound, read back, closed): for
// --health_listen, which writes no port file.
int UnusedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

class HealthReasonProcessTest : public testing::Test {
 protected:
  void SetUp() override { dir_ = testing_util::MakeTempDir("health-reason"); }

  // Starts `binary` on a free port with `extra` flags; returns its port.
  int Start(const std::string& binary, std::vector<std::string> extra) {
    const std::string port_file = absl::StrCat(dir_, "/", binary, ".port");
    std::vector<std::string> argv = {testing_util::BinaryPath(binary),
                                     "--listen=127.0.0.1:0",
                                     "--port_file=" + port_file};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = Process::Start(testing_util::WithTestFlags(std::move(argv)),
                            absl::StrCat(dir_, "/", binary, ".log"));
    EXPECT_TRUE(p.ok()) << p.status();
    if (!p.ok()) return 0;
    process_ = std::make_unique<Process>(*std::move(p));
    auto port =
        testing_util::WaitForPortFile(port_file, *process_, kStartTimeout);
    EXPECT_TRUE(port.ok()) << port.status() << process_->Log();
    return port.ok() ? *port : 0;
  }

  // `crucible health` with `args`.
  CommandResult Health(std::vector<std::string> args) {
    args.insert(args.begin(), {testing_util::BinaryPath("crucible"), "health"});
    absl::StatusOr<CommandResult> r =
        testing_util::RunCommand(args, absl::Seconds(30));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : CommandResult{};
  }

  // Runs `crucible health` with `args` until its output starts with
  // `prefix` (or 20 s passed); returns the last result.
  CommandResult HealthUntil(std::vector<std::string> args,
                            const std::string& prefix) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    CommandResult r = Health(args);
    while (!absl::StartsWith(r.out, prefix) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(100));  // polling a state
      r = Health(args);
    }
    return r;
  }

  std::string dir_;
  std::unique_ptr<Process> process_;
};

TEST_F(HealthReasonProcessTest, WorkerWithoutServerOrExecutorSaysSo) {
  const int port = Start("crucible-worker",
                         {"--server=127.0.0.1:1", "--executors=127.0.0.1:2"});
  ASSERT_GT(port, 0);
  const std::string address = absl::StrCat("127.0.0.1:", port);
  // Once a connection attempt failed, its error is part of the reason.
  CommandResult r =
      HealthUntil({address},
                  "NOT_SERVING: no stream to the server and no executor in "
                  "rotation (UNAVAILABLE: ");
  EXPECT_TRUE(absl::StartsWith(r.out,
                               "NOT_SERVING: no stream to the server and no "
                               "executor in rotation (UNAVAILABLE: "))
      << r.out << r.err << process_->Log();
  EXPECT_EQ(r.exit_code, 1);
  // Alive all the same: liveness says nothing more.
  r = Health({"--service", "liveness", address});
  EXPECT_EQ(r.out, "SERVING\n");
  EXPECT_EQ(r.exit_code, 0);
}

TEST_F(HealthReasonProcessTest, ExecutorWithoutEngineNamesTheEngineAndError) {
  const int port = Start(
      "crucible-executor",
      {"--docker_host=tcp://127.0.0.1:1", "--unhealthy_ping_interval=200ms"});
  ASSERT_GT(port, 0);
  const std::string address = absl::StrCat("127.0.0.1:", port);
  const std::string why =
      "NOT_SERVING: container engine unreachable (tcp://127.0.0.1:1): "
      "UNAVAILABLE: ";
  CommandResult r = HealthUntil({address}, why);
  EXPECT_TRUE(absl::StartsWith(r.out, why)) << r.out << process_->Log();
  EXPECT_EQ(r.exit_code, 1);
  // The JSON output carries it as "reason".
  r = Health({"-o", "json", address});
  EXPECT_EQ(r.exit_code, 1);
  nlohmann::json json = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(json.is_object()) << r.out;
  EXPECT_EQ(json["status"], "NOT_SERVING");
  EXPECT_TRUE(absl::StartsWith(json.value("reason", ""),
                               why.substr(std::string("NOT_SERVING: ").size())))
      << r.out;
}

// A server stopping (SIGTERM) waits up to --shutdown_grace for a worker's
// stream that does not end; meanwhile its health port (--health_listen)
// answers, NOT_SERVING because it drains.
TEST_F(HealthReasonProcessTest, ServerDrainingSaysItStops) {
  const int health_port = UnusedPort();
  ASSERT_GT(health_port, 0);
  const int port =
      Start("crucible-server",
            {absl::StrCat("--db=", dir_, "/tasks.db"),
             "--fleet_admission=false", "--shutdown_grace=30s",
             absl::StrCat("--health_listen=127.0.0.1:", health_port)});
  ASSERT_GT(port, 0);
  const std::string health_address = absl::StrCat("127.0.0.1:", health_port);
  CommandResult r = Health({health_address});
  EXPECT_EQ(r.out, "SERVING\n") << r.err << process_->Log();

  // A worker's stream that is never half-closed.
  std::shared_ptr<grpc::Channel> channel = grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  auto queue = v1::QueueService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  auto stream = queue->Connect(&ctx);
  v1::ConnectRequest hello;
  hello.mutable_hello()->set_worker_id("held-worker");
  ASSERT_TRUE(stream->Write(hello));
  {  // answered after the stream on its connection: the stream is open
    auto health = grpc::health::v1::Health::NewStub(channel);
    grpc::ClientContext check_ctx;
    check_ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    ASSERT_TRUE(health->Check(&check_ctx, request, &response).ok());
  }

  ASSERT_EQ(kill(process_->pid(), SIGTERM), 0);
  const std::string why = "NOT_SERVING: stopping (signal 15): draining\n";
  r = HealthUntil({health_address}, why);
  EXPECT_EQ(r.out, why) << r.err << process_->Log();
  EXPECT_EQ(r.exit_code, 1);
  r = HealthUntil({"--service", "liveness", health_address}, why);
  EXPECT_EQ(r.out, why) << r.err;

  ctx.TryCancel();
  stream->Finish();
  absl::StatusOr<int> status = process_->Wait(kStartTimeout);
  ASSERT_TRUE(status.ok()) << status.status() << process_->Log();
}

}  // namespace
