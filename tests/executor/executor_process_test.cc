// The crucible-executor binary over gRPC against the real engine behind the
// real proxy: SIGTERM drains, orphans are reaped at start and periodically;
// and a private engine killed in the middle of a run.
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/client_unary_call.h>
#include <sys/wait.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/proto_time.h"
#include "crucible/v1/executor_service.grpc.pb.h"
#include "executor/docker/engine_client.h"
#include "executor/policy/container_policy.h"
#include "executor/runner/runner.h"
#include "grpc/health/v1/health.pb.h"
#include "gtest/gtest.h"
#include "tests/executor/engine_env.h"
#include "tests/testing/process.h"
#include "tests/testing/process_flags.h"
#include "tests/testing/test_stack.h"

namespace {

using crucible::v1::RunRequest;
using crucible::v1::RunResponse;
using testing_util::Process;

// Polls `done` every 50 ms until it holds or `timeout` passes.
template <typename F>
bool Eventually(F done, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return true;
}

// One Run call read on its own thread: the events, then the status.
class RunCall {
 public:
  RunCall(crucible::v1::ExecutorService::Stub& stub, RunRequest request) {
    ctx_.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(90)));
    reader_ = stub.Run(&ctx_, request);
    thread_ = std::thread([this] {
      RunResponse r;
      while (reader_->Read(&r)) {
        if (r.has_started()) started_.Notify();
        if (r.has_output()) out_ += r.output().data();
        if (r.has_finished()) result_ = r.finished();
      }
      status_ = reader_->Finish();
      ended_at_ = absl::Now();
      done_.Notify();
    });
  }
  ~RunCall() {
    ctx_.TryCancel();
    thread_.join();
  }
  bool WaitStarted() {
    return started_.WaitForNotificationWithTimeout(absl::Seconds(30));
  }
  bool WaitDone(absl::Duration d) {
    return done_.WaitForNotificationWithTimeout(d);
  }
  // Valid after WaitDone.
  const grpc::Status& status() const { return status_; }
  const std::optional<crucible::v1::TaskResult>& result() const {
    return result_;
  }
  const std::string& out() const { return out_; }
  absl::Time ended_at() const { return ended_at_; }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<RunResponse>> reader_;
  absl::Notification started_, done_;
  std::optional<crucible::v1::TaskResult> result_;
  std::string out_;
  grpc::Status status_;
  absl::Time ended_at_;
  std::thread thread_;
};

// Health services of one channel's server: `service`'s status, or the
// call's error; `reason` (if not null) gets why it is NOT_SERVING (the
// crucible-health-reason trailer, as documented), "" without one.
std::string HealthOf(grpc::Channel& channel, const std::string& service,
                     std::string* reason = nullptr) {
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::health::v1::HealthCheckResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  static const grpc::internal::RpcMethod kCheck(
      "/grpc.health.v1.Health/Check", grpc::internal::RpcMethod::NORMAL_RPC);
  grpc::Status s =
      grpc::internal::BlockingUnaryCall<grpc::health::v1::HealthCheckRequest,
                                        grpc::health::v1::HealthCheckResponse>(
          &channel, kCheck, &ctx, req, &resp);
  if (reason != nullptr) {
    auto it = ctx.GetServerTrailingMetadata().find("crucible-health-reason");
    *reason = it == ctx.GetServerTrailingMetadata().end()
                  ? ""
                  : std::string(it->second.data(), it->second.size());
  }
  if (!s.ok()) return absl::StrCat("error ", s.error_code());
  return grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
      resp.status());
}

class ExecutorProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_ = testing_util::TestStackFromEnv();
    REQUIRE_TEST_STACK(stack_);
    auto engine =
        docker::EngineClient::Create({.docker_host = stack_.docker_host});
    ASSERT_TRUE(engine.ok());
    engine_ = *std::move(engine);
    dir_ = testing_util::MakeTempDir("executor");
  }

  void TearDown() override {
    if (process_.has_value() && HasFailure()) std::cerr << process_->Log();
    if (engine_ == nullptr) return;
    auto left = engine_->ListContainers(policy::kExecutorLabel, executor_id_);
    ASSERT_TRUE(left.ok()) << left.status();
    EXPECT_TRUE(left->empty()) << left->size() << " containers left behind";
    for (const auto& c : *left) (void)engine_->Remove(c.name);
  }

  void StartExecutor(std::vector<std::string> extra) {
    std::vector<std::string> argv = {
        testing_util::BinaryPath("crucible-executor"),
        "--listen=127.0.0.1:0",
        "--port_file=" + dir_ + "/port",
        "--docker_host=" + stack_.docker_host,
        "--executor_id=" + executor_id_,
        "--ping_interval=200ms",
        "--slots=3"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = Process::Start(testing_util::WithTestFlags(std::move(argv)),
                            dir_ + "/executor.log");
    ASSERT_TRUE(p.ok()) << p.status();
    process_.emplace(*std::move(p));
    auto port = testing_util::WaitForPortFile(dir_ + "/port", *process_,
                                              absl::Seconds(30));
    ASSERT_TRUE(port.ok()) << port.status() << process_->Log();
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", *port),
                                   grpc::InsecureChannelCredentials());
    stub_ = crucible::v1::ExecutorService::NewStub(channel_);
    ASSERT_TRUE(
        Eventually([&] { return Health() == "SERVING"; }, absl::Seconds(20)))
        << process_->Log();
  }

  // The health status of the executor's service, or the call's error.
  std::string Health() {
    return HealthOf(*channel_, "crucible.v1.ExecutorService");
  }

  RunRequest Request(std::vector<std::string> argv) {
    RunRequest r;
    r.set_run_id(absl::StrCat(executor_id_, "-", ++runs_));
    r.set_task_id("task");
    r.set_attempt(1);
    r.mutable_spec()->set_image(executor_testing::kBusybox);
    for (auto& a : argv) r.mutable_spec()->add_command(a);
    return r;
  }

  // A container as a crashed executor leaves it: labelled, no run. Returns
  // its name.
  std::string CreateOrphan() {
    policy::ContainerPolicyOptions po;
    po.executor_id = executor_id_;
    auto policy = policy::ContainerPolicy::Create(po);
    EXPECT_TRUE(policy.ok());
    auto plan = policy->Plan(Request({"sleep", "60"}));
    EXPECT_TRUE(plan.ok()) << plan.status();
    if (!plan.ok()) return "";
    auto id = engine_->CreateContainer(plan->name, plan->create_body);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.ok() ? plan->name : "";
  }

  bool Gone(const std::string& name) {
    return engine_->InspectContainer(name).status().code() ==
           absl::StatusCode::kNotFound;
  }

  testing_util::TestStack stack_;
  const std::string executor_id_ = executor_testing::UniqueExecutorId();
  int runs_ = 0;
  std::string dir_;
  std::unique_ptr<docker::EngineClient> engine_;
  std::optional<Process> process_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<crucible::v1::ExecutorService::Stub> stub_;
};

TEST_F(ExecutorProcessTest,
       SigtermStopsTakingRunsSaysNotServingAndDrainsWithinTheGrace) {
  StartExecutor({"--cancel_grace=3s"});
  RunCall short_run(*stub_, Request({"sh", "-c", "sleep 1; echo finished"}));
  RunCall long_run(*stub_, Request({"sleep", "60"}));
  ASSERT_TRUE(short_run.WaitStarted());
  ASSERT_TRUE(long_run.WaitStarted());

  absl::Time term_at = absl::Now();
  ASSERT_EQ(kill(process_->pid(), SIGTERM), 0);
  EXPECT_TRUE(
      Eventually([&] { return Health() == "NOT_SERVING"; }, absl::Seconds(2)));
  RunCall refused(*stub_, Request({"true"}));
  ASSERT_TRUE(refused.WaitDone(absl::Seconds(10)));
  EXPECT_EQ(refused.status().error_code(), grpc::StatusCode::UNAVAILABLE)
      << refused.status().error_message();

  // The short run finishes by itself within the grace.
  ASSERT_TRUE(short_run.WaitDone(absl::Seconds(30)));
  ASSERT_TRUE(short_run.status().ok()) << short_run.status().error_message();
  ASSERT_TRUE(short_run.result().has_value());
  EXPECT_EQ(short_run.result()->reason(),
            crucible::v1::TERMINATION_REASON_EXITED);
  EXPECT_EQ(short_run.out(), "finished\n");
  // The long one is stopped at the end of the grace, UNAVAILABLE so that the
  // server retries it elsewhere; killing and removing it may take a while
  // on a loaded machine, but not a minute.
  ASSERT_TRUE(long_run.WaitDone(absl::Seconds(30)));
  EXPECT_EQ(long_run.status().error_code(), grpc::StatusCode::UNAVAILABLE)
      << long_run.status().error_message();
  EXPECT_GE(long_run.ended_at() - term_at, absl::Seconds(3));
  EXPECT_LT(long_run.ended_at() - term_at, absl::Seconds(20));

  absl::StatusOr<int> status = process_->Wait(absl::Seconds(30));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  // TearDown: no container of this executor is left.
}

