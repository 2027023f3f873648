// TaskService and QueueService over a real in-process server and real stubs;
// a fake worker speaks the QueueService protocol from the test thread.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/grpc_server.h"
#include "crucible/v1/queue_service.grpc.pb.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "gtest/gtest.h"
#include "server/queue_service.h"
#include "server/scheduler/scheduler.h"
#include "server/store/sqlite_task_store.h"
#include "server/task_service.h"
#include "tests/server/test_util.h"

namespace server {
namespace {

namespace v1 = crucible::v1;

void SetDeadline(grpc::ClientContext& ctx, int seconds = 10) {
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::seconds(seconds));
}

class ServiceTest : public testing::Test {
 protected:
  void SetUp() override {
    auto store = SqliteTaskStore::Open(
        {.path = testing_util::FreshDir() + "/tasks.db"});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    auto scheduler = Scheduler::Create({}, *store_, clock_);
    ASSERT_TRUE(scheduler.ok()) << scheduler.status();
    scheduler_ = *std::move(scheduler);
    task_service_ = std::make_unique<TaskService>(*scheduler_, pool_);
    queue_service_ = std::make_unique<QueueService>(*scheduler_, pool_);
    auto server = common::GrpcServer::Start(
        {.listen_address = "127.0.0.1:0"},
        {task_service_.get(), queue_service_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                       grpc::InsecureChannelCredentials());
    tasks_ = v1::TaskService::NewStub(channel);
    queue_ = v1::QueueService::NewStub(channel);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(1));
  }

  std::string CreateTask() {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    v1::CreateTaskRequest req;
    req.mutable_spec()->set_image("localhost/crucible/busybox:latest");
    req.mutable_spec()->add_command("echo");
    v1::CreateTaskResponse resp;
    grpc::Status s = tasks_->CreateTask(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.task().id();
  }
  std::string ReadOutput(const std::string& id, int64_t offset,
                         v1::OutputStream stream) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    v1::StreamTaskOutputRequest req;
    req.set_task_id(id);
    req.set_offset(offset);
    req.set_stream(stream);
    auto reader = tasks_->StreamTaskOutput(&ctx, req);
    v1::StreamTaskOutputResponse resp;
    std::string out;
    while (reader->Read(&resp)) out += resp.chunk().data();
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }
  using WorkerStream =
      grpc::ClientReaderWriter<v1::ConnectRequest, v1::ConnectResponse>;
  static void Hello(WorkerStream& w, int credits) {
    v1::ConnectRequest req;
    req.mutable_hello()->set_worker_id("fake-worker");
    req.mutable_hello()->set_credits(credits);
    ASSERT_TRUE(w.Write(req));
  }
  static void Output(WorkerStream& w, const std::string& lease, int64_t offset,
                     v1::OutputStream stream, const std::string& data) {
    v1::ConnectRequest req;
    req.mutable_output()->set_lease_id(lease);
    req.mutable_output()->mutable_chunk()->set_offset(offset);
    req.mutable_output()->mutable_chunk()->set_stream(stream);
    req.mutable_output()->mutable_chunk()->set_data(data);
    ASSERT_TRUE(w.Write(req));
  }
  static void Complete(WorkerStream& w, const std::string& lease,
                       v1::TerminationReason reason, int exit_code) {
    v1::ConnectRequest req;
    req.mutable_completion()->set_lease_id(lease);
    req.mutable_completion()->mutable_result()->set_reason(reason);
    req.mutable_completion()->mutable_result()->set_exit_code(exit_code);
    ASSERT_TRUE(w.Write(req));
  }

