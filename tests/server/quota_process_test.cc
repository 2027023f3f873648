// Tenant quotas against a real crucible-server process with a tenants file,
// over gRPC: each quota answers RESOURCE_EXHAUSTED (naming it) and stores
// nothing; the running cap holds dispatch; the file is reloaded without a
// restart, and a bad one keeps the quotas in force. Calls without a token
// are tenant "default" (--allow_anonymous, as every test server); the
// tests of several tenants make API tokens with the admin token.
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "crucible/v1/queue_service.grpc.pb.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "crucible/v1/token_service.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"
#include "tests/testing/process_flags.h"

namespace {

namespace v1 = crucible::v1;

constexpr char kAdminToken[] = "admin-quota-0123456789abcdef01234";

#define ASSERT_OK(call)                         \
  do {                                          \
    const grpc::Status s_ = (call);             \
    ASSERT_TRUE(s_.ok()) << s_.error_message(); \
  } while (0)
#define EXPECT_OK(call)                         \
  do {                                          \
    const grpc::Status s_ = (call);             \
    EXPECT_TRUE(s_.ok()) << s_.error_message(); \
  } while (0)

void SetDeadline(grpc::ClientContext& ctx, int seconds = 10) {
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::seconds(seconds));
}

v1::TaskSpec Spec() {
  v1::TaskSpec spec;
  spec.set_image("localhost/crucible/busybox:latest");
  spec.add_command("true");
  return spec;
}

class QuotaProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing_util::MakeTempDir("quota");
    tenants_path_ = dir_ + "/tenants.json";
    std::ofstream(admin_token_path_ = dir_ + "/admin-token")
        << kAdminToken << "\n";
    chmod(admin_token_path_.c_str(), 0600);
  }

  void WriteTenants(const std::string& json) {
    // Replaced by a rename, as an operator (or a ConfigMap) would.
    const std::string tmp = tenants_path_ + ".tmp";
    std::ofstream(tmp, std::ios::trunc) << json;
    ASSERT_EQ(std::rename(tmp.c_str(), tenants_path_.c_str()), 0);
  }

  // Starts the server on the tenants file. No executor is ever known, so
  // fleet admission is off: tasks stay QUEUED unless a test worker takes
  // them.
  void StartServer() {
    const std::string port_file = dir_ + "/port";
    auto p = testing_util::Process::Start(
        testing_util::WithTestFlags(
            {absl::StrCat(getenv("CRUCIBLE_BIN_DIR"), "/crucible-server"),
             "--listen=127.0.0.1:0", absl::StrCat("--port_file=", port_file),
             absl::StrCat("--db=", dir_, "/tasks.db"),
             "--fleet_admission=false",
             absl::StrCat("--tenants_file=", tenants_path_),
             "--tenants_reload_interval=100ms",
             absl::StrCat("--admin_token_file=", admin_token_path_)}),
        dir_ + "/server.log");
    ASSERT_TRUE(p.ok()) << p.status();
    server_ = std::make_unique<testing_util::Process>(*std::move(p));
    auto port =
        testing_util::WaitForPortFile(port_file, *server_, absl::Seconds(20));
    ASSERT_TRUE(port.ok()) << port.status() << "\n" << server_->Log();
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", *port),
                                   grpc::InsecureChannelCredentials());
    tasks_ = v1::TaskService::NewStub(channel_);
  }

  // A user token of `tenant`, made by the admin.
  std::string NewToken(const std::string& tenant) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kAdminToken));
    v1::CreateTokenRequest req;
    req.set_name("quota-test");
    req.set_tenant(tenant);
    req.set_role(v1::ROLE_USER);
    v1::CreateTokenResponse reply;
    grpc::Status s =
        v1::TokenService::NewStub(channel_)->CreateToken(&ctx, req, &reply);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return reply.secret();
  }

  // Without `token`: tenant "default".
  grpc::Status Create(v1::TaskSpec spec, const std::string& request_id = "",
                      const std::string& token = "") {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    if (!token.empty()) {
      ctx.AddMetadata("authorization", absl::StrCat("Bearer ", token));
    }
    v1::CreateTaskRequest req;
    *req.mutable_spec() = std::move(spec);
    req.set_request_id(request_id);
    v1::CreateTaskResponse reply;
    return tasks_->CreateTask(&ctx, req, &reply);
  }

  std::vector<v1::Task> List() {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    v1::ListTasksRequest req;
    req.set_page_size(1000);
    v1::ListTasksResponse reply;
    grpc::Status s = tasks_->ListTasks(&ctx, req, &reply);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return {reply.tasks().begin(), reply.tasks().end()};
  }

  // Expects RESOURCE_EXHAUSTED naming `quota`.
  static void ExpectExhausted(const grpc::Status& s, const std::string& quota) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << s.error_message();
    EXPECT_TRUE(absl::StrContains(s.error_message(), quota))
        << s.error_message();
  }

  std::string dir_;
  std::string tenants_path_;
  std::string admin_token_path_;
  std::unique_ptr<testing_util::Process> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TaskService::Stub> tasks_;
};

