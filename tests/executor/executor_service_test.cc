// ExecutorService in-process on 127.0.0.1:0 through a real stub, over a real
// engine (CRUCIBLE_TEST_DOCKER_HOST).
#include "executor/executor_service.h"

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/proto_time.h"
#include "crucible/v1/executor_service.grpc.pb.h"
#include "executor/docker/engine_client.h"
#include "gtest/gtest.h"
#include "tests/executor/engine_env.h"

namespace executor {
namespace {

using crucible::v1::RunRequest;
using crucible::v1::RunResponse;

class ExecutorServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CRUCIBLE_REQUIRE_ENGINE(host);
    auto engine = docker::EngineClient::Create({.docker_host = host});
    ASSERT_TRUE(engine.ok());
    engine_ = *std::move(engine);
    policy::ContainerPolicyOptions po;
    po.executor_id = executor_id_;
    auto policy = policy::ContainerPolicy::Create(po);
    ASSERT_TRUE(policy.ok());
    policy_ = std::make_unique<policy::ContainerPolicy>(*policy);
    runner_ = std::make_unique<runner::Runner>(
        *engine_, *policy_, common::Clock::Real(), runner::RunnerOptions{});
    service_ = std::make_unique<ExecutorService>(*runner_);
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(service_.get());
    server_ = b.BuildAndStart();
    ASSERT_GT(port, 0);
    stub_ = crucible::v1::ExecutorService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (server_ != nullptr)
      server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    if (engine_ == nullptr) return;
    // Containers are removed, also after a caller cancellation (which the
    // run handles asynchronously: give it a bounded moment).
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    size_t left = 0;
    do {
      auto list = engine_->ListContainers("crucible.executor", executor_id_);
      ASSERT_TRUE(list.ok()) << list.status();
      left = list->size();
      if (left == 0) break;
      absl::SleepFor(absl::Milliseconds(100));
    } while (absl::Now() < deadline);
    EXPECT_EQ(left, 0u) << "containers left behind";
  }

  RunRequest Request(std::vector<std::string> argv) {
    RunRequest r;
    r.set_run_id(absl::StrCat(executor_id_, "-", ++runs_));
    r.set_task_id("task-x");
    r.set_attempt(3);
    r.mutable_spec()->set_image(executor_testing::kBusybox);
    for (auto& a : argv) r.mutable_spec()->add_command(a);
    return r;
  }

  static void SetDeadline(grpc::ClientContext& ctx, absl::Duration d) {
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + d));
  }

  const std::string executor_id_ = executor_testing::UniqueExecutorId();
  int runs_ = 0;
  std::unique_ptr<docker::EngineClient> engine_;
  std::unique_ptr<policy::ContainerPolicy> policy_;
  std::unique_ptr<runner::Runner> runner_;
  std::unique_ptr<ExecutorService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<crucible::v1::ExecutorService::Stub> stub_;
};

TEST_F(ExecutorServiceTest, RunStreamsStartedOutputFinished) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, absl::Seconds(30));
  auto reader =
      stub_->Run(&ctx, Request({"sh", "-c", "echo hello; echo oops >&2"}));
  std::vector<RunResponse> got;
  RunResponse r;
  while (reader->Read(&r)) got.push_back(r);
  grpc::Status status = reader->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_GE(got.size(), 3u);
  EXPECT_TRUE(got.front().has_started());
  EXPECT_FALSE(got.front().started().container_id().empty());
  // The run's limits, the policy's defaults where the spec sets none.
  const crucible::v1::RunLimits& limits = got.front().started().limits();
  EXPECT_EQ(common::FromProtoDuration(limits.timeout()),
            policy_->options().default_timeout);
  EXPECT_EQ(limits.resources().memory_bytes(),
            policy_->options().default_memory_bytes);
  EXPECT_EQ(limits.max_output_bytes(),
            policy_->options().default_max_output_bytes);
  ASSERT_TRUE(got.back().has_finished());
  EXPECT_EQ(got.back().finished().reason(),
            crucible::v1::TERMINATION_REASON_EXITED);
  EXPECT_EQ(got.back().finished().exit_code(), 0);
  std::string out, err;
  int64_t offset = 0;
  for (size_t i = 1; i + 1 < got.size(); ++i) {
    ASSERT_TRUE(got[i].has_output());
    EXPECT_EQ(got[i].output().offset(), offset);
    EXPECT_EQ(got[i].output().attempt(), 3);
    offset += static_cast<int64_t>(got[i].output().data().size());
    (got[i].output().stream() == crucible::v1::OUTPUT_STREAM_STDOUT ? out
                                                                    : err) +=
        got[i].output().data();
  }
  EXPECT_EQ(out, "hello\n");
  EXPECT_EQ(err, "oops\n");
}

TEST_F(ExecutorServiceTest, PolicyRefusalIsTheCallStatus) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, absl::Seconds(10));
  RunRequest req = Request({"true"});
  req.mutable_spec()->set_image("quay.io/evil:1");
  auto reader = stub_->Run(&ctx, req);
  RunResponse r;
  EXPECT_FALSE(reader->Read(&r));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(ExecutorServiceTest, CancelRpcEndsTheRunWithCancelled) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, absl::Seconds(30));
  RunRequest req = Request({"sleep", "60"});
  auto reader = stub_->Run(&ctx, req);
  RunResponse r;
  ASSERT_TRUE(reader->Read(&r));
  ASSERT_TRUE(r.has_started());
  grpc::ClientContext cctx;
  SetDeadline(cctx, absl::Seconds(10));
  crucible::v1::CancelRequest creq;
  creq.set_run_id(req.run_id());
  crucible::v1::CancelResponse cresp;
  ASSERT_TRUE(stub_->Cancel(&cctx, creq, &cresp).ok());
  RunResponse last;
  while (reader->Read(&r)) last = r;
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_TRUE(last.has_finished());
  EXPECT_EQ(last.finished().reason(),
            crucible::v1::TERMINATION_REASON_CANCELLED);

  grpc::ClientContext nctx;
  SetDeadline(nctx, absl::Seconds(10));
  creq.set_run_id("no-such-run");
  EXPECT_EQ(stub_->Cancel(&nctx, creq, &cresp).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(ExecutorServiceTest, CallerCancellationKillsAndRemovesTheContainer) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, absl::Seconds(30));
  RunRequest req = Request({"sleep", "60"});
  auto reader = stub_->Run(&ctx, req);
  RunResponse r;
  ASSERT_TRUE(reader->Read(&r));
  ASSERT_TRUE(r.has_started());
  const std::string name = policy::ContainerName(req.run_id());
  auto running = engine_->InspectContainer(name);
  ASSERT_TRUE(running.ok()) << running.status();
  ASSERT_TRUE(running->running);
  ctx.TryCancel();
  while (reader->Read(&r)) {
  }
  // CANCELLED, made by this client: it says nothing of the executor.
  (void)reader->Finish();
  // What the executor did about it: the run ended and its container is
  // gone, long before the 60 s sleep would have ended it.
  const absl::Time until = absl::Now() + absl::Seconds(20);
  auto gone = [&] {
    return runner_->active_runs() == 0 &&
           engine_->InspectContainer(name).status().code() ==
               absl::StatusCode::kNotFound;
  };
  while (!gone() && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(100));  // polling the engine
  }
  EXPECT_EQ(runner_->active_runs(), 0) << "the run outlived its caller";
  EXPECT_EQ(engine_->InspectContainer(name).status().code(),
            absl::StatusCode::kNotFound)
      << "the container outlived its caller";
}

}  // namespace
}  // namespace executor