TEST_F(ExecutorProcessTest, OrphansAreReapedAtStartAndPeriodically) {
  std::string before = CreateOrphan();
  ASSERT_FALSE(before.empty());
  StartExecutor({"--reap_interval=1s"});
  EXPECT_TRUE(Eventually([&] { return Gone(before); }, absl::Seconds(20)))
      << "orphan from before the start is still there";
  std::string after = CreateOrphan();
  ASSERT_FALSE(after.empty());
  EXPECT_TRUE(Eventually([&] { return Gone(after); }, absl::Seconds(20)))
      << "orphan created while running is still there";
  // A run in progress is not an orphan.
  RunCall run(*stub_, Request({"sh", "-c", "sleep 3; echo ok"}));
  ASSERT_TRUE(run.WaitStarted());
  ASSERT_TRUE(run.WaitDone(absl::Seconds(60)));
  ASSERT_TRUE(run.status().ok()) << run.status().error_message();
  EXPECT_EQ(run.out(), "ok\n");
}

TEST_F(ExecutorProcessTest, PolicyFileIsAppliedToRuns) {
  const std::string policy = dir_ + "/policy.json";
  FILE* f = fopen(policy.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs(R"({"images": ["localhost/crucible/busybox:latest"],
            "pids_limit": {"default": 16, "max": 32}})",
        f);
  fclose(f);
  StartExecutor({"--policy_file=" + policy});

  RunRequest too_many = Request({"true"});
  too_many.mutable_spec()->mutable_resources()->set_pids_limit(64);
  RunCall refused(*stub_, too_many);
  ASSERT_TRUE(refused.WaitDone(absl::Seconds(30)));
  EXPECT_EQ(refused.status().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(
      absl::StrContains(refused.status().error_message(), "pids_limit.max"))
      << refused.status().error_message();

  RunRequest other = Request({"true"});
  other.mutable_spec()->set_image("localhost/crucible/other:1");  // exact rule
  RunCall denied(*stub_, other);
  ASSERT_TRUE(denied.WaitDone(absl::Seconds(30)));
  EXPECT_EQ(denied.status().error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // The file's default reaches the container.
  RunCall run(*stub_,
              Request({"sh", "-c",
                       "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || "
                       "cat /sys/fs/cgroup/pids.max"}));
  ASSERT_TRUE(run.WaitDone(absl::Seconds(60)));
  ASSERT_TRUE(run.status().ok()) << run.status().error_message();
  EXPECT_EQ(run.out(), "16\n");
}

// A policy the executor cannot honour stops it at start, saying why.
TEST(ExecutorBadPolicyTest, BadPolicyFileStopsTheExecutorAtStart) {
  const std::string dir = testing_util::MakeTempDir("bad-policy");
  struct Case {
    const char* json;
    const char* says;
  };
  for (const Case& c : std::initializer_list<Case>{
           {R"({"user": "0:0"})", "root"},
           {R"({"memroy_bytes": {"max": 1}})", "memroy_bytes"},
           {R"({"network": "host"})", "host"},
       }) {
    const std::string path = dir + "/policy.json";
    FILE* f = fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs(c.json, f);
    fclose(f);
    auto p =
        Process::Start(testing_util::WithTestFlags(
                           {testing_util::BinaryPath("crucible-executor"),
                            "--listen=127.0.0.1:0", "--policy_file=" + path,
                            "--docker_host=tcp://127.0.0.1:1"}),
                       dir + "/executor.log");
    ASSERT_TRUE(p.ok()) << p.status();
    absl::StatusOr<int> status = p->Wait(absl::Seconds(30));
    ASSERT_TRUE(status.ok()) << c.json;
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1) << c.json;
    EXPECT_TRUE(absl::StrContains(p->Log(), c.says)) << p->Log();
  }
}