  // Members in this order so the server goes before what it serves.
  common::FakeClock clock_;
  std::unique_ptr<SqliteTaskStore> store_;
  std::unique_ptr<Scheduler> scheduler_;
  BlockingPool pool_{4};
  std::unique_ptr<TaskService> task_service_;
  std::unique_ptr<QueueService> queue_service_;
  std::unique_ptr<common::GrpcServer> server_;
  std::unique_ptr<v1::TaskService::Stub> tasks_;
  std::unique_ptr<v1::QueueService::Stub> queue_;
};

TEST_F(ServiceTest, FirstTaskEndToEnd) {
  grpc::ClientContext worker_ctx;
  SetDeadline(worker_ctx, 20);
  std::unique_ptr<WorkerStream> worker = queue_->Connect(&worker_ctx);
  Hello(*worker, 1);
  std::string id = CreateTask();
  ASSERT_FALSE(id.empty());

  grpc::ClientContext watch_ctx;
  SetDeadline(watch_ctx);
  v1::WatchTaskRequest watch_req;
  watch_req.set_task_id(id);
  auto watch = tasks_->WatchTask(&watch_ctx, watch_req);
  v1::WatchTaskResponse event;
  ASSERT_TRUE(watch->Read(&event));
  EXPECT_EQ(event.event().task_id(), id);

  v1::ConnectResponse msg;
  ASSERT_TRUE(worker->Read(&msg));
  ASSERT_TRUE(msg.has_assignment());
  EXPECT_EQ(msg.assignment().task().id(), id);
  EXPECT_EQ(msg.assignment().attempt(), 1);
  const std::string lease = msg.assignment().lease_id();

  v1::ConnectRequest started;
  started.mutable_started()->set_lease_id(lease);
  ASSERT_TRUE(worker->Write(started));
  Output(*worker, lease, 0, v1::OUTPUT_STREAM_STDOUT, "hello\n");
  Output(*worker, lease, 6, v1::OUTPUT_STREAM_STDERR, "oops\n");
  Complete(*worker, lease, v1::TERMINATION_REASON_EXITED, 0);

  // WatchTask ends by itself at the terminal state.
  std::vector<v1::TaskState> states = {event.event().state()};
  while (watch->Read(&event)) states.push_back(event.event().state());
  grpc::Status ws = watch->Finish();
  EXPECT_TRUE(ws.ok()) << ws.error_message();
  EXPECT_EQ(states.back(), v1::TASK_STATE_SUCCEEDED);

  grpc::ClientContext get_ctx;
  SetDeadline(get_ctx);
  v1::GetTaskRequest get_req;
  get_req.set_task_id(id);
  v1::GetTaskResponse got;
  ASSERT_TRUE(tasks_->GetTask(&get_ctx, get_req, &got).ok());
  EXPECT_EQ(got.task().state(), v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(got.task().result().exit_code(), 0);

  EXPECT_EQ(ReadOutput(id, 0, v1::OUTPUT_STREAM_UNSPECIFIED), "hello\noops\n");
  EXPECT_EQ(ReadOutput(id, 0, v1::OUTPUT_STREAM_STDERR), "oops\n");
  EXPECT_EQ(ReadOutput(id, 3, v1::OUTPUT_STREAM_UNSPECIFIED), "lo\noops\n");

  // A report on the finished lease is refused on the stream, which stays open.
  Complete(*worker, lease, v1::TERMINATION_REASON_EXITED, 1);
  ASSERT_TRUE(worker->Read(&msg));
  ASSERT_TRUE(msg.has_rejected());
  EXPECT_EQ(msg.rejected().lease_id(), lease);
  EXPECT_EQ(msg.rejected().code(), grpc::StatusCode::FAILED_PRECONDITION);
  v1::ConnectRequest credit;
  credit.mutable_credit()->set_credits(1);
  EXPECT_TRUE(worker->Write(credit));
  worker->WritesDone();
  EXPECT_TRUE(worker->Finish().ok());
}

TEST_F(ServiceTest, FollowedOutputStreamsUntilTheTaskEnds) {
  grpc::ClientContext worker_ctx;
  SetDeadline(worker_ctx, 20);
  std::unique_ptr<WorkerStream> worker = queue_->Connect(&worker_ctx);
  Hello(*worker, 1);
  std::string id = CreateTask();
  v1::ConnectResponse msg;
  ASSERT_TRUE(worker->Read(&msg));
  ASSERT_TRUE(msg.has_assignment());
  const std::string lease = msg.assignment().lease_id();

  grpc::ClientContext ctx;
  SetDeadline(ctx);
  v1::StreamTaskOutputRequest req;
  req.set_task_id(id);
  req.set_follow(true);
  auto reader = tasks_->StreamTaskOutput(&ctx, req);
  Output(*worker, lease, 0, v1::OUTPUT_STREAM_STDOUT, "one ");
  v1::StreamTaskOutputResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.chunk().data(), "one ");
  EXPECT_EQ(resp.chunk().attempt(), 1);
  Output(*worker, lease, 4, v1::OUTPUT_STREAM_STDOUT, "two");
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.chunk().data(), "two");
  EXPECT_EQ(resp.chunk().offset(), 4);
  Complete(*worker, lease, v1::TERMINATION_REASON_EXITED, 2);
  EXPECT_FALSE(reader->Read(&resp));
  EXPECT_TRUE(reader->Finish().ok());
  worker->WritesDone();
  EXPECT_TRUE(worker->Finish().ok());
}

