// TaskService.BatchCreateTasks over a real in-process server and real stubs,
// callers authenticated by API tokens: per-item answers in order (bad specs,
// request_ids repeated in the batch), quotas per item, the batch limit, an
// empty batch, tenants and roles, trace ids.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/grpc_server.h"
#include "common/trace.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "gtest/gtest.h"
#include "server/auth/api_tokens.h"
#include "server/auth/authenticator.h"
#include "server/outbox/durable_outbox.h"
#include "server/scheduler/request_validation.h"
#include "server/scheduler/scheduler.h"
#include "server/store/sqlite_task_store.h"
#include "server/task_service.h"
#include "server/tenancy/tenants_config.h"
#include "tests/server/test_util.h"

namespace server {
namespace {

namespace v1 = crucible::v1;

v1::CreateTaskRequest Item(std::string request_id = "",
                           std::string command = "true") {
  v1::CreateTaskRequest r;
  r.mutable_spec()->set_image("localhost/crucible/busybox:latest");
  r.mutable_spec()->add_command(std::move(command));
  r.set_request_id(std::move(request_id));
  return r;
}

class BatchServiceTest : public testing::Test {
 protected:
  void SetUp() override {
    auto store =
        SqliteTaskStore::Open({.path = testing_util::FreshDir() + "/tasks.db"});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    outbox_ = std::make_unique<DurableOutbox>(*store_, DurableOutboxOptions{});
    auto tenants =
        ParseTenantsConfig(R"({"tenants": {"a": {"max_queued_tasks": 3}}})");
    ASSERT_TRUE(tenants.ok()) << tenants.status();
    SchedulerOptions options;
    options.tenants = std::make_shared<const TenantsConfig>(*tenants);
    auto scheduler = Scheduler::Create(options, *store_, *outbox_, clock_);
    ASSERT_TRUE(scheduler.ok()) << scheduler.status();
    scheduler_ = *std::move(scheduler);
    auto tokens = auth::ApiTokens::Create(*store_, clock_);
    ASSERT_TRUE(tokens.ok()) << tokens.status();
    tokens_ = *std::move(tokens);
    a_ = Issue("a", v1::ROLE_USER);
    b_ = Issue("b", v1::ROLE_USER);
    reader_ = Issue("a", v1::ROLE_READER);
    authenticator_ = std::make_unique<auth::Authenticator>(
        auth::AuthenticatorOptions{}, tokens_.get(), nullptr);
    service_ =
        std::make_unique<TaskService>(*scheduler_, pool_, *authenticator_);
    auto server = common::GrpcServer::Start({.listen_address = "127.0.0.1:0"},
                                            {service_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    stub_ = v1::TaskService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                            grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(1));
  }
  std::string Issue(const std::string& tenant, v1::Role role) {
    auto issued = tokens_->Issue(
        {.name = absl::StrCat("t", ++issued_), .tenant = tenant, .role = role});
    EXPECT_TRUE(issued.ok()) << issued.status();
    return issued.ok() ? issued->second : "";
  }
  // BatchCreateTasks as the holder of `token` ("" for none).
  grpc::Status Batch(const std::vector<v1::CreateTaskRequest>& items,
                     v1::BatchCreateTasksResponse& response,
                     const std::string& token,
                     const std::string& traceparent = "") {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(20));
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    if (!traceparent.empty()) {
      ctx.AddMetadata(common::kTraceparentKey, traceparent);
    }
    v1::BatchCreateTasksRequest request;
    for (const v1::CreateTaskRequest& item : items) {
      *request.add_requests() = item;
    }
    return stub_->BatchCreateTasks(&ctx, request, &response);
  }
  grpc::StatusCode GetAs(const std::string& token, const std::string& id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    ctx.AddMetadata("authorization", "Bearer " + token);
    v1::GetTaskRequest request;
    request.set_task_id(id);
    v1::GetTaskResponse response;
    return stub_->GetTask(&ctx, request, &response).error_code();
  }