TEST_F(QuotaProcessTest, MaxQueuedTasksRefusesAndStoresNothing) {
  WriteTenants(R"({"defaults": {"max_queued_tasks": 2}})");
  StartServer();
  ASSERT_OK(Create(Spec()));
  ASSERT_OK(Create(Spec()));
  ExpectExhausted(Create(Spec(), "third"), "max_queued_tasks is 2");
  EXPECT_EQ(List().size(), 2u);
  // The refusal did not take the request_id: once there is room, the same
  // request_id makes a new task.
  WriteTenants(R"({"defaults": {"max_queued_tasks": 3}})");
  grpc::Status s;
  for (absl::Time end = absl::Now() + absl::Seconds(10); absl::Now() < end;
       absl::SleepFor(absl::Milliseconds(50))) {
    s = Create(Spec(), "third");
    if (s.ok()) break;
  }
  ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << server_->Log();
  EXPECT_EQ(List().size(), 3u);
}

TEST_F(QuotaProcessTest, CreateRateRefusesSayingWhenToRetry) {
  WriteTenants(
      R"({"defaults": {"create_rate": {"per_second": 0.01, "burst": 2}}})");
  StartServer();
  ASSERT_OK(Create(Spec()));
  ASSERT_OK(Create(Spec()));
  grpc::Status s = Create(Spec());
  ExpectExhausted(s, "create_rate is 0.01 per second (burst 2)");
  EXPECT_TRUE(absl::StrContains(s.error_message(), "retry in"))
      << s.error_message();
  EXPECT_EQ(List().size(), 2u);
}

TEST_F(QuotaProcessTest, TaskMaximaRefuseAndStoreNothing) {
  WriteTenants(R"({"defaults": {"max_task": {
      "memory_bytes": 1048576, "cpu_millis": 500, "pids_limit": 10,
      "tmpfs_bytes": 4096, "max_output_bytes": 1000, "timeout": "1m"}}})");
  StartServer();
  v1::TaskSpec memory = Spec();
  memory.mutable_resources()->set_memory_bytes(2 << 20);
  ExpectExhausted(Create(memory), "max_task.memory_bytes is 1048576");
  v1::TaskSpec cpu = Spec();
  cpu.mutable_resources()->set_cpu_millis(501);
  ExpectExhausted(Create(cpu), "max_task.cpu_millis is 500");
  v1::TaskSpec pids = Spec();
  pids.mutable_resources()->set_pids_limit(11);
  ExpectExhausted(Create(pids), "max_task.pids_limit is 10");
  v1::TaskSpec tmpfs = Spec();
  tmpfs.mutable_resources()->set_tmpfs_bytes(8192);
  ExpectExhausted(Create(tmpfs), "max_task.tmpfs_bytes is 4096");
  v1::TaskSpec output = Spec();
  output.set_max_output_bytes(1001);
  ExpectExhausted(Create(output), "max_task.max_output_bytes is 1000");
  v1::TaskSpec timeout = Spec();
  timeout.mutable_timeout()->set_seconds(61);
  ExpectExhausted(Create(timeout), "max_task.timeout is 1m");
  EXPECT_TRUE(List().empty());
  v1::TaskSpec within = Spec();
  within.mutable_resources()->set_memory_bytes(1 << 20);
  within.mutable_timeout()->set_seconds(60);
  EXPECT_OK(Create(within));
  EXPECT_EQ(List().size(), 1u);
}

TEST_F(QuotaProcessTest, MaxRunningTasksHoldsDispatch) {
  WriteTenants(R"({"defaults": {"max_running_tasks": 1}})");
  StartServer();
  for (int i = 0; i < 3; ++i) ASSERT_OK(Create(Spec()));
  // A worker with room for all three gets one; the others wait.
  auto queue = v1::QueueService::NewStub(channel_);
  grpc::ClientContext ctx;
  SetDeadline(ctx, 30);
  auto stream = queue->Connect(&ctx);
  v1::ConnectRequest hello;
  hello.mutable_hello()->set_worker_id("w1");
  hello.mutable_hello()->set_credits(8);
  ASSERT_TRUE(stream->Write(hello));
  v1::ConnectResponse msg;
  auto next_assignment = [&]() -> std::string {
    while (stream->Read(&msg)) {
      if (msg.has_assignment()) return msg.assignment().lease_id();
    }
    return "";
  };
  const std::string first = next_assignment();
  ASSERT_FALSE(first.empty());
  // Dispatch is decided in the call that connected the worker, so the
  // list (durable state) already shows whatever it handed out.
  int queued = 0;
  for (const v1::Task& t : List()) {
    if (t.state() == v1::TASK_STATE_QUEUED) ++queued;
  }
  EXPECT_EQ(queued, 2);
  // Its run ends: the next one goes.
  v1::ConnectRequest done;
  done.mutable_completion()->set_lease_id(first);
  done.mutable_completion()->mutable_result()->set_reason(
      v1::TERMINATION_REASON_EXITED);
  ASSERT_TRUE(stream->Write(done));
  EXPECT_FALSE(next_assignment().empty());
  ctx.TryCancel();
  stream->Finish().IgnoreError();
}

