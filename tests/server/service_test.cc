// TaskService and QueueService over a real in-process server and real stubs;
// a fake worker speaks the QueueService protocol from the test thread.
#include <grpcpp/grpcpp.h>
#include <sqlite3.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/grpc_server.h"
#include "common/sha256.h"
#include "common/trace.h"
#include "crucible/v1/queue_service.grpc.pb.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "gtest/gtest.h"
#include "server/outbox/durable_outbox.h"
#include "server/queue_service.h"
#include "server/scheduler/scheduler.h"
#include "server/store/sqlite_task_store.h"
#include "server/task_service.h"
#include "tests/server/test_util.h"

namespace server {
namespace {

// The tenant of the tests' calls.
inline const TenantScope kTenant{.tenant = "default"};

namespace v1 = crucible::v1;

void SetDeadline(grpc::ClientContext& ctx, int seconds = 10) {
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::seconds(seconds));
}

class ServiceTest : public testing::Test {
 protected:
  virtual TaskServiceOptions TaskOptions() { return {}; }
  void SetUp() override {
    store_path_ = testing_util::FreshDir() + "/tasks.db";
    Start();
  }
  // Stops the server and everything it serves, then starts them again on
  // the same store, as a restarted process would.
  void Restart() {
    server_->Shutdown(absl::Seconds(1));
    tasks_.reset();
    queue_.reset();
    server_.reset();
    queue_service_.reset();
    task_service_.reset();
    scheduler_.reset();
    outbox_.reset();
    store_.reset();
    Start();
  }
  void Start() {
    auto store = SqliteTaskStore::Open({.path = store_path_});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    outbox_ = std::make_unique<DurableOutbox>(*store_, DurableOutboxOptions{});
    auto scheduler = Scheduler::Create({}, *store_, *outbox_, clock_);
    ASSERT_TRUE(scheduler.ok()) << scheduler.status();
    scheduler_ = *std::move(scheduler);
    task_service_ = std::make_unique<TaskService>(
        *scheduler_, pool_, authenticator_, TaskOptions());
    queue_service_ = std::make_unique<QueueService>(*scheduler_, pool_);
    auto server =
        common::GrpcServer::Start({.listen_address = "127.0.0.1:0"},
                                  {task_service_.get(), queue_service_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto channel =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                            grpc::InsecureChannelCredentials());
    tasks_ = v1::TaskService::NewStub(channel);
    queue_ = v1::QueueService::NewStub(channel);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(1));
  }

  std::string CreateTask(v1::TaskSpec spec = {}) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    v1::CreateTaskRequest req;
    *req.mutable_spec() = std::move(spec);
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

 public:
  using WorkerStream =
      grpc::ClientReaderWriter<v1::ConnectRequest, v1::ConnectResponse>;