  // Members in this order so the server goes before what it serves.
  common::FakeClock clock_;
  std::unique_ptr<SqliteTaskStore> store_;
  std::unique_ptr<DurableOutbox> outbox_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<auth::ApiTokens> tokens_;
  int issued_ = 0;
  std::string a_, b_, reader_;
  std::unique_ptr<auth::Authenticator> authenticator_;
  BlockingPool pool_{4};
  std::unique_ptr<TaskService> service_;
  std::unique_ptr<common::GrpcServer> server_;
  std::unique_ptr<v1::TaskService::Stub> stub_;
};

TEST_F(BatchServiceTest, EachRequestGetsItsOwnAnswerInOrder) {
  v1::CreateTaskRequest bad = Item();
  bad.mutable_spec()->clear_image();
  v1::CreateTaskRequest long_id = Item(std::string(200, 'r'));
  v1::BatchCreateTasksResponse response;
  // Tenant b: no quota.
  grpc::Status s =
      Batch({Item("x"), bad, Item("x"), Item("x", "other"), long_id, Item()},
            response, b_);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(response.results_size(), 6);
  const auto& r = response.results();
  ASSERT_TRUE(r[0].has_task());
  EXPECT_EQ(r[0].task().tenant(), "b");
  EXPECT_EQ(r[0].task().request_id(), "x");
  EXPECT_EQ(r[1].error().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_FALSE(r[1].error().message().empty());
  ASSERT_TRUE(r[2].has_task());  // the same request again: the same task
  EXPECT_EQ(r[2].task().id(), r[0].task().id());
  EXPECT_EQ(r[3].error().code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(r[4].error().code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(r[5].has_task());
  EXPECT_NE(r[5].task().id(), r[0].task().id());
  // The tasks are the caller's tenant's: b sees them, a does not.
  EXPECT_EQ(GetAs(b_, r[0].task().id()), grpc::StatusCode::OK);
  EXPECT_EQ(GetAs(b_, r[5].task().id()), grpc::StatusCode::OK);
  EXPECT_EQ(GetAs(a_, r[0].task().id()), grpc::StatusCode::NOT_FOUND);
}

TEST_F(BatchServiceTest, AMalformedMessageIsRefusedWhole) {
  // Invalid UTF-8 in a string field: the message cannot be parsed, so no
  // item can be told apart.
  v1::CreateTaskRequest bad_utf8 = Item();
  bad_utf8.mutable_spec()->set_working_dir("\xff");
  v1::BatchCreateTasksResponse response;
  EXPECT_EQ(Batch({Item(), bad_utf8}, response, b_).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(BatchServiceTest, QuotasRefuseTheItemsPastThemOnly) {
  std::vector<v1::CreateTaskRequest> items(5, Item());
  v1::BatchCreateTasksResponse response;
  grpc::Status s = Batch(items, response, a_);  // a: 3 queued at most
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(response.results_size(), 5);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(response.results(i).has_task()) << i;
  for (int i = 3; i < 5; ++i) {
    EXPECT_EQ(response.results(i).error().code(),
              grpc::StatusCode::RESOURCE_EXHAUSTED)
        << i;
  }
}

TEST_F(BatchServiceTest, TheCallFailsWholeOnlyForWhatConcernsEveryItem) {
  v1::BatchCreateTasksResponse response;
  std::vector<v1::CreateTaskRequest> too_many(kMaxBatchCreateRequests + 1,
                                              Item());
  EXPECT_EQ(Batch(too_many, response, b_).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Batch({Item()}, response, "").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Batch({Item()}, response, reader_).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // An empty batch creates nothing and says so.
  grpc::Status s = Batch({}, response, b_);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.results_size(), 0);
}

TEST_F(BatchServiceTest, ATraceparentIsTheTraceOfEveryTaskOfTheBatch) {
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  v1::BatchCreateTasksResponse response;
  grpc::Status s = Batch({Item(), Item()}, response, b_,
                         absl::StrCat("00-", trace, "-00f067aa0ba902b7-01"));
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(response.results_size(), 2);
  EXPECT_EQ(response.results(0).task().trace_id(), trace);
  EXPECT_EQ(response.results(1).task().trace_id(), trace);
}

}  // namespace
}  // namespace server