// An executor whose engine cannot be reached is not ready ("" and
// crucible.v1.ExecutorService NOT_SERVING) but alive ("liveness" SERVING),
// so a liveness probe does not restart it (and kill its runs) during an
// engine outage; at SIGTERM liveness turns NOT_SERVING too. The answers
// say why (the crucible-health-reason trailer): the engine and its error.
// Needs no engine.
TEST(ExecutorLivenessTest, AliveButNotReadyWhileTheEngineIsUnreachable) {
  const std::string dir = testing_util::MakeTempDir("liveness");
  auto p = Process::Start(
      testing_util::WithTestFlags(
          {testing_util::BinaryPath("crucible-executor"),
           "--listen=127.0.0.1:0", "--port_file=" + dir + "/port",
           "--docker_host=tcp://127.0.0.1:1",
           "--executor_id=" + executor_testing::UniqueExecutorId(),
           "--unhealthy_ping_interval=200ms"}),
      dir + "/executor.log");
  ASSERT_TRUE(p.ok()) << p.status();
  auto port =
      testing_util::WaitForPortFile(dir + "/port", *p, absl::Seconds(30));
  ASSERT_TRUE(port.ok()) << port.status() << p->Log();
  std::shared_ptr<grpc::Channel> channel = grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", *port), grpc::InsecureChannelCredentials());
  // Several rounds of failed pings: liveness holds all along.
  for (absl::Time until = absl::Now() + absl::Seconds(2); absl::Now() < until;
       absl::SleepFor(absl::Milliseconds(200))) {
    EXPECT_EQ(HealthOf(*channel, "liveness"), "SERVING") << p->Log();
    EXPECT_EQ(HealthOf(*channel, ""), "NOT_SERVING") << p->Log();
    EXPECT_EQ(HealthOf(*channel, "crucible.v1.ExecutorService"), "NOT_SERVING");
  }
  std::string reason;
  EXPECT_EQ(HealthOf(*channel, "", &reason), "NOT_SERVING");
  EXPECT_TRUE(absl::StartsWith(reason,
                               "container engine unreachable "
                               "(tcp://127.0.0.1:1): UNAVAILABLE: "))
      << reason << "\n"
      << p->Log();
  EXPECT_EQ(HealthOf(*channel, "liveness", &reason), "SERVING");
  EXPECT_EQ(reason, "");
  ASSERT_EQ(kill(p->pid(), SIGTERM), 0);
  EXPECT_TRUE(
      Eventually([&] { return HealthOf(*channel, "liveness") != "SERVING"; },
                 absl::Seconds(5)))
      << p->Log();
  absl::StatusOr<int> status = p->Wait(absl::Seconds(30));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << p->Log();
}

// An executor whose engine probe cannot run (its --engine_probe_image is
// not on the engine) refuses the engine: it logs why, never says SERVING and
// exits 1 by itself, without taking a task (operator guide, "Running it on
// Kubernetes": "must be on every engine node, or the executor exits 1
// saying so"; "The engine probe"). The real engine, through the proxy.
TEST(ExecutorProbeTest, AProbeImageMissingFromTheEngineStopsItWithExitOne) {
  CRUCIBLE_REQUIRE_ENGINE(docker_host);
  const std::string dir = testing_util::MakeTempDir("probe-image");
  const std::string image = "localhost/crucible/no-such-probe-image:latest";
  auto p = Process::Start(
      testing_util::WithTestFlags(
          {testing_util::BinaryPath("crucible-executor"),
           "--listen=127.0.0.1:0", "--port_file=" + dir + "/port",
           "--docker_host=" + docker_host, "--engine_probe_image=" + image,
           "--executor_id=" + executor_testing::UniqueExecutorId()}),
      dir + "/executor.log");
  ASSERT_TRUE(p.ok()) << p.status();
  absl::StatusOr<int> status = p->Wait(absl::Seconds(60));
  ASSERT_TRUE(status.ok()) << "still running 60 s after its start:\n"
                           << p->Log();
  ASSERT_TRUE(WIFEXITED(*status)) << "killed by signal " << WTERMSIG(*status);
  EXPECT_EQ(WEXITSTATUS(*status), 1) << p->Log();
  const std::string log = p->Log();
  EXPECT_TRUE(absl::StrContains(log, "refusing to run tasks on this engine"))
      << log;
  EXPECT_TRUE(absl::StrContains(log, image)) << log;
  EXPECT_TRUE(absl::StrContains(log, "--engine_probe_image")) << log;
  EXPECT_FALSE(absl::StrContains(log, "engine probe: memory limit")) << log;
}

