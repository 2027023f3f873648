// Two real crucible-server processes on one PostgreSQL store: the one that
// does not hold the leader lease is a standby, and says so (operator guide,
// "High availability (PostgreSQL)", "Leader and standbys"): gRPC health
// answers NOT_SERVING for "" and every service name, with the reason naming
// the leader ("liveness" stays SERVING: the process is alive, and a
// liveness probe must not restart a standby); every other call is
// UNAVAILABLE, "this server is a standby; the leader is <server_id>", and
// leaves nothing in the store; SIGTERM stops it with exit 0.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/postgres.h"
#include "tests/testing/process.h"
#include "tests/testing/process_flags.h"
#include "tests/testing/test_stack.h"

namespace {

namespace v1 = crucible::v1;
using testing_util::CommandResult;
using testing_util::Process;

struct Server {
  std::optional<Process> process;
  int port = 0;
};

// Starts a server named `id` on the store at `uri`; fails the test unless
// it writes its port files (a standby does too: it serves while it waits).
void StartServer(const std::string& dir, const std::string& uri,
                 const std::string& id, Server& server) {
  const std::string port_file = absl::StrCat(dir, "/", id, ".port");
  auto p = Process::Start(
      testing_util::WithTestFlags(
          {testing_util::BinaryPath("crucible-server"), "--listen=127.0.0.1:0",
           "--port_file=" + port_file, "--store=" + uri, "--server_id=" + id,
           "--leader_lease=2s", "--fleet_admission=false"}),
      absl::StrCat(dir, "/", id, ".log"));
  ASSERT_TRUE(p.ok()) << p.status();
  server.process.emplace(*std::move(p));
  auto port = testing_util::WaitForPortFile(port_file, *server.process,
                                            absl::Seconds(30));
  ASSERT_TRUE(port.ok()) << port.status() << "\n" << server.process->Log();
  server.port = *port;
}

// `crucible health [--service S] 127.0.0.1:PORT`: what it printed, and its
// exit code.
CommandResult Health(int port, const std::string& service) {
  std::vector<std::string> argv = {testing_util::BinaryPath("crucible"),
                                   "health"};
  if (!service.empty()) argv.insert(argv.end(), {"--service", service});
  argv.push_back(absl::StrCat("127.0.0.1:", port));
  auto r = testing_util::RunCommand(argv, absl::Seconds(30));
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : CommandResult{.exit_code = -1};
}

TEST(StandbyProcessTest,
     AStandbyIsNotServingAndAnswersUnavailableNamingTheLeader) {
  CRUCIBLE_REQUIRE_POSTGRES(uri);
  const std::string dir = testing_util::MakeTempDir("crucible-standby");
  Server leader;
  ASSERT_NO_FATAL_FAILURE(StartServer(dir, uri, "leader-a", leader));
  // The first server leads once it serves ""; then the second stands by.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (Health(leader.port, "").out != "SERVING\n") {
    ASSERT_LT(absl::Now(), deadline) << leader.process->Log();
    absl::SleepFor(absl::Milliseconds(100));
  }
  Server standby;
  ASSERT_NO_FATAL_FAILURE(StartServer(dir, uri, "standby-b", standby));

  // Health: NOT_SERVING everywhere, exit 1, the reason naming the leader
  // (once the standby has read the lease row).
  const std::string reason =
      "NOT_SERVING: standby: not the leader of the PostgreSQL store (the "
      "leader is leader-a)";
  CommandResult overall;
  while (!absl::StartsWith((overall = Health(standby.port, "")).out, reason)) {
    ASSERT_LT(absl::Now(), deadline) << overall.out << overall.err << "\n"
                                     << standby.process->Log();
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(overall.exit_code, 1);
  for (const std::string service :
       {"crucible.v1.TaskService", "crucible.v1.QueueService"}) {
    SCOPED_TRACE(service);
    CommandResult r = Health(standby.port, service);
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_TRUE(absl::StartsWith(r.out, reason)) << r.out << r.err;
  }
  CommandResult alive = Health(standby.port, "liveness");
  EXPECT_EQ(alive.exit_code, 0) << alive.out << alive.err;
  // The leader is the one serving.
  EXPECT_EQ(Health(leader.port, "crucible.v1.TaskService").exit_code, 0);

  // Every call: UNAVAILABLE, naming the leader; nothing is created.
  auto stub = v1::TaskService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", standby.port),
                          grpc::InsecureChannelCredentials()));
  auto ctx = [] {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::seconds(10));
    return c;
  };
  v1::CreateTaskRequest create;
  create.set_request_id("sent-to-the-standby");
  create.mutable_spec()->set_image("localhost/crucible/busybox:latest");
  create.mutable_spec()->add_command("true");
  v1::CreateTaskResponse created;
  grpc::Status s = stub->CreateTask(ctx().get(), create, &created);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_TRUE(absl::StrContains(
      s.error_message(), "this server is a standby; the leader is leader-a"))
      << s.error_message();
  v1::ListTasksResponse listed;
  s = stub->ListTasks(ctx().get(), v1::ListTasksRequest(), &listed);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  {
    auto leader_stub = v1::TaskService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", leader.port),
                            grpc::InsecureChannelCredentials()));
    s = leader_stub->ListTasks(ctx().get(), v1::ListTasksRequest(), &listed);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(listed.tasks_size(), 0) << "the standby's CreateTask made a task";
  }

  // Its stop: exit 0, as a standby, and the leader still leads.
  absl::StatusOr<int> status =
      standby.process->Stop(SIGTERM, absl::Seconds(20));
  ASSERT_TRUE(status.ok()) << status.status() << standby.process->Log();
  ASSERT_TRUE(WIFEXITED(*status)) << standby.process->Log();
  EXPECT_EQ(WEXITSTATUS(*status), 0) << standby.process->Log();
  EXPECT_EQ(Health(leader.port, "").exit_code, 0);
  status = leader.process->Stop(SIGTERM, absl::Seconds(20));
  ASSERT_TRUE(status.ok()) << status.status() << leader.process->Log();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << leader.process->Log();
}

}  // namespace
