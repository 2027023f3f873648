// A real crucible-server stopped with SIGTERM while clients follow a task:
// its WatchTask and StreamTaskOutput streams end at once UNAVAILABLE, saying
// the server is going away (so their clients follow the task again, on the
// next server), and the server exits 0 without waiting out its
// --shutdown_grace for them; the real CLI follows the task again once the
// server is back. With nothing in flight it exits 0 within a second of
// SIGTERM.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"
#include "tests/testing/process_flags.h"

namespace {

namespace v1 = crucible::v1;
using ::testing::HasSubstr;

void SetDeadline(grpc::ClientContext& ctx, int seconds = 30) {
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::seconds(seconds));
}

// A task no worker takes (there is none): it stays QUEUED, and streams
// that follow it stay open. Its id, or the call's error.
absl::StatusOr<std::string> CreateQueuedTask(v1::TaskService::Stub& stub) {
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  v1::CreateTaskRequest req;
  req.mutable_spec()->set_image("localhost/crucible/busybox:latest");
  v1::CreateTaskResponse resp;
  grpc::Status s = stub.CreateTask(&ctx, req, &resp);
  if (!s.ok()) return absl::UnavailableError(s.error_message());
  return resp.task().id();
}

TEST(ServerStopTest, FollowingStreamsEndUnavailableAndTheServerExitsAtOnce) {
  const std::string dir = testing_util::MakeTempDir("crucible-stop");
  const std::string port_file = dir + "/port";
  auto server = testing_util::Process::Start(
      testing_util::WithTestFlags(
          {absl::StrCat(getenv("CRUCIBLE_BIN_DIR"), "/crucible-server"),
           "--listen=127.0.0.1:0", "--port_file=" + port_file,
           "--db=" + dir + "/tasks.db", "--fleet_admission=false",
           "--shutdown_grace=30s"}),
      dir + "/server.log");
  ASSERT_TRUE(server.ok()) << server.status();
  auto port =
      testing_util::WaitForPortFile(port_file, *server, absl::Seconds(20));
  ASSERT_TRUE(port.ok()) << port.status();
  auto stub = v1::TaskService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", *port), grpc::InsecureChannelCredentials()));

  absl::StatusOr<std::string> created = CreateQueuedTask(*stub);
  ASSERT_TRUE(created.ok()) << created.status();
  const std::string id = *created;
  grpc::ClientContext watch_ctx;
  SetDeadline(watch_ctx);
  v1::WatchTaskRequest watch_req;
  watch_req.set_task_id(id);
  auto watch = stub->WatchTask(&watch_ctx, watch_req);
  v1::WatchTaskResponse event;
  ASSERT_TRUE(watch->Read(&event));
  EXPECT_EQ(event.event().state(), v1::TASK_STATE_QUEUED);

  grpc::ClientContext output_ctx;
  SetDeadline(output_ctx);
  v1::StreamTaskOutputRequest output_req;
  output_req.set_task_id(id);
  output_req.set_follow(true);
  auto output = stub->StreamTaskOutput(&output_ctx, output_req);
  // The stream is open once a later call has been answered after it (the
  // server handles one connection's calls in order of arrival).
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    v1::GetTaskRequest req;
    req.set_task_id(id);
    v1::GetTaskResponse resp;
    ASSERT_TRUE(stub->GetTask(&ctx, req, &resp).ok());
  }

  const absl::Time stopping = absl::Now();
  ASSERT_EQ(kill(server->pid(), SIGTERM), 0);
  while (watch->Read(&event)) {
  }
  grpc::Status watch_end = watch->Finish();
  EXPECT_EQ(watch_end.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(watch_end.error_message(),
              HasSubstr("the server is going away (server shutting down)"));
  v1::StreamTaskOutputResponse chunk;
  while (output->Read(&chunk)) {
  }
  grpc::Status output_end = output->Finish();
  EXPECT_EQ(output_end.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(output_end.error_message(),
              HasSubstr("the server is going away (server shutting down)"));

  absl::StatusOr<int> status = server->Wait(absl::Seconds(20));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 0) << "wait status; log:\n" << server->Log();
  // Not the 30 s grace: nothing was left to wait for.
  EXPECT_LT(absl::Now() - stopping, absl::Seconds(5));
}