// A private engine + proxy (deploy/local/engine) on the port after the
// shared one, so that the shared engine is not disturbed. A run of `sleep 60`
// is started, then the Podman service is killed or stopped (SIGSTOP): the
// run must end UNAVAILABLE, long before the task's own timeout.
class EngineDiesTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    testing_util::TestStack stack = testing_util::TestStackFromEnv();
    REQUIRE_TEST_STACK(stack);
    const char* port = std::getenv("CRUCIBLE_TEST_PRIVATE_PROXY_PORT");
    ASSERT_NE(port, nullptr) << "run through ctest";
    port_ = port;
    dir_ = testing_util::MakeTempDir("private-engine");
    auto started = testing_util::RunCommand({script_, "start", dir_, port_},
                                            absl::Seconds(120));
    ASSERT_TRUE(started.ok()) << started.status();
    ASSERT_EQ(started->exit_code, 0) << started->err;
    ASSERT_TRUE(
        absl::SimpleAtoi(absl::StripAsciiWhitespace(
                             testing_util::ReadFile(dir_ + "/engine.pid")),
                         &engine_pid_));
  }

  void TearDown() override {
    if (dir_.empty()) return;
    // Wake or restart the engine so that stop removes the container the
    // abandoned run left, then stop everything.
    kill(engine_pid_, SIGCONT);
    (void)testing_util::RunCommand({script_, "start", dir_, port_},
                                   absl::Seconds(120));
    (void)testing_util::RunCommand({script_, "stop", dir_}, absl::Seconds(60));
  }

  const std::string script_ = testing_util::SourcePath("deploy/local/engine");
  std::string port_, dir_;
  int engine_pid_ = 0;
};

TEST_P(EngineDiesTest, RunEndsUnavailableNotAHang) {
  docker::EngineClientOptions eo;
  eo.docker_host = absl::StrCat("tcp://127.0.0.1:", port_);
  eo.request_timeout = absl::Seconds(3);  // a hung engine is noticed sooner
  auto engine = docker::EngineClient::Create(eo);
  ASSERT_TRUE(engine.ok());
  // A freshly started engine on a busy machine may take longer than the
  // short timeout for its first answers: negotiate (cached) and look at the
  // image before the run, retrying for up to a minute.
  absl::Status warm = absl::UnknownError("not tried");
  for (absl::Time until = absl::Now() + absl::Minutes(1);
       !warm.ok() && absl::Now() < until;) {
    warm = (*engine)->NegotiateApiVersion().status();
    if (warm.ok()) warm = (*engine)->InspectImage(executor_testing::kBusybox);
    if (!warm.ok()) absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_TRUE(warm.ok()) << warm;
  policy::ContainerPolicyOptions po;
  po.executor_id = executor_testing::UniqueExecutorId();
  auto policy = policy::ContainerPolicy::Create(po);
  ASSERT_TRUE(policy.ok());
  runner::Runner runner(**engine, *policy, common::Clock::Real(),
                        runner::RunnerOptions{});
  RunRequest req;
  req.set_run_id("engine-dies");
  req.mutable_spec()->set_image(executor_testing::kBusybox);
  req.mutable_spec()->add_command("sleep");
  req.mutable_spec()->add_command("60");
  *req.mutable_spec()->mutable_timeout() =
      common::ToProtoDuration(absl::Seconds(55));

  class StartedSink : public runner::RunSink {
   public:
    void OnStarted(const crucible::v1::RunStarted&) override {
      started.Notify();
    }
    void OnOutput(crucible::v1::OutputChunk) override {}
    absl::Notification started;
  } sink;
  absl::StatusOr<crucible::v1::TaskResult> result;
  absl::Notification done;
  std::thread run([&] {
    result = runner.Run(req, sink, nullptr);
    done.Notify();
  });
  if (!sink.started.WaitForNotificationWithTimeout(absl::Seconds(30))) {
    // End the run before failing: a joinable thread must not be destroyed.
    runner.ShutdownAll();
    run.join();
    FAIL() << "the run did not start: " << result.status();
  }
  ASSERT_EQ(kill(engine_pid_, GetParam()), 0);
  // Well before the task's own 55 s timeout.
  bool ended = done.WaitForNotificationWithTimeout(absl::Seconds(30));
  if (!ended) runner.ShutdownAll();  // let the thread end before failing
  run.join();
  ASSERT_TRUE(ended) << "the run hung after the engine went away";
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable)
      << result.status();
}

INSTANTIATE_TEST_SUITE_P(KilledOrStopped, EngineDiesTest,
                         ::testing::Values(SIGKILL, SIGSTOP),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return info.param == SIGKILL ? "Killed" : "Stopped";
                         });

}  // namespace
