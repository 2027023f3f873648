// --metrics_listen on the real binaries: crucible-server, crucible-worker
// and crucible-executor each serve GET /metrics on a port of their own with
// their families, the server's counters follow a real CreateTask, and a
// metrics port that cannot be bound stops the process with exit 1.
#include <grpcpp/grpcpp.h>
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
#include "tests/testing/http_get.h"
#include "tests/testing/process.h"
#include "tests/testing/process_flags.h"
#include "tests/testing/test_stack.h"

namespace {

namespace v1 = crucible::v1;
using testing_util::Process;

constexpr absl::Duration kStartTimeout = absl::Seconds(30);

// A started binary and the ports it wrote.
struct Started {
  std::unique_ptr<Process> process;
  int port = 0;          // gRPC (the worker's: its health port)
  int metrics_port = 0;  // GET /metrics
};

class MetricsProcessTest : public testing::Test {
 protected:
  void SetUp() override { dir_ = testing_util::MakeTempDir("metrics"); }

  // Starts `binary` with --metrics_listen on a free port and `extra` flags.
  void Start(const std::string& binary, std::vector<std::string> extra,
             Started& out) {
    const std::string name = binary + std::to_string(++started_);
    std::vector<std::string> argv = {
        testing_util::BinaryPath(binary), "--listen=127.0.0.1:0",
        absl::StrCat("--port_file=", dir_, "/", name, ".port"),
        "--metrics_listen=127.0.0.1:0",
        absl::StrCat("--metrics_port_file=", dir_, "/", name, ".metrics")};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = Process::Start(testing_util::WithTestFlags(std::move(argv)),
                            absl::StrCat(dir_, "/", name, ".log"));
    ASSERT_TRUE(p.ok()) << p.status();
    out.process = std::make_unique<Process>(*std::move(p));
    auto metrics = testing_util::WaitForPortFile(
        absl::StrCat(dir_, "/", name, ".metrics"), *out.process, kStartTimeout);
    ASSERT_TRUE(metrics.ok()) << metrics.status() << out.process->Log();
    out.metrics_port = *metrics;
    auto port = testing_util::WaitForPortFile(
        absl::StrCat(dir_, "/", name, ".port"), *out.process, kStartTimeout);
    ASSERT_TRUE(port.ok()) << port.status() << out.process->Log();
    out.port = *port;
  }

  // Scrapes until `series` has a value that `ok` accepts (or the timeout);
  // returns the last value seen.
  std::optional<double> WaitForSample(int port, const std::string& series,
                                      const std::function<bool(double)>& ok) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    std::optional<double> v;
    while (absl::Now() < deadline) {
      auto text = testing_util::ScrapeMetrics(port);
      if (text.ok()) {
        v = testing_util::SampleValue(*text, series);
        if (v.has_value() && ok(*v)) return v;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return v;
  }

  std::string ServerFlags() { return absl::StrCat("--db=", dir_, "/tasks.db"); }

  std::string dir_;
  int started_ = 0;
};

// Every family of `names` is exposed with its HELP and TYPE.
void ExpectFamilies(const std::string& text,
                    const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    EXPECT_TRUE(absl::StrContains(text, absl::StrCat("# TYPE ", name, " ")))
        << name << " missing in:\n"
        << text;
    EXPECT_TRUE(absl::StrContains(text, absl::StrCat("# HELP ", name, " ")))
        << name;
  }
}

TEST_F(MetricsProcessTest, ServerCountsARealCreateTask) {
  Started server;
  ASSERT_NO_FATAL_FAILURE(Start(
      "crucible-server", {ServerFlags(), "--fleet_admission=false"}, server));
  auto reply = testing_util::HttpRequest(
      absl::StrCat("http://127.0.0.1:", server.metrics_port, "/metrics"),
      absl::Seconds(10));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->code, 200);
  EXPECT_EQ(reply->content_type, "text/plain; version=0.0.4; charset=utf-8");
  ExpectFamilies(
      reply->body,
      {"crucible_server_tasks_created_total",
       "crucible_server_tasks_ended_total", "crucible_server_tasks",
       "crucible_server_queue_wait_seconds",
       "crucible_server_lease_to_start_seconds",
       "crucible_server_task_retries_total",
       "crucible_server_lease_expiries_total",
       "crucible_server_reports_refused_total",
       "crucible_server_workers_connected", "crucible_server_worker_credits",
       "crucible_server_stream_subscribers",
       "crucible_server_store_commit_seconds",
       "crucible_server_store_commit_batch_size",
       "crucible_server_store_commit_failures_total"});
  EXPECT_EQ(testing_util::SampleValue(reply->body,
                                      "crucible_server_tasks_created_total"),
            0);

