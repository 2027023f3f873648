// common::GrpcServer's health services over a real in-process server and a
// real health stub: "liveness" SERVING from the start until BeginStop,
// whatever readiness ("" and the named services) says.
#include "common/grpc_server.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"

namespace common {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// The answer's kHealthReasonKey; "(none)" without one.
std::string ReasonOf(const grpc::ClientContext& ctx) {
  for (const auto& metadata :
       {ctx.GetServerTrailingMetadata(), ctx.GetServerInitialMetadata()}) {
    auto it = metadata.find(kHealthReasonKey);
    if (it != metadata.end()) {
      return std::string(it->second.data(), it->second.size());
    }
  }
  return "(none)";
}

class GrpcServerHealthTest : public testing::Test {
 protected:
  void Start(bool initially_ready) {
    GrpcServerOptions options;
    options.health_service_names = {"crucible.v1.ExecutorService"};
    options.initially_ready = initially_ready;
    absl::StatusOr<std::unique_ptr<GrpcServer>> server =
        GrpcServer::Start(options, {});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    stub_ = grpc::health::v1::Health::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                            grpc::InsecureChannelCredentials()));
  }

  // The status of `service`, or the call's error code as text; `reason`
  // (if not null) gets the answer's kHealthReasonKey, "(none)" without one.
  std::string Check(const std::string& service, std::string* reason = nullptr) {
    HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    grpc::Status s = stub_->Check(&ctx, request, &response);
    if (reason != nullptr) *reason = ReasonOf(ctx);
    if (!s.ok()) return absl::StrCat("error ", s.error_code());
    return HealthCheckResponse::ServingStatus_Name(response.status());
  }

  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<grpc::health::v1::Health::Stub> stub_;
};

TEST_F(GrpcServerHealthTest, LivenessStaysServingWhileReadinessFlips) {
  Start(/*initially_ready=*/true);
  EXPECT_EQ(Check(kLivenessService), "SERVING");
  EXPECT_EQ(Check(""), "SERVING");
  EXPECT_EQ(Check("crucible.v1.ExecutorService"), "SERVING");
  server_->SetServing(false, "no engine");
  EXPECT_EQ(Check(""), "NOT_SERVING");
  EXPECT_EQ(Check("crucible.v1.ExecutorService"), "NOT_SERVING");
  EXPECT_EQ(Check(kLivenessService), "SERVING");
  server_->SetServing(true, "");
  EXPECT_EQ(Check(""), "SERVING");
  EXPECT_EQ(Check(kLivenessService), "SERVING");
}

// A NOT_SERVING answer of Check carries why in kHealthReasonKey: the
// reason of that service, printable ASCII, gone once it serves again; the
// stop reason for every service once the process stops.
TEST_F(GrpcServerHealthTest, NotServingAnswersSayWhy) {
  GrpcServerOptions options;
  options.health_service_names = {"crucible.v1.ExecutorService"};
  options.initially_ready = false;
  options.not_ready_reason = "waiting for the engine";
  auto server = GrpcServer::Start(options, {});
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = *std::move(server);
  stub_ = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                          grpc::InsecureChannelCredentials()));
  std::string reason;
  EXPECT_EQ(Check("", &reason), "NOT_SERVING");
  EXPECT_EQ(reason, "waiting for the engine");
  EXPECT_EQ(Check("crucible.v1.ExecutorService", &reason), "NOT_SERVING");
  EXPECT_EQ(reason, "waiting for the engine");
  EXPECT_EQ(Check(kLivenessService, &reason), "SERVING");
  EXPECT_EQ(reason, "(none)");
  EXPECT_EQ(Check("no.such.Service", &reason), "error 5");  // NOT_FOUND
  EXPECT_EQ(reason, "(none)");

  server_->SetServing(true, "ignored when serving");
  EXPECT_EQ(Check("", &reason), "SERVING");
  EXPECT_EQ(reason, "(none)");

  // One service of its own, with a reason that is not printable ASCII.
  server_->SetServiceServing("crucible.store", false, "disk full\n\xc3\xa9");
  EXPECT_EQ(Check("crucible.store", &reason), "NOT_SERVING");
  EXPECT_EQ(reason, "disk full???");
  EXPECT_EQ(Check("", &reason), "SERVING");
  EXPECT_EQ(reason, "(none)");
  // Set without a reason (health()): NOT_SERVING, and no stale reason.
  server_->health()->SetServingStatus("crucible.store", true);
  server_->health()->SetServingStatus("crucible.store", false);
  EXPECT_EQ(Check("crucible.store", &reason), "NOT_SERVING");
  EXPECT_EQ(reason, "(none)");

  server_->BeginStop("draining (signal 15)");
  EXPECT_EQ(Check(kLivenessService, &reason), "NOT_SERVING");
  EXPECT_EQ(reason, "draining (signal 15)");
  EXPECT_EQ(Check("crucible.store", &reason), "NOT_SERVING");
  EXPECT_EQ(reason, "draining (signal 15)");
  server_->SetServing(false, "a later reason");  // ignored once stopping
  EXPECT_EQ(Check("", &reason), "NOT_SERVING");
  EXPECT_EQ(reason, "draining (signal 15)");
}