// `crucible watch` follows a task across a restart of its server (the
// stream ends UNAVAILABLE, the CLI watches again once the server is back)
// and ends as the task does: cancelled meanwhile, exit 130.
TEST(ServerStopTest, CliWatchFollowsTheTaskAcrossAServerRestart) {
  const std::string dir = testing_util::MakeTempDir("crucible-stop");
  // Run 1 on a port of its own choosing, run 2 (the restart) on the same.
  auto start_server = [&](int run, const std::string& listen) {
    return testing_util::Process::Start(
        testing_util::WithTestFlags(
            {absl::StrCat(getenv("CRUCIBLE_BIN_DIR"), "/crucible-server"),
             "--listen=" + listen,
             absl::StrCat("--port_file=", dir, "/port-", run),
             "--db=" + dir + "/tasks.db", "--fleet_admission=false"}),
        absl::StrCat(dir, "/server-", run, ".log"));
  };
  auto server = start_server(1, "127.0.0.1:0");
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<int> port = testing_util::WaitForPortFile(
      dir + "/port-1", *server, absl::Seconds(20));
  ASSERT_TRUE(port.ok()) << port.status();
  const std::string address = absl::StrCat("127.0.0.1:", *port);
  auto stub = v1::TaskService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  absl::StatusOr<std::string> created = CreateQueuedTask(*stub);
  ASSERT_TRUE(created.ok()) << created.status();
  const std::string id = *created;
  auto watch = testing_util::Process::Start(
      {absl::StrCat(getenv("CRUCIBLE_BIN_DIR"), "/crucible"),
       "--server=" + address, "watch", id},
      dir + "/watch.log");
  ASSERT_TRUE(watch.ok()) << watch.status();
  auto log_has = [&](const std::string& text) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline) {
      if (watch->Log().find(text) != std::string::npos) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  };
  ASSERT_TRUE(log_has("QUEUED")) << watch->Log();

  absl::StatusOr<int> stopped = server->Stop(SIGTERM, absl::Seconds(20));
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  ASSERT_TRUE(log_has("following it again")) << watch->Log();
  EXPECT_TRUE(watch->Running()) << watch->Log();
  auto again = start_server(2, address);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(
      testing_util::WaitForPortFile(dir + "/port-2", *again, absl::Seconds(20))
          .ok());
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    v1::CancelTaskRequest req;
    req.set_task_id(id);
    v1::CancelTaskResponse resp;
    grpc::Status s = stub->CancelTask(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  absl::StatusOr<int> status = watch->Wait(absl::Seconds(30));
  ASSERT_TRUE(status.ok()) << status.status() << "\n" << watch->Log();
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 130) << watch->Log();
  EXPECT_THAT(watch->Log(), HasSubstr("CANCELLED"));
}

// `crucible watch` whose server stops and does not come back follows the
// task again for 60 s without an answer, then gives up with exit 69 (user
// guide, "Lifecycle": "It tries for up to 60 s without an answer, then
// exits 69"). Only a lower bound on its wait: a loaded machine makes it
// longer, never shorter.
TEST(ServerStopTest, CliGivesUpWithExit69AfterAMinuteWithoutTheServer) {
  const std::string dir = testing_util::MakeTempDir("crucible-stop-gone");
  auto server = testing_util::Process::Start(
      testing_util::WithTestFlags(
          {absl::StrCat(getenv("CRUCIBLE_BIN_DIR"), "/crucible-server"),
           "--listen=127.0.0.1:0", "--port_file=" + dir + "/port",
           "--db=" + dir + "/tasks.db", "--fleet_admission=false"}),
      dir + "/server.log");
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<int> port =
      testing_util::WaitForPortFile(dir + "/port", *server, absl::Seconds(20));
  ASSERT_TRUE(port.ok()) << port.status();
  const std::string address = absl::StrCat("127.0.0.1:", *port);
  auto stub = v1::TaskService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  absl::StatusOr<std::string> id = CreateQueuedTask(*stub);
  ASSERT_TRUE(id.ok()) << id.status();
  auto watch = testing_util::Process::Start(
      {absl::StrCat(getenv("CRUCIBLE_BIN_DIR"), "/crucible"),
       "--server=" + address, "watch", *id},
      dir + "/watch.log");
  ASSERT_TRUE(watch.ok()) << watch.status();
  for (absl::Time deadline = absl::Now() + absl::Seconds(20);
       watch->Log().find("QUEUED") == std::string::npos;
       absl::SleepFor(absl::Milliseconds(20))) {
    ASSERT_LT(absl::Now(), deadline) << watch->Log();
  }

  absl::StatusOr<int> stopped = server->Stop(SIGTERM, absl::Seconds(20));
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  const absl::Time gone = absl::Now();
  absl::StatusOr<int> status = watch->Wait(absl::Seconds(150));
  const absl::Duration waited = absl::Now() - gone;
  ASSERT_TRUE(status.ok()) << "still following 150 s after the server "
                              "stopped:\n"
                           << watch->Log();
  ASSERT_TRUE(WIFEXITED(*status)) << watch->Log();
  EXPECT_EQ(WEXITSTATUS(*status), 69) << watch->Log();
  EXPECT_GE(waited, absl::Seconds(59)) << watch->Log();
  EXPECT_THAT(watch->Log(), HasSubstr("following it again"));
  EXPECT_THAT(watch->Log(), HasSubstr("UNAVAILABLE"));
}