TEST_F(ServiceTest, CancelOfARunningTaskReachesTheWorker) {
  grpc::ClientContext worker_ctx;
  SetDeadline(worker_ctx, 20);
  std::unique_ptr<WorkerStream> worker = queue_->Connect(&worker_ctx);
  Hello(*worker, 1);
  std::string id = CreateTask();
  v1::ConnectResponse msg;
  ASSERT_TRUE(worker->Read(&msg));
  const std::string lease = msg.assignment().lease_id();

  grpc::ClientContext ctx;
  SetDeadline(ctx);
  v1::CancelTaskRequest req;
  req.set_task_id(id);
  req.set_reason("test");
  v1::CancelTaskResponse resp;
  ASSERT_TRUE(tasks_->CancelTask(&ctx, req, &resp).ok());
  ASSERT_TRUE(worker->Read(&msg));
  ASSERT_TRUE(msg.has_cancel());
  EXPECT_EQ(msg.cancel().lease_id(), lease);
  Complete(*worker, lease, v1::TERMINATION_REASON_CANCELLED, 137);
  worker->WritesDone();
  EXPECT_TRUE(worker->Finish().ok());
  // The completion was applied before the stream closed.
  auto task = scheduler_->GetTask(id);
  ASSERT_TRUE(task.ok());
  EXPECT_EQ(task->state(), v1::TASK_STATE_CANCELLED);
}

TEST_F(ServiceTest, HeartbeatOnAnUnknownLeaseIsRejected) {
  grpc::ClientContext worker_ctx;
  SetDeadline(worker_ctx);
  std::unique_ptr<WorkerStream> worker = queue_->Connect(&worker_ctx);
  Hello(*worker, 0);
  v1::ConnectRequest beat;
  beat.mutable_heartbeat()->add_lease_ids("no-such-lease");
  ASSERT_TRUE(worker->Write(beat));
  v1::ConnectResponse msg;
  ASSERT_TRUE(worker->Read(&msg));
  ASSERT_TRUE(msg.has_rejected());
  EXPECT_EQ(msg.rejected().lease_id(), "no-such-lease");
  EXPECT_EQ(msg.rejected().code(), grpc::StatusCode::FAILED_PRECONDITION);
  worker->WritesDone();
  EXPECT_TRUE(worker->Finish().ok());
}

TEST_F(ServiceTest, ErrorsKeepTheirCodes) {
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  v1::CreateTaskRequest req;  // no image
  v1::CreateTaskResponse resp;
  EXPECT_EQ(tasks_->CreateTask(&ctx, req, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  grpc::ClientContext get_ctx;
  SetDeadline(get_ctx);
  v1::GetTaskRequest get_req;
  get_req.set_task_id("nope");
  v1::GetTaskResponse got;
  EXPECT_EQ(tasks_->GetTask(&get_ctx, get_req, &got).error_code(),
            grpc::StatusCode::NOT_FOUND);

  grpc::ClientContext watch_ctx;
  SetDeadline(watch_ctx);
  v1::WatchTaskRequest watch_req;
  watch_req.set_task_id("nope");
  auto watch = tasks_->WatchTask(&watch_ctx, watch_req);
  v1::WatchTaskResponse event;
  EXPECT_FALSE(watch->Read(&event));
  EXPECT_EQ(watch->Finish().error_code(), grpc::StatusCode::NOT_FOUND);

  grpc::ClientContext worker_ctx;
  SetDeadline(worker_ctx);
  auto worker = queue_->Connect(&worker_ctx);
  v1::ConnectRequest credit;  // not a hello
  credit.mutable_credit()->set_credits(1);
  worker->Write(credit);
  v1::ConnectResponse msg;
  EXPECT_FALSE(worker->Read(&msg));
  EXPECT_EQ(worker->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace server