  auto stub = v1::TaskService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", server.port),
                          grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::CreateTaskRequest req;
  req.mutable_spec()->set_image("localhost/crucible/busybox:latest");
  req.mutable_spec()->add_command("true");
  v1::CreateTaskResponse created;
  grpc::Status s = stub->CreateTask(&ctx, req, &created);
  ASSERT_TRUE(s.ok()) << s.error_message() << server.process->Log();

  // Counted before CreateTask answered: one scrape sees it.
  auto text = testing_util::ScrapeMetrics(server.metrics_port);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(
      testing_util::SampleValue(*text, "crucible_server_tasks_created_total"),
      1);
  // Without tokens every task is the "default" tenant's.
  EXPECT_EQ(testing_util::SampleValue(
                *text,
                "crucible_server_tasks{state=\"QUEUED\",tenant=\"default\","
                "priority=\"normal\"}"),
            1);
  // The insert was committed (CreateTask answers once it is durable).
  auto batches = testing_util::SampleValue(
      *text, "crucible_server_store_commit_batch_size_sum");
  ASSERT_TRUE(batches.has_value());
  EXPECT_GE(*batches, 1);
}

// The metrics port needs no credentials, so it exposes counts, states and
// latencies, never what a task is (operator guide, "Metrics": "never a task
// id, image or command"): after tasks made, listed and cancelled, no scrape
// holds a task's id, trace id, image, command, label or request_id.
TEST_F(MetricsProcessTest, NoTaskIdImageOrCommandInTheServersMetrics) {
  Started server;
  ASSERT_NO_FATAL_FAILURE(Start(
      "crucible-server", {ServerFlags(), "--fleet_admission=false"}, server));
  auto stub = v1::TaskService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", server.port),
                          grpc::InsecureChannelCredentials()));
  auto ctx = [] {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::seconds(20));
    return c;
  };
  std::vector<std::string> secrets = {"localhost/crucible/image-xq7",
                                      "command-xq7", "label-key-xq7",
                                      "label-value-xq7", "request-xq7"};
  for (int i = 0; i < 2; ++i) {
    v1::CreateTaskRequest req;
    req.set_request_id(absl::StrCat("request-xq7-", i));
    req.mutable_spec()->set_image("localhost/crucible/image-xq7:latest");
    req.mutable_spec()->add_command("echo");
    req.mutable_spec()->add_command("command-xq7");
    (*req.mutable_spec()->mutable_labels())["label-key-xq7"] =
        "label-value-xq7";
    v1::CreateTaskResponse created;
    grpc::Status s = stub->CreateTask(ctx().get(), req, &created);
    ASSERT_TRUE(s.ok()) << s.error_message() << server.process->Log();
    secrets.push_back(created.task().id());
    ASSERT_FALSE(created.task().trace_id().empty());
    secrets.push_back(created.task().trace_id());
    if (i == 1) {  // one ends (cancelled while queued), one stays queued
      v1::CancelTaskRequest cancel;
      cancel.set_task_id(created.task().id());
      v1::CancelTaskResponse cancelled;
      s = stub->CancelTask(ctx().get(), cancel, &cancelled);
      ASSERT_TRUE(s.ok()) << s.error_message();
    }
  }
  v1::ListTasksResponse listed;
  ASSERT_TRUE(
      stub->ListTasks(ctx().get(), v1::ListTasksRequest(), &listed).ok());
  ASSERT_EQ(listed.tasks_size(), 2);
  // Both tasks are counted, so the scrape is one of after them.
  ASSERT_EQ(
      WaitForSample(server.metrics_port, "crucible_server_tasks_created_total",
                    [](double v) { return v == 2; }),
      2);
  auto text = testing_util::ScrapeMetrics(server.metrics_port);
  ASSERT_TRUE(text.ok()) << text.status();
  for (const std::string& secret : secrets) {
    EXPECT_FALSE(absl::StrContains(*text, secret))
        << secret << " is in the metrics:\n"
        << *text;
  }
  // The scrape is the real one: the tenant's queue depth is there.
  EXPECT_TRUE(absl::StrContains(*text, "crucible_server_tasks{")) << *text;
}