// With nothing in flight a SIGTERM stops the server within a second, exit
// 0: once without any client, once with a client whose connection stays
// open after its last call (as a CLI or a client busy elsewhere leaves it).
// Issue 23 saw 3.5 to 8.6 s here, the server waiting on idle connections.
// The default --shutdown_grace (10 s), so that waiting it out would show.
// A bound on wall-clock time: run alone (server_stop_timing_test, RUN_SERIAL).
TEST(ServerStopTimingTest, WithNothingInFlightSigtermExitsZeroWithinASecond) {
  // Like crash_test's client: this process's channels are not polled once
  // no call of theirs runs, so its connection stays open after the
  // server's GOAWAY, and the server must not wait for it.
  setenv("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "0", 1);
  const std::string dir = testing_util::MakeTempDir("crucible-stop-idle");
  for (const bool with_client : {false, true}) {
    SCOPED_TRACE(with_client ? "an idle client connection" : "no client");
    const std::string run = with_client ? "client" : "alone";
    const std::string port_file = absl::StrCat(dir, "/port-", run);
    auto server = testing_util::Process::Start(
        testing_util::WithTestFlags(
            {absl::StrCat(getenv("CRUCIBLE_BIN_DIR"), "/crucible-server"),
             "--listen=127.0.0.1:0", "--port_file=" + port_file,
             absl::StrCat("--db=", dir, "/tasks-", run, ".db"),
             "--fleet_admission=false"}),
        absl::StrCat(dir, "/server-", run, ".log"));
    ASSERT_TRUE(server.ok()) << server.status();
    auto port =
        testing_util::WaitForPortFile(port_file, *server, absl::Seconds(20));
    ASSERT_TRUE(port.ok()) << port.status() << "\n" << server->Log();
    std::unique_ptr<v1::TaskService::Stub> stub;
    if (with_client) {
      stub = v1::TaskService::NewStub(
          grpc::CreateChannel(absl::StrCat("127.0.0.1:", *port),
                              grpc::InsecureChannelCredentials()));
      // A task stored (QUEUED, no worker) and a read: then nothing runs.
      ASSERT_TRUE(CreateQueuedTask(*stub).ok());
      grpc::ClientContext ctx;
      SetDeadline(ctx);
      v1::ListTasksResponse resp;
      ASSERT_TRUE(stub->ListTasks(&ctx, v1::ListTasksRequest(), &resp).ok());
      ASSERT_EQ(resp.tasks_size(), 1);
    }
    const absl::Time stopping = absl::Now();
    ASSERT_EQ(kill(server->pid(), SIGTERM), 0);
    absl::StatusOr<int> status = server->Wait(absl::Seconds(20));
    const absl::Duration took = absl::Now() - stopping;
    ASSERT_TRUE(status.ok()) << status.status() << "\n" << server->Log();
    ASSERT_TRUE(WIFEXITED(*status)) << "killed by signal " << WTERMSIG(*status);
    EXPECT_EQ(WEXITSTATUS(*status), 0) << server->Log();
    EXPECT_LT(took, absl::Seconds(1)) << "SIGTERM to exit took " << took << "\n"
                                      << server->Log();
  }
}

}  // namespace