 protected:
  static void Hello(WorkerStream& w, int credits, bool batches = false) {
    v1::ConnectRequest req;
    req.mutable_hello()->set_worker_id("fake-worker");
    req.mutable_hello()->set_credits(credits);
    req.mutable_hello()->set_accepts_assignment_batches(batches);
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

  // Reads the worker's next message, which must be an assignment; returns
  // its lease ("" after a failure).
  static std::string NextLease(WorkerStream& w) {
    v1::ConnectResponse msg;
    if (!w.Read(&msg) || !msg.has_assignment()) {
      ADD_FAILURE() << "expected an assignment, got " << msg.ShortDebugString();
      return "";
    }
    return msg.assignment().lease_id();
  }
  // Connects a worker and says hello with `credits` (taking assignment
  // batches if `batches`); its calls end after `deadline_seconds`. The
  // stream's context lives as long as the test.
  std::unique_ptr<WorkerStream> ConnectWorker(int credits, bool batches = false,
                                              int deadline_seconds = 20) {
    grpc::ClientContext& ctx =
        *worker_contexts_.emplace_back(std::make_unique<grpc::ClientContext>());
    SetDeadline(ctx, deadline_seconds);
    std::unique_ptr<WorkerStream> worker = queue_->Connect(&ctx);
    Hello(*worker, credits, batches);
    return worker;
  }

  // Members in this order so the server goes before what it serves.
  std::string store_path_;
  common::FakeClock clock_;
  std::unique_ptr<SqliteTaskStore> store_;
  std::unique_ptr<DurableOutbox> outbox_;
  std::unique_ptr<Scheduler> scheduler_;
  BlockingPool pool_{4};
  // Calls without credentials act as tenant "default".
  const auth::Authenticator authenticator_{
      {.allow_anonymous = true}, nullptr, nullptr};
  std::unique_ptr<TaskService> task_service_;
  std::unique_ptr<QueueService> queue_service_;
  std::unique_ptr<common::GrpcServer> server_;
  std::unique_ptr<v1::TaskService::Stub> tasks_;
  std::unique_ptr<v1::QueueService::Stub> queue_;
  std::vector<std::unique_ptr<grpc::ClientContext>> worker_contexts_;
};

TEST_F(ServiceTest, FirstTaskEndToEnd) {
  std::unique_ptr<WorkerStream> worker = ConnectWorker(1);
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

TEST_F(ServiceTest, TheTraceIdComesFromTraceparentAndSurvivesARestart) {
  constexpr char kTraceId[] = "4bf92f3577b34da6a3ce929d0e0e4736";
  auto create = [this](const char* traceparent, const char* request_id) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    if (traceparent != nullptr) ctx.AddMetadata("traceparent", traceparent);
    v1::CreateTaskRequest req;
    req.set_request_id(request_id);
    req.mutable_spec()->set_image("localhost/crucible/busybox:latest");
    v1::CreateTaskResponse resp;
    grpc::Status s = tasks_->CreateTask(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.task();
  };
  const v1::Task traced = create(
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "traced");
  EXPECT_EQ(traced.trace_id(), kTraceId);
  // A malformed traceparent, or an all-zero trace id, is ignored: the task
  // gets a new trace id of its own, as one without a traceparent does.
  const v1::Task malformed = create("00-4bf92f-00f067aa0ba902b7-01", "");
  const v1::Task zeros =
      create("00-00000000000000000000000000000000-00f067aa0ba902b7-01", "");
  const v1::Task plain = create(nullptr, "");
  for (const v1::Task* t : {&malformed, &zeros, &plain}) {
    EXPECT_TRUE(common::IsTraceId(t->trace_id())) << t->trace_id();
    EXPECT_NE(t->trace_id(), kTraceId);
  }
  EXPECT_NE(malformed.trace_id(), plain.trace_id());
  // A retry with the same request_id answers the task with its trace id,
  // whatever traceparent it carries.
  EXPECT_EQ(create(nullptr, "traced").trace_id(), kTraceId);

  // The worker's assignment carries it (and so the executor's RunRequest).
  std::unique_ptr<WorkerStream> worker = ConnectWorker(1);
  v1::ConnectResponse msg;
  ASSERT_TRUE(worker->Read(&msg));
  ASSERT_TRUE(msg.has_assignment());
  EXPECT_EQ(msg.assignment().task().id(), traced.id());
  EXPECT_EQ(msg.assignment().task().trace_id(), kTraceId);
  worker->WritesDone();
  EXPECT_TRUE(worker->Finish().ok());

  Restart();
  for (const v1::Task* t : {&traced, &plain}) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    v1::GetTaskRequest req;
    req.set_task_id(t->id());
    v1::GetTaskResponse got;
    grpc::Status s = tasks_->GetTask(&ctx, req, &got);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(got.task().trace_id(), t->trace_id());
  }
}

TEST_F(ServiceTest, FollowedOutputStreamsUntilTheTaskEnds) {
  std::unique_ptr<WorkerStream> worker = ConnectWorker(1);
  std::string id = CreateTask();
  const std::string lease = NextLease(*worker);

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
  std::unique_ptr<WorkerStream> worker = ConnectWorker(1);
  std::string id = CreateTask();
  const std::string lease = NextLease(*worker);

  grpc::ClientContext ctx;
  SetDeadline(ctx);
  v1::CancelTaskRequest req;
  req.set_task_id(id);
  req.set_reason("test");
  v1::CancelTaskResponse resp;
  ASSERT_TRUE(tasks_->CancelTask(&ctx, req, &resp).ok());
  v1::ConnectResponse msg;
  ASSERT_TRUE(worker->Read(&msg));
  ASSERT_TRUE(msg.has_cancel());
  EXPECT_EQ(msg.cancel().lease_id(), lease);
  Complete(*worker, lease, v1::TERMINATION_REASON_CANCELLED, 137);
  worker->WritesDone();
  EXPECT_TRUE(worker->Finish().ok());
  // The completion was applied before the stream closed.
  auto task = scheduler_->GetTask(kTenant, id);
  ASSERT_TRUE(task.ok());
  EXPECT_EQ(task->state(), v1::TASK_STATE_CANCELLED);
}

TEST_F(ServiceTest, HeartbeatOnAnUnknownLeaseIsRejected) {
  std::unique_ptr<WorkerStream> worker =
      ConnectWorker(0, /*batches=*/false, /*deadline_seconds=*/10);
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

v1::Task GetTask(v1::TaskService::Stub& stub, const std::string& id) {
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  v1::GetTaskRequest req;
  req.set_task_id(id);
  v1::GetTaskResponse resp;
  grpc::Status s = stub.GetTask(&ctx, req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return resp.task();
}

// Sends a heartbeat naming no live lease and waits for its rejection: every
// message the worker sent before it has been applied.
void Sync(ServiceTest::WorkerStream& w) {
  v1::ConnectRequest beat;
  beat.mutable_heartbeat()->add_lease_ids("sync");
  ASSERT_TRUE(w.Write(beat));
  v1::ConnectResponse msg;
  ASSERT_TRUE(w.Read(&msg));
  ASSERT_TRUE(msg.has_rejected()) << msg.ShortDebugString();
  ASSERT_EQ(msg.rejected().lease_id(), "sync");
}

TEST_F(ServiceTest, CreditsAreHonoured) {
  std::unique_ptr<WorkerStream> worker = ConnectWorker(2);
  std::vector<std::string> ids = {CreateTask(), CreateTask(), CreateTask()};
  v1::ConnectResponse msg;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(worker->Read(&msg));
    ASSERT_TRUE(msg.has_assignment());
    EXPECT_EQ(msg.assignment().task().id(), ids[i]);
  }
  // Two credits, two assignments: the third waits.
  EXPECT_EQ(GetTask(*tasks_, ids[2]).state(), v1::TASK_STATE_QUEUED);
  v1::ConnectRequest credit;
  credit.mutable_credit()->set_credits(1);
  ASSERT_TRUE(worker->Write(credit));
  ASSERT_TRUE(worker->Read(&msg));
  ASSERT_TRUE(msg.has_assignment());
  EXPECT_EQ(msg.assignment().task().id(), ids[2]);
  worker->WritesDone();
  EXPECT_TRUE(worker->Finish().ok());
}

TEST_F(ServiceTest, AssignmentsComeBatchedOnlyToWorkersThatTakeBatches) {
  constexpr int kEach = 30;
  std::vector<std::string> ids;
  for (int i = 0; i < 2 * kEach; ++i) ids.push_back(CreateTask());
  // Each worker's hello makes the server hand out kEach queued tasks at once.
  auto assigned = [&](bool batches, int* messages) {
    std::unique_ptr<WorkerStream> worker = ConnectWorker(kEach, batches);
    std::vector<std::string> got;
    *messages = 0;
    v1::ConnectResponse msg;
    while (static_cast<int>(got.size()) < kEach && worker->Read(&msg)) {
      ++*messages;
      if (msg.has_assignment()) {
        got.push_back(msg.assignment().task().id());
      } else {
        EXPECT_TRUE(batches) << "a batch to a worker that takes none";
        EXPECT_TRUE(msg.has_assignments()) << msg.ShortDebugString();
        for (const v1::Assignment& a : msg.assignments().assignments()) {
          got.push_back(a.task().id());
        }
      }
    }
    Sync(*worker);  // nothing beyond the credits came
    worker->WritesDone();
    EXPECT_TRUE(worker->Finish().ok());
    return got;
  };
  int single_messages = 0;
  EXPECT_EQ(assigned(false, &single_messages),
            std::vector<std::string>(ids.begin(), ids.begin() + kEach));
  EXPECT_EQ(single_messages, kEach);
  int batched_messages = 0;
  EXPECT_EQ(assigned(true, &batched_messages),
            std::vector<std::string>(ids.begin() + kEach, ids.end()));
  EXPECT_LT(batched_messages, kEach);
}

TEST_F(ServiceTest, ACompletionBatchIsJudgedPerCompletion) {
  std::unique_ptr<WorkerStream> worker = ConnectWorker(3);
  std::vector<std::string> ids = {CreateTask(), CreateTask(), CreateTask()};
  std::vector<std::string> leases;
  v1::ConnectResponse msg;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(worker->Read(&msg));
    ASSERT_TRUE(msg.has_assignment());
    leases.push_back(msg.assignment().lease_id());
  }
  v1::ConnectRequest batch;
  for (const std::string& lease :
       {leases[0], std::string("stale"), leases[1]}) {
    v1::AttemptCompletion* c = batch.mutable_completions()->add_completions();
    c->set_lease_id(lease);
    c->mutable_result()->set_reason(v1::TERMINATION_REASON_EXITED);
    c->mutable_result()->set_exit_code(0);
  }
  ASSERT_TRUE(worker->Write(batch));
  ASSERT_TRUE(worker->Read(&msg));
  ASSERT_TRUE(msg.has_rejected()) << msg.ShortDebugString();
  EXPECT_EQ(msg.rejected().lease_id(), "stale");
  EXPECT_EQ(msg.rejected().code(),
            static_cast<int>(absl::StatusCode::kFailedPrecondition));
  Sync(*worker);
  EXPECT_EQ(GetTask(*tasks_, ids[0]).state(), v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(GetTask(*tasks_, ids[1]).state(), v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(GetTask(*tasks_, ids[2]).state(), v1::TASK_STATE_LEASED);
  worker->WritesDone();
  EXPECT_TRUE(worker->Finish().ok());
}

TEST_F(ServiceTest, ASlowWorkerDoesNotSlowTheOthers) {
  // A worker that takes two assignments and then stays silent.
  grpc::ClientContext slow_ctx;
  SetDeadline(slow_ctx, 20);
  std::unique_ptr<WorkerStream> slow = queue_->Connect(&slow_ctx);
  v1::ConnectRequest hello;
  hello.mutable_hello()->set_worker_id("slow-worker");
  hello.mutable_hello()->set_credits(2);
  ASSERT_TRUE(slow->Write(hello));
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(CreateTask());
  v1::ConnectResponse held;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(slow->Read(&held));
    ASSERT_TRUE(held.has_assignment());
  }
  // A second worker, one slot, gets and finishes everything else.
  std::unique_ptr<WorkerStream> fast = ConnectWorker(1);
  int done = 0;
  v1::ConnectResponse msg;
  while (done < 8 && fast->Read(&msg)) {
    ASSERT_TRUE(msg.has_assignment());
    Complete(*fast, msg.assignment().lease_id(), v1::TERMINATION_REASON_EXITED,
             0);
    v1::ConnectRequest credit;
    credit.mutable_credit()->set_credits(1);
    ASSERT_TRUE(fast->Write(credit));
    ++done;
  }
  EXPECT_EQ(done, 8);
  Sync(*fast);
  int succeeded = 0;
  int leased = 0;
  for (const std::string& id : ids) {
    v1::TaskState state = GetTask(*tasks_, id).state();
    succeeded += state == v1::TASK_STATE_SUCCEEDED;
    leased += state == v1::TASK_STATE_LEASED;
  }
  EXPECT_EQ(succeeded, 8);
  EXPECT_EQ(leased, 2);  // held by the slow worker, never more than its credits
  fast->WritesDone();
  EXPECT_TRUE(fast->Finish().ok());
  slow_ctx.TryCancel();
  slow->Finish().IgnoreError();
}

TEST_F(ServiceTest,
       HeartbeatsExtendAndALostWorkersTaskIsRequeuedAfterTheLease) {
  std::string id = CreateTask();
  std::string lease;
  {
    std::unique_ptr<WorkerStream> worker = ConnectWorker(1);
    v1::ConnectResponse msg;
    ASSERT_TRUE(worker->Read(&msg));
    ASSERT_TRUE(msg.has_assignment());
    lease = msg.assignment().lease_id();
    clock_.Advance(absl::Seconds(20));
    v1::ConnectRequest beat;
    beat.mutable_heartbeat()->add_lease_ids(lease);
    ASSERT_TRUE(worker->Write(beat));
    Sync(*worker);
    // 40 s after the lease, 20 s after the heartbeat: still live (ttl 30 s).
    clock_.Advance(absl::Seconds(20));
    EXPECT_EQ(scheduler_->ExpireLeases(), 0);
    EXPECT_EQ(GetTask(*tasks_, id).state(), v1::TASK_STATE_LEASED);
    worker->WritesDone();  // the worker goes away
    EXPECT_TRUE(worker->Finish().ok());
  }
  // Its lease runs out: the task is requeued for another worker.
  clock_.Advance(absl::Seconds(11));
  EXPECT_EQ(scheduler_->ExpireLeases(), 1);
  v1::Task task = GetTask(*tasks_, id);
  EXPECT_EQ(task.state(), v1::TASK_STATE_QUEUED);
  EXPECT_FALSE(task.last_error().empty());
  clock_.Advance(absl::Minutes(2));  // past the backoff
  std::unique_ptr<WorkerStream> other = ConnectWorker(1);
  v1::ConnectResponse msg;
  ASSERT_TRUE(other->Read(&msg));
  ASSERT_TRUE(msg.has_assignment());
  EXPECT_EQ(msg.assignment().task().id(), id);
  EXPECT_EQ(msg.assignment().attempt(), 2);
  EXPECT_NE(msg.assignment().lease_id(), lease);
  other->WritesDone();
  EXPECT_TRUE(other->Finish().ok());
}

TEST_F(ServiceTest, ManyWatchersSeeTheSameEvents) {
  std::unique_ptr<WorkerStream> worker = ConnectWorker(1);
  std::string id = CreateTask();
  const std::string lease = NextLease(*worker);
  constexpr int kWatchers = 5;
  std::vector<std::unique_ptr<grpc::ClientContext>> ctxs;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::WatchTaskResponse>>>
      watches;
  for (int i = 0; i < kWatchers; ++i) {
    ctxs.push_back(std::make_unique<grpc::ClientContext>());
    SetDeadline(*ctxs.back());
    v1::WatchTaskRequest req;
    req.set_task_id(id);
    watches.push_back(tasks_->WatchTask(ctxs.back().get(), req));
    v1::WatchTaskResponse first;
    ASSERT_TRUE(watches.back()->Read(&first));
    EXPECT_EQ(first.event().state(), v1::TASK_STATE_LEASED);
  }
  v1::ConnectRequest started;
  started.mutable_started()->set_lease_id(lease);
  ASSERT_TRUE(worker->Write(started));
  Complete(*worker, lease, v1::TERMINATION_REASON_EXITED, 0);
  for (auto& watch : watches) {
    std::vector<v1::TaskState> states;
    v1::WatchTaskResponse event;
    while (watch->Read(&event)) states.push_back(event.event().state());
    EXPECT_TRUE(watch->Finish().ok());
    EXPECT_EQ(states, (std::vector<v1::TaskState>{v1::TASK_STATE_RUNNING,
                                                  v1::TASK_STATE_SUCCEEDED}));
  }
  worker->WritesDone();
  EXPECT_TRUE(worker->Finish().ok());
}

TEST_F(ServiceTest, OutputPastTheSpecsCapIsDroppedAndReported) {
  std::unique_ptr<WorkerStream> worker = ConnectWorker(1);
  v1::TaskSpec spec;
  spec.set_max_output_bytes(5);
  std::string id = CreateTask(spec);
  const std::string lease = NextLease(*worker);
  Output(*worker, lease, 0, v1::OUTPUT_STREAM_STDOUT, "hello world");
  Complete(*worker, lease, v1::TERMINATION_REASON_EXITED, 0);
  Sync(*worker);
  v1::Task task = GetTask(*tasks_, id);
  EXPECT_EQ(task.state(), v1::TASK_STATE_SUCCEEDED);
  EXPECT_TRUE(task.result().output_truncated());
  EXPECT_EQ(ReadOutput(id, 0, v1::OUTPUT_STREAM_UNSPECIFIED), "hello");
  EXPECT_EQ(ReadOutput(id, 2, v1::OUTPUT_STREAM_STDOUT), "llo");
  worker->WritesDone();
  EXPECT_TRUE(worker->Finish().ok());
}

// GetArtifact over gRPC: the info, then the bytes a worker relayed, in
// order across several pages; a path the spec does not ask for is refused
// on the worker's stream; errors keep their codes, and stored bytes that end
// early are DATA_LOSS, not a short file.
TEST_F(ServiceTest, GetArtifactStreamsTheRelayedBytesInOrder) {
  std::unique_ptr<WorkerStream> worker = ConnectWorker(1);
  v1::TaskSpec spec;
  spec.add_artifacts("out/*");
  std::string id = CreateTask(spec);
  const std::string lease = NextLease(*worker);
  std::string data;
  for (int i = 0; i < 2500000; ++i) data.push_back(static_cast<char>(i % 251));
  auto send = [&](const std::string& path, int64_t offset,
                  const std::string& bytes) {
    v1::ConnectRequest req;
    req.mutable_artifact()->set_lease_id(lease);
    req.mutable_artifact()->mutable_chunk()->set_path(path);
    req.mutable_artifact()->mutable_chunk()->set_offset(offset);
    req.mutable_artifact()->mutable_chunk()->set_data(bytes);
    ASSERT_TRUE(worker->Write(req));
  };
  for (size_t off = 0; off < data.size(); off += 65536) {
    send("out/data.bin", static_cast<int64_t>(off), data.substr(off, 65536));
  }
  send("../escape", 0, "x");
  v1::ConnectResponse msg;
  ASSERT_TRUE(worker->Read(&msg));
  ASSERT_TRUE(msg.has_rejected()) << msg.ShortDebugString();
  EXPECT_EQ(msg.rejected().code(), grpc::StatusCode::INVALID_ARGUMENT);
  v1::ConnectRequest done;
  done.mutable_completion()->set_lease_id(lease);
  v1::TaskResult& result = *done.mutable_completion()->mutable_result();
  result.set_reason(v1::TERMINATION_REASON_EXITED);
  v1::ArtifactInfo& info = *result.add_artifacts();
  info.set_path("out/data.bin");
  info.set_status(v1::ARTIFACT_STATUS_COLLECTED);
  info.set_size_bytes(static_cast<int64_t>(data.size()));
  info.set_sha256(common::Sha256Hex(data));
  ASSERT_TRUE(worker->Write(done));
  Sync(*worker);
  ASSERT_EQ(GetTask(*tasks_, id).state(), v1::TASK_STATE_SUCCEEDED);

  struct Fetched {
    grpc::Status status;
    v1::ArtifactInfo info;
    std::string bytes;
    int chunks = 0;
  };
  auto fetch = [&](const std::string& path) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    v1::GetArtifactRequest req;
    req.set_task_id(id);
    req.set_path(path);
    auto reader = tasks_->GetArtifact(&ctx, req);
    Fetched got;
    v1::GetArtifactResponse resp;
    while (reader->Read(&resp)) {
      if (resp.has_info()) {
        EXPECT_EQ(got.chunks, 0) << "the info comes first";
        got.info = resp.info();
        continue;
      }
      EXPECT_EQ(resp.chunk().offset(), static_cast<int64_t>(got.bytes.size()));
      got.bytes += resp.chunk().data();
      ++got.chunks;
    }
    got.status = reader->Finish();
    return got;
  };
  Fetched got = fetch("out/data.bin");
  EXPECT_TRUE(got.status.ok()) << got.status.error_message();
  EXPECT_EQ(got.info.size_bytes(), static_cast<int64_t>(data.size()));
  EXPECT_EQ(got.info.sha256(), common::Sha256Hex(data));
  EXPECT_TRUE(got.bytes == data) << "got " << got.bytes.size() << " bytes";
  EXPECT_GE(got.chunks, 3);
  EXPECT_EQ(fetch("out/none").status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(fetch("").status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // The stored bytes lose their end: the stream says so.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(store_path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "DELETE FROM artifact_chunks WHERE byte_offset = "
                         "(SELECT MAX(byte_offset) FROM artifact_chunks)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  got = fetch("out/data.bin");
  EXPECT_EQ(got.status.error_code(), grpc::StatusCode::DATA_LOSS)
      << got.status.error_message();
  EXPECT_LT(got.bytes.size(), data.size());
  worker->WritesDone();
  EXPECT_TRUE(worker->Finish().ok());
}

TEST_F(ServiceTest, ListTasksPagesNewestFirstWithFilters) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    v1::TaskSpec spec;
    (*spec.mutable_labels())["team"] = i % 2 ? "b" : "a";
    ids.push_back(CreateTask(spec));
  }
  std::vector<std::string> seen;
  std::string token;
  do {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    v1::ListTasksRequest req;
    req.set_page_size(2);
    req.set_page_token(token);
    v1::ListTasksResponse resp;
    ASSERT_TRUE(tasks_->ListTasks(&ctx, req, &resp).ok());
    for (const v1::Task& t : resp.tasks()) seen.push_back(t.id());
    token = resp.next_page_token();
  } while (!token.empty());
  EXPECT_EQ(seen,
            (std::vector<std::string>{ids[4], ids[3], ids[2], ids[1], ids[0]}));
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  v1::ListTasksRequest req;
  (*req.mutable_labels())["team"] = "b";
  req.add_states(v1::TASK_STATE_QUEUED);
  v1::ListTasksResponse resp;
  ASSERT_TRUE(tasks_->ListTasks(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.tasks_size(), 2);
  EXPECT_EQ(resp.tasks(0).id(), ids[3]);
  EXPECT_EQ(resp.tasks(1).id(), ids[1]);
  grpc::ClientContext bad_ctx;
  SetDeadline(bad_ctx);
  v1::ListTasksRequest bad;
  bad.set_page_token("not-a-token");
  EXPECT_EQ(tasks_->ListTasks(&bad_ctx, bad, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

class SlowFollowerTest : public ServiceTest {
 protected:
  TaskServiceOptions TaskOptions() override {
    return {.max_follow_live_bytes = 100 << 10};
  }
};

TEST_F(SlowFollowerTest, ASlowOutputFollowerMissesNothing) {
  std::unique_ptr<WorkerStream> worker =
      ConnectWorker(1, /*batches=*/false, /*deadline_seconds=*/60);
  std::string id = CreateTask();
  const std::string lease = NextLease(*worker);

  grpc::ClientContext ctx;
  SetDeadline(ctx, 60);
  v1::StreamTaskOutputRequest req;
  req.set_task_id(id);
  req.set_follow(true);
  auto reader = tasks_->StreamTaskOutput(&ctx, req);
  Output(*worker, lease, 0, v1::OUTPUT_STREAM_STDOUT, "start");
  v1::StreamTaskOutputResponse resp;
  ASSERT_TRUE(reader->Read(&resp));  // following live from here
  // Then it stops reading while far more output than the server holds for
  // a live follower (here 100 KiB) arrives.
  std::string expected = "start";
  int64_t offset = 5;
  for (int i = 0; i < 128; ++i) {
    std::string data(64 << 10, static_cast<char>('a' + i % 26));
    Output(*worker, lease, offset, v1::OUTPUT_STREAM_STDOUT, data);
    offset += data.size();
    expected += data;
  }
  Complete(*worker, lease, v1::TERMINATION_REASON_EXITED, 0);
  Sync(*worker);
  std::string got = resp.chunk().data();
  int64_t next = resp.chunk().offset() + resp.chunk().data().size();
  while (reader->Read(&resp)) {
    ASSERT_EQ(resp.chunk().offset(), next);
    got += resp.chunk().data();
    next += resp.chunk().data().size();
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(got.size(), expected.size());
  EXPECT_TRUE(got == expected);
  worker->WritesDone();
  EXPECT_TRUE(worker->Finish().ok());
}

class SlowWatcherTest : public ServiceTest {
 protected:
  TaskServiceOptions TaskOptions() override { return {.max_watch_backlog = 1}; }
};

TEST_F(SlowWatcherTest, AWatcherThatFallsBehindGetsAnErrorItCanResumeFrom) {
  std::unique_ptr<WorkerStream> worker = ConnectWorker(2);
  v1::TaskSpec spec;
  spec.mutable_retry_policy()->set_max_attempts(3);
  spec.mutable_retry_policy()->mutable_initial_backoff();  // zero: at once
  std::string id = CreateTask(spec);
  const std::string lease = NextLease(*worker);

  grpc::ClientContext watch_ctx;
  SetDeadline(watch_ctx);
  v1::WatchTaskRequest watch_req;
  watch_req.set_task_id(id);
  auto watch = tasks_->WatchTask(&watch_ctx, watch_req);
  v1::WatchTaskResponse event;
  ASSERT_TRUE(watch->Read(&event));
  // One report, two events at once (QUEUED for the retry, LEASED again):
  // more than this watcher may hold.
  v1::ConnectRequest failed;
  failed.mutable_completion()->set_lease_id(lease);
  // INTERNAL: a retry on the task's own budget, with its zero backoff.
  failed.mutable_completion()->mutable_error()->set_code(
      grpc::StatusCode::INTERNAL);
  ASSERT_TRUE(worker->Write(failed));
  while (watch->Read(&event)) {
  }
  EXPECT_EQ(watch->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // The scheduler went on: the retry was leased.
  v1::ConnectResponse msg;
  ASSERT_TRUE(worker->Read(&msg));
  ASSERT_TRUE(msg.has_assignment());
  EXPECT_EQ(msg.assignment().attempt(), 2);

  // Resume: a new WatchTask starts from the current state.
  grpc::ClientContext again_ctx;
  SetDeadline(again_ctx);
  auto again = tasks_->WatchTask(&again_ctx, watch_req);
  ASSERT_TRUE(again->Read(&event));
  EXPECT_EQ(event.event().state(), v1::TASK_STATE_LEASED);
  EXPECT_EQ(event.event().attempt(), 2);
  Complete(*worker, msg.assignment().lease_id(), v1::TERMINATION_REASON_EXITED,
           0);
  ASSERT_TRUE(again->Read(&event));
  EXPECT_EQ(event.event().state(), v1::TASK_STATE_SUCCEEDED);
  EXPECT_TRUE(again->Finish().ok());
  worker->WritesDone();
  EXPECT_TRUE(worker->Finish().ok());
}

}  // namespace
}  // namespace server