TEST_F(MetricsProcessTest, WorkerServesItsFamilies) {
  // No server and no executor answer: the worker is up, not ready.
  Started worker;
  ASSERT_NO_FATAL_FAILURE(
      Start("crucible-worker",
            {"--server=127.0.0.1:1", "--executors=127.0.0.1:2"}, worker));
  auto text = testing_util::ScrapeMetrics(worker.metrics_port);
  ASSERT_TRUE(text.ok()) << text.status();
  ExpectFamilies(*text, {"crucible_worker_assignments_in_flight",
                         "crucible_worker_executors_in_rotation",
                         "crucible_worker_placement_waits_total"});
  EXPECT_EQ(
      testing_util::SampleValue(*text, "crucible_worker_executors_in_rotation"),
      0);
  EXPECT_EQ(
      testing_util::SampleValue(*text, "crucible_worker_assignments_in_flight"),
      0);
}

TEST_F(MetricsProcessTest, ExecutorCountsItsFailedEnginePings) {
  // Nothing listens on port 1: every ping fails UNAVAILABLE.
  Started executor;
  ASSERT_NO_FATAL_FAILURE(
      Start("crucible-executor",
            {"--docker_host=tcp://127.0.0.1:1", "--ping_interval=100ms",
             "--unhealthy_ping_interval=100ms", "--slots=5"},
            executor));
  auto text = testing_util::ScrapeMetrics(executor.metrics_port);
  ASSERT_TRUE(text.ok()) << text.status();
  ExpectFamilies(
      *text,
      {"crucible_executor_runs_total", "crucible_executor_run_errors_total",
       "crucible_executor_slots", "crucible_executor_slots_busy",
       "crucible_executor_orphans_reaped_total",
       "crucible_executor_output_bytes_total",
       "crucible_executor_engine_call_seconds",
       "crucible_executor_engine_call_errors_total"});
  EXPECT_EQ(testing_util::SampleValue(*text, "crucible_executor_slots"), 5);
  EXPECT_EQ(testing_util::SampleValue(*text, "crucible_executor_slots_busy"),
            0);
  auto failed =
      WaitForSample(executor.metrics_port,
                    "crucible_executor_engine_call_errors_total{call=\"ping\","
                    "code=\"UNAVAILABLE\"}",
                    [](double v) { return v >= 2; });
  ASSERT_TRUE(failed.has_value()) << executor.process->Log();
  EXPECT_GE(*failed, 2);
}

TEST_F(MetricsProcessTest, AMetricsPortInUseStopsTheProcess) {
  Started first;
  ASSERT_NO_FATAL_FAILURE(Start("crucible-server", {ServerFlags()}, first));
  for (const std::string binary :
       {"crucible-server", "crucible-worker", "crucible-executor"}) {
    std::vector<std::string> argv = {
        testing_util::BinaryPath(binary), "--listen=127.0.0.1:0",
        absl::StrCat("--metrics_listen=127.0.0.1:", first.metrics_port)};
    if (binary == "crucible-server") {
      argv.push_back(absl::StrCat("--db=", dir_, "/second.db"));
    }
    auto p = Process::Start(testing_util::WithTestFlags(std::move(argv)),
                            absl::StrCat(dir_, "/busy-", binary, ".log"));
    ASSERT_TRUE(p.ok()) << p.status();
    absl::StatusOr<int> status = p->Wait(kStartTimeout);
    ASSERT_TRUE(status.ok()) << binary << " kept running: " << p->Log();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1)
        << binary << ": " << p->Log();
    EXPECT_TRUE(absl::StrContains(p->Log(), "cannot serve metrics"))
        << binary << ": " << p->Log();
  }
  // The first one still serves its scrapes.
  EXPECT_TRUE(testing_util::ScrapeMetrics(first.metrics_port).ok());
}

}  // namespace