TEST_F(GrpcServerHealthTest, NotReadyAtStartIsStillAlive) {
  Start(/*initially_ready=*/false);
  EXPECT_EQ(Check(""), "NOT_SERVING");
  EXPECT_EQ(Check("crucible.v1.ExecutorService"), "NOT_SERVING");
  EXPECT_EQ(Check(kLivenessService), "SERVING");
}

TEST_F(GrpcServerHealthTest, BeginStopTurnsEverythingNotServingForGood) {
  Start(/*initially_ready=*/true);
  server_->BeginStop();
  EXPECT_EQ(Check(kLivenessService), "NOT_SERVING");
  EXPECT_EQ(Check(""), "NOT_SERVING");
  EXPECT_EQ(Check("crucible.v1.ExecutorService"), "NOT_SERVING");
  server_->SetServing(true, "");  // e.g. the engine came back meanwhile
  EXPECT_EQ(Check(""), "NOT_SERVING");
  EXPECT_EQ(Check(kLivenessService), "NOT_SERVING");
}

// The plaintext health port (--health_listen) mirrors the main port's
// statuses, its own ones (health()) too, and serves nothing else, while the
// main port speaks TLS only.
TEST(GrpcServerHealthPortTest, MirrorsEveryStatusAndServesNothingElse) {
  GrpcServerOptions options;
  options.health_service_names = {"crucible.v1.ExecutorService"};
  options.health_listen_address = "127.0.0.1:0";
  options.credentials = grpc::experimental::LocalServerCredentials(LOCAL_TCP);
  absl::StatusOr<std::unique_ptr<GrpcServer>> server =
      GrpcServer::Start(options, {});
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->health_port(), 0);
  auto channel =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*server)->health_port()),
                          grpc::InsecureChannelCredentials());
  auto stub = grpc::health::v1::Health::NewStub(channel);
  auto check = [&](const std::string& service) -> std::string {
    HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    grpc::Status s = stub->Check(&ctx, request, &response);
    if (!s.ok()) return absl::StrCat("error ", s.error_code());
    return HealthCheckResponse::ServingStatus_Name(response.status());
  };
  EXPECT_EQ(check(""), "SERVING");
  EXPECT_EQ(check(kLivenessService), "SERVING");
  (*server)->SetServing(false, "no engine");
  EXPECT_EQ(check("crucible.v1.ExecutorService"), "NOT_SERVING");
  {  // with its reason, as on the main port
    HealthCheckRequest request;
    HealthCheckResponse response;
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    ASSERT_TRUE(stub->Check(&ctx, request, &response).ok());
    EXPECT_EQ(ReasonOf(ctx), "no engine");
  }
  (*server)->health()->SetServingStatus("crucible.store", false);
  EXPECT_EQ(check("crucible.store"), "NOT_SERVING");
  // No reflection (nor any other service) on the health port.
  grpc::GenericStub generic(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1), response;
  absl::Notification done;
  grpc::Status status;
  generic.UnaryCall(&ctx, "/grpc.reflection.v1alpha.ServerReflection/X",
                    grpc::StubOptions(), &request, &response,
                    [&](grpc::Status s) {
                      status = std::move(s);
                      done.Notify();
                    });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  (*server)->BeginStop();
  EXPECT_EQ(check(kLivenessService), "NOT_SERVING");
}

// Shutdown waits for a running call up to the grace, then cancels it (it
// closes the connections early only once no call runs: server_crash_test
// checks that with a client that keeps its connection after a cancelled
// stream).
class GrpcServerShutdownTest : public testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<GrpcServer>> server =
        GrpcServer::Start(GrpcServerOptions{}, {});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    stub_ = grpc::health::v1::Health::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                            grpc::InsecureChannelCredentials()));
  }

  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<grpc::health::v1::Health::Stub> stub_;
};

TEST_F(GrpcServerShutdownTest, WaitsTheGraceForARunningCallThenCancelsIt) {
  grpc::ClientContext ctx;
  HealthCheckRequest request;
  auto reader = stub_->Watch(&ctx, request);
  HealthCheckResponse response;
  ASSERT_TRUE(reader->Read(&response));  // the stream runs
  EXPECT_EQ(server_->live_calls(), 1);
  const absl::Time start = absl::Now();
  server_->Shutdown(absl::Milliseconds(500));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(500));
  while (reader->Read(&response)) {
  }
  EXPECT_NE(reader->Finish().error_code(), grpc::StatusCode::OK);
  EXPECT_EQ(server_->live_calls(), 0);
}

}  // namespace
}  // namespace common