// Several tenants, each from its caller's identity: quotas per tenant, and
// the issue's fair-share scenario (a backlog of one tenant, one task of
// another) with the dispatch order asserted.
TEST_F(QuotaProcessTest, TenantsFromIdentitiesShareDispatchAndHaveTheirQuotas) {
  WriteTenants(R"({"tenants": {"b": {"max_queued_tasks": 1}}})");
  StartServer();
  const std::string b = NewToken("b");
  ASSERT_FALSE(b.empty());
  constexpr int kBacklog = 300;
  for (int i = 0; i < kBacklog; ++i) ASSERT_OK(Create(Spec()));  // "default"
  auto queue = v1::QueueService::NewStub(channel_);
  grpc::ClientContext ctx;
  SetDeadline(ctx, 30);
  auto stream = queue->Connect(&ctx);
  v1::ConnectRequest hello;
  hello.mutable_hello()->set_worker_id("w1");
  hello.mutable_hello()->set_credits(10);
  ASSERT_TRUE(stream->Write(hello));
  v1::ConnectResponse msg;
  auto next_tenant = [&]() -> std::string {
    while (stream->Read(&msg)) {
      if (msg.has_assignment()) return msg.assignment().task().tenant();
    }
    return "";
  };
  for (int i = 0; i < 10; ++i) ASSERT_EQ(next_tenant(), "default") << i;
  // b's one task goes within the next two dispatches (one per active
  // tenant), not behind default's 290 left.
  ASSERT_OK(Create(Spec(), "", b));
  // b's quota is b's alone.
  ExpectExhausted(Create(Spec(), "", b),
                  "tenant \"b\": quota max_queued_tasks");
  ASSERT_OK(Create(Spec()));
  v1::ConnectRequest credit;
  credit.mutable_credit()->set_credits(2);
  ASSERT_TRUE(stream->Write(credit));
  EXPECT_EQ(next_tenant(), "default");
  EXPECT_EQ(next_tenant(), "b");
  ctx.TryCancel();
  stream->Finish().IgnoreError();
}

TEST_F(QuotaProcessTest, TheFileIsReloadedAndABadOneKeepsTheQuotas) {
  WriteTenants(R"({"defaults": {"max_queued_tasks": 1}})");
  StartServer();
  ASSERT_OK(Create(Spec()));
  ExpectExhausted(Create(Spec()), "max_queued_tasks is 1");
  WriteTenants(R"({"defaults": {"max_queued_tasks": 2}})");
  grpc::Status s;
  for (absl::Time end = absl::Now() + absl::Seconds(10); absl::Now() < end;
       absl::SleepFor(absl::Milliseconds(50))) {
    s = Create(Spec());
    if (s.ok()) break;
    ExpectExhausted(s, "max_queued_tasks is 1");
  }
  ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << server_->Log();
  // A bad file is logged and changes nothing.
  WriteTenants(R"({"defaults": {"max_queued_tasks": "many"}})");
  for (absl::Time end = absl::Now() + absl::Seconds(10);
       absl::Now() < end &&
       !absl::StrContains(server_->Log(), "keeping the quotas in force");
       absl::SleepFor(absl::Milliseconds(50))) {
  }
  EXPECT_TRUE(absl::StrContains(server_->Log(), "keeping the quotas in force"))
      << server_->Log();
  ExpectExhausted(Create(Spec()), "max_queued_tasks is 2");
  EXPECT_EQ(List().size(), 2u);
}

TEST_F(QuotaProcessTest, ABadFileAtStartStopsTheServer) {
  WriteTenants(R"({"defaults": {"max_queued": 1}})");
  auto p = testing_util::Process::Start(
      testing_util::WithTestFlags(
          {absl::StrCat(getenv("CRUCIBLE_BIN_DIR"), "/crucible-server"),
           "--listen=127.0.0.1:0", absl::StrCat("--db=", dir_, "/tasks.db"),
           absl::StrCat("--tenants_file=", tenants_path_)}),
      dir_ + "/bad.log");
  ASSERT_TRUE(p.ok()) << p.status();
  absl::StatusOr<int> status = p->Wait(absl::Seconds(20));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) != 0);
  EXPECT_TRUE(absl::StrContains(p->Log(), "defaults.max_queued")) << p->Log();
}

}  // namespace
