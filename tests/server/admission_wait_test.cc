// --admission_wait on a real crucible-server (operator guide, "Admission
// against the fleet"): for that long after the start, a CreateTask that
// finds no executor known waits for a worker to connect instead of failing
// UNAVAILABLE at once; past it, with no worker, CreateTask is UNAVAILABLE
// saying why. The worker is this test's own QueueService client: what is
// under test is the server.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "crucible/v1/queue_service.grpc.pb.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"
#include "tests/testing/process_flags.h"
#include "tests/testing/test_stack.h"

namespace {

namespace v1 = crucible::v1;
using testing_util::Process;

// A server with fleet admission on (the default) and `admission_wait`; its
// address.
std::string StartServer(const std::string& dir, const std::string& wait,
                        std::optional<Process>& server) {
  auto p = Process::Start(
      testing_util::WithTestFlags(
          {testing_util::BinaryPath("crucible-server"), "--listen=127.0.0.1:0",
           "--port_file=" + dir + "/port", "--db=" + dir + "/tasks.db",
           "--admission_wait=" + wait}),
      dir + "/server.log");
  EXPECT_TRUE(p.ok()) << p.status();
  if (!p.ok()) return "";
  server.emplace(*std::move(p));
  auto port =
      testing_util::WaitForPortFile(dir + "/port", *server, absl::Seconds(30));
  EXPECT_TRUE(port.ok()) << port.status() << "\n" << server->Log();
  return port.ok() ? absl::StrCat("127.0.0.1:", *port) : "";
}

grpc::Status Create(v1::TaskService::Stub& stub, absl::Duration deadline,
                    v1::Task* task) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  v1::CreateTaskRequest req;
  req.mutable_spec()->set_image("localhost/crucible/busybox:latest");
  req.mutable_spec()->add_command("true");
  v1::CreateTaskResponse resp;
  grpc::Status s = stub.CreateTask(&ctx, req, &resp);
  if (task != nullptr) *task = resp.task();
  return s;
}

TEST(AdmissionWaitTest, ACreateTaskWaitsForTheFirstWorkerWithinTheWindow) {
  const std::string dir = testing_util::MakeTempDir("admission-wait");
  std::optional<Process> server;
  const std::string address = StartServer(dir, "60s", server);
  ASSERT_FALSE(address.empty());
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto tasks = v1::TaskService::NewStub(channel);

  grpc::Status created;
  v1::Task task;
  absl::Notification done;
  // Ends by the call's own deadline at the latest.
  std::thread call([&] {
    created = Create(*tasks, absl::Seconds(90), &task);
    done.Notify();
  });
  // No executor is known yet: the call waits (it does not answer
  // UNAVAILABLE at once).
  EXPECT_FALSE(done.WaitForNotificationWithTimeout(absl::Seconds(1)))
      << created.error_code() << " " << created.error_message();

  // A worker connects and publishes an executor that runs the image.
  auto queue = v1::QueueService::NewStub(channel);
  grpc::ClientContext stream_ctx;
  stream_ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(90)));
  auto stream = queue->Connect(&stream_ctx);
  v1::ConnectRequest hello;
  hello.mutable_hello()->set_worker_id("admission-wait-worker");
  hello.mutable_hello()->set_publishes_executors(true);
  v1::ExecutorAccepts& accepts = *hello.mutable_hello()->add_executors();
  accepts.set_executor_id("admission-wait-executor");
  accepts.add_image_prefixes("localhost/crucible/");
  accepts.set_max_memory_bytes(int64_t{4} << 30);
  accepts.set_max_cpu_millis(4000);
  accepts.set_max_pids_limit(4096);
  accepts.set_max_tmpfs_bytes(int64_t{1} << 30);
  accepts.set_max_output_bytes(int64_t{256} << 20);
  accepts.mutable_max_timeout()->set_seconds(24 * 3600);
  accepts.set_network("none");
  ASSERT_TRUE(stream->Write(hello));

  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)))
      << "CreateTask still waits 30 s after a worker connected\n"
      << server->Log();
  call.join();
  EXPECT_TRUE(created.ok())
      << created.error_code() << " " << created.error_message() << "\n"
      << server->Log();
  EXPECT_EQ(task.state(), v1::TASK_STATE_QUEUED);
  stream_ctx.TryCancel();
  stream->Finish().IgnoreError();
}

TEST(AdmissionWaitTest, WithoutAWorkerItIsUnavailableOnceTheWindowEnds) {
  const std::string dir = testing_util::MakeTempDir("admission-no-worker");
  std::optional<Process> server;
  const std::string address = StartServer(dir, "2s", server);
  ASSERT_FALSE(address.empty());
  auto tasks = v1::TaskService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  // Made within the window: answered once it ends, UNAVAILABLE (not the
  // call's own DEADLINE_EXCEEDED), saying why; and so is one made after it.
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE(i);
    grpc::Status s = Create(*tasks, absl::Seconds(60), nullptr);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE)
        << s.error_message();
    EXPECT_TRUE(absl::StrContains(s.error_message(), "no executor"))
        << s.error_message();
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::ListTasksResponse listed;
  ASSERT_TRUE(tasks->ListTasks(&ctx, v1::ListTasksRequest(), &listed).ok());
  EXPECT_EQ(listed.tasks_size(), 0) << "a refused CreateTask stored a task";
}

}  // namespace
