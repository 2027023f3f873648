// Issue 20's end-to-end check of the metrics: a real Prometheus (Debian's
// package) scrapes a real server, worker and executor and the docker-proxy
// in front of the engine, five tasks run (two succeed, one fails, one times
// out, one is refused by the proxy), and Prometheus' own query API must
// say exactly that. The proxy is one of the test's own, so that its
// counters see only this test's requests.
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/task_state.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/chaos/fleet_stack.h"
#include "tests/e2e/worker_cluster.h"
#include "tests/testing/http_get.h"

namespace worker_e2e {
namespace {

using testing_util::Process;

// The environment variable's port, set by ctest.
int PortFromEnv(const char* name) {
  const char* value = std::getenv(name);
  int port = 0;
  if (value == nullptr || !absl::SimpleAtoi(value, &port)) return 0;
  return port;
}

std::string UrlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      absl::StrAppendFormat(&out, "%%%02X", c);
    }
  }
  return out;
}

// Polls `done` every 100 ms until it holds or `timeout` passes.
template <typename Pred>
bool Eventually(Pred done, absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() >= until) return false;
    absl::SleepFor(absl::Milliseconds(100));  // polling a condition
  }
  return true;
}

// A Prometheus server of the test's own on 127.0.0.1:`port`, scraping
// `targets` (job name -> host:port) every second.
class Prometheus {
 public:
  absl::Status Start(const std::string& dir, int port,
                     const std::map<std::string, std::string>& targets) {
    port_ = port;
    std::string config =
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n";
    for (const auto& [job, target] : targets) {
      absl::StrAppend(&config, "  - job_name: ", job,
                      "\n    static_configs:\n      - targets: ['", target,
                      "']\n");
    }
    const std::string config_path = dir + "/prometheus.yml";
    std::ofstream(config_path) << config;
    absl::StatusOr<Process> p =
        Process::Start({"/usr/bin/prometheus", "--config.file=" + config_path,
                        "--storage.tsdb.path=" + dir + "/prometheus-data",
                        absl::StrCat("--web.listen-address=127.0.0.1:", port),
                        "--log.level=warn"},
                       dir + "/prometheus.log");
    if (!p.ok()) return p.status();
    process_.emplace(*std::move(p));
    for (const absl::Time until = absl::Now() + absl::Seconds(60);
         absl::Now() < until;) {
      auto ready = testing_util::HttpRequest(
          absl::StrCat("http://127.0.0.1:", port, "/-/ready"),
          absl::Seconds(2));
      if (ready.ok() && ready->code == 200) return absl::OkStatus();
      absl::SleepFor(absl::Milliseconds(200));  // polling a condition
    }
    return absl::DeadlineExceededError("prometheus not ready within 60s");
  }

  // The instant query's samples: labels (as JSON) -> value.
  absl::StatusOr<std::vector<std::pair<nlohmann::json, double>>> Query(
      const std::string& promql) {
    auto reply = testing_util::HttpRequest(
        absl::StrCat("http://127.0.0.1:", port_,
                     "/api/v1/query?query=", UrlEncode(promql)),
        absl::Seconds(10));
    if (!reply.ok()) return reply.status();
    nlohmann::json body = nlohmann::json::parse(reply->body, nullptr, false);
    if (reply->code != 200 || body.is_discarded() ||
        body.value("status", "") != "success") {
      return absl::InternalError(absl::StrCat("query ", promql, ": HTTP ",
                                              reply->code, ": ", reply->body));
    }
    std::vector<std::pair<nlohmann::json, double>> out;
    for (const nlohmann::json& r : body["data"]["result"]) {
      double v = 0;
      if (!absl::SimpleAtod(r["value"][1].get<std::string>(), &v)) {
        return absl::InternalError(absl::StrCat("bad value in ", r.dump()));
      }
      out.emplace_back(r["metric"], v);
    }
    return out;
  }

  // The value of a query that must give exactly one sample; nullopt (and
  // why, in `why`) otherwise.
  std::optional<double> One(const std::string& promql, std::string* why) {
    auto samples = Query(promql);
    if (!samples.ok()) {
      *why = samples.status().ToString();
      return std::nullopt;
    }
    if (samples->size() != 1) {
      *why = absl::StrCat(promql, ": ", samples->size(), " samples");
      return std::nullopt;
    }
    return samples->front().second;
  }

  std::string Log() const {
    return process_.has_value() ? process_->Log() : "(not started)";
  }

 private:
  int port_ = 0;
  std::optional<Process> process_;
};

class PrometheusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_ = testing_util::TestStackFromEnv();
    REQUIRE_TEST_STACK(stack_);
    cluster_ = std::make_unique<Cluster>(stack_.docker_host);
  }
  void TearDown() override {
    if (HasFailure() && cluster_ != nullptr) {
      std::cerr << cluster_->Logs() << "==== prometheus log\n"
                << prometheus_.Log();
    }
  }

  // Starts crucible-<binary> as `name` with a metrics port; returns its
  // gRPC port and sets `metrics` to the metrics port.
  absl::StatusOr<int> StartWithMetrics(const std::string& name,
                                       const std::string& binary,
                                       std::vector<std::string> args,
                                       int& metrics) {
    const std::string port_file =
        absl::StrCat(cluster_->dir(), "/", name, ".metrics-port");
    args.push_back("--metrics_listen=127.0.0.1:0");
    args.push_back("--metrics_port_file=" + port_file);
    absl::StatusOr<int> port = cluster_->Start(name, binary, std::move(args));
    if (!port.ok()) return port;
    absl::StatusOr<int> bound = testing_util::WaitForPortFile(
        port_file, cluster_->process(name), absl::Seconds(30));
    if (!bound.ok()) return bound.status();
    metrics = *bound;
    return port;
  }

  std::string Create(crucible::v1::TaskSpec spec) {
    crucible::v1::CreateTaskRequest req;
    *req.mutable_spec() = std::move(spec);
    crucible::v1::CreateTaskResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(In(absl::Seconds(10)));
    grpc::Status s = tasks_->CreateTask(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.task().id();
  }

  testing_util::TestStack stack_;
  std::unique_ptr<Cluster> cluster_;
  Prometheus prometheus_;
  std::unique_ptr<crucible::v1::TaskService::Stub> tasks_;
};

crucible::v1::TaskSpec Spec(const std::vector<std::string>& argv,
                            int timeout_seconds = 60,
                            const std::string& image = kImage) {
  crucible::v1::TaskSpec spec;
  spec.set_image(image);
  for (const std::string& a : argv) spec.add_command(a);
  spec.mutable_timeout()->set_seconds(timeout_seconds);
  return spec;
}

TEST_F(PrometheusTest, PrometheusSeesWhatHappenedToTheTasks) {
  const int proxy_port = PortFromEnv("CRUCIBLE_TEST_PROMETHEUS_PROXY_PORT");
  const int proxy_metrics_port =
      PortFromEnv("CRUCIBLE_TEST_PROMETHEUS_PROXY_METRICS_PORT");
  const int prometheus_port = PortFromEnv("CRUCIBLE_TEST_PROMETHEUS_PORT");
  ASSERT_TRUE(proxy_port != 0 && proxy_metrics_port != 0 &&
              prometheus_port != 0)
      << "run through ctest";
  Cluster& c = *cluster_;
  chaos::PrivateProxy proxy;
  ASSERT_TRUE(proxy
                  .Start(c.dir(), stack_.engine_socket, proxy_port,
                         absl::StrCat("127.0.0.1:", proxy_metrics_port))
                  .ok());

  // The executor may pull images; the proxy refuses pulls (it is started
  // without CRUCIBLE_PROXY_ALLOW_PULL): a task whose image is missing is
  // refused by the proxy.
  const std::string policy = c.dir() + "/policy.json";
  std::ofstream(policy) << R"({"pull_images": true})";
  int server_metrics = 0, executor_metrics = 0, worker_metrics = 0;
  absl::StatusOr<int> server = StartWithMetrics(
      "server", "server", {"--db=" + c.dir() + "/crucible.db"}, server_metrics);
  ASSERT_TRUE(server.ok()) << server.status();
  tasks_ = crucible::v1::TaskService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", *server), grpc::InsecureChannelCredentials()));
  absl::StatusOr<int> executor =
      StartWithMetrics("executor", "executor",
                       {"--docker_host=" + proxy.docker_host(), "--slots=4",
                        "--policy_file=" + policy,
                        absl::StrCat("--executor_id=prometheus-", getpid())},
                       executor_metrics);
  ASSERT_TRUE(executor.ok()) << executor.status();
  absl::StatusOr<int> worker =
      StartWithMetrics("worker", "worker",
                       {absl::StrCat("--server=127.0.0.1:", *server),
                        absl::StrCat("--executors=127.0.0.1:", *executor),
                        "--worker_id=worker-1"},
                       worker_metrics);
  ASSERT_TRUE(worker.ok()) << worker.status();
  ASSERT_TRUE(c.WaitForLog("worker", absl::StrCat("executor 127.0.0.1:",
                                                  *executor, " in rotation")));

  auto target = [](int port) { return absl::StrCat("127.0.0.1:", port); };
  ASSERT_TRUE(prometheus_
                  .Start(c.dir(), prometheus_port,
                         {{"server", target(server_metrics)},
                          {"worker", target(worker_metrics)},
                          {"executor", target(executor_metrics)},
                          {"proxy", target(proxy_metrics_port)}})
                  .ok());

  // The executor's start-up engine probe created, started and removed a
  // container of its own before any task: the runs' calls are counted
  // from what Prometheus saw before the first task.
  std::map<std::string, double> before;
  std::string why;
  for (const char* call : {"create", "start", "remove"}) {
    const std::string q = absl::StrCat(
        "crucible_executor_engine_call_seconds_count{call=\"", call, "\"}");
    std::optional<double> v;
    ASSERT_TRUE(
        Eventually([&] { return (v = prometheus_.One(q, &why)).has_value(); },
                   absl::Seconds(30)))
        << why;
    before[call] = *v;
  }

  const std::vector<std::string> ids = {
      Create(Spec({"true"})),
      Create(Spec({"sh", "-c", "echo hello"})),
      Create(Spec({"sh", "-c", "exit 3"})),
      Create(Spec({"sleep", "30"}, /*timeout_seconds=*/1)),
      Create(Spec({"true"}, 60, "localhost/crucible/not-on-this-engine:1")),
  };
  ASSERT_TRUE(Eventually(
      [&] {
        for (const std::string& id : ids) {
          if (!common::IsTerminal(
                  testing_util::GetTaskOrFail(*tasks_, id).state()))
            return false;
        }
        return true;
      },
      absl::Seconds(60)))
      << "the tasks did not all end";
  const std::vector<crucible::v1::TaskState> want = {
      crucible::v1::TASK_STATE_SUCCEEDED, crucible::v1::TASK_STATE_SUCCEEDED,
      crucible::v1::TASK_STATE_FAILED, crucible::v1::TASK_STATE_TIMED_OUT,
      crucible::v1::TASK_STATE_FAILED};
  for (size_t i = 0; i < ids.size(); ++i) {
    const crucible::v1::Task task =
        testing_util::GetTaskOrFail(*tasks_, ids[i]);
    EXPECT_EQ(task.state(), want[i]) << task.DebugString();
  }

  // Once every target's latest scrape has seen the ends (the proxy's
  // refusal included), everything else is in the same scrapes too.
  ASSERT_TRUE(Eventually(
      [&] {
        return prometheus_.One("sum(crucible_server_tasks_ended_total)",
                               &why) == 5 &&
               prometheus_.One("sum(crucible_executor_runs_total)", &why) ==
                   5 &&
               prometheus_.One(
                   "haproxy_frontend_requests_denied_total{proxy=\"docker\"}",
                   &why) >= 1 &&
               prometheus_.One("crucible_worker_assignments_in_flight", &why) ==
                   0;
      },
      absl::Seconds(30)))
      << "Prometheus never saw the five ends: " << why;

  const std::pair<std::string, double> expected[] = {
      // Every target answered its last scrape.
      {"count(up == 1)", 4},
      {"crucible_server_tasks_created_total", 5},
      {R"(crucible_server_tasks_ended_total{state="SUCCEEDED",reason="exited"})",
       2},
      {R"(crucible_server_tasks_ended_total{state="FAILED",reason="exited"})",
       1},
      {R"(crucible_server_tasks_ended_total{state="TIMED_OUT",reason="timeout"})",
       1},
      {R"(crucible_server_tasks_ended_total{state="FAILED",reason="rejected"})",
       1},
      {R"(sum(crucible_server_tasks{tenant="default"}))", 0},
      // Histograms: every task was leased once; four containers started.
      {"crucible_server_queue_wait_seconds_count", 5},
      {"crucible_server_lease_to_start_seconds_count", 4},
      {"sum(crucible_server_task_retries_total)", 0},
      {"crucible_server_workers_connected", 1},
      {R"(crucible_executor_runs_total{outcome="succeeded"})", 2},
      {R"(crucible_executor_runs_total{outcome="failed"})", 1},
      {R"(crucible_executor_runs_total{outcome="timeout"})", 1},
      {R"(crucible_executor_runs_total{outcome="error"})", 1},
      {R"(crucible_executor_run_errors_total{code="PERMISSION_DENIED"})", 1},
      {R"(crucible_executor_engine_call_errors_total{call="pull_image",code="PERMISSION_DENIED"})",
       1},
      // Four containers, and the create the engine refused for want of the
      // image (the executor creates first and inspects the image only
      // then; the pull that follows is the proxy's refusal).
      {R"(crucible_executor_engine_call_seconds_count{call="create"})",
       before["create"] + 5},
      {R"(crucible_executor_engine_call_errors_total{call="create",code="FAILED_PRECONDITION"})",
       1},
      {R"(crucible_executor_engine_call_seconds_count{call="start"})",
       before["start"] + 4},
      {R"(crucible_executor_engine_call_seconds_count{call="remove"})",
       before["remove"] + 4},
      {R"(crucible_executor_engine_call_seconds_count{call="pull_image"})", 1},
      {"crucible_executor_slots_busy", 0},
      {"crucible_worker_executors_in_rotation", 1},
      // The proxy refused the pull, and that was the only request it
      // refused.
      {R"(haproxy_frontend_requests_denied_total{proxy="docker"})", 1},
  };
  for (const auto& [promql, value] : expected) {
    std::optional<double> got = prometheus_.One(promql, &why);
    ASSERT_TRUE(got.has_value()) << why;
    EXPECT_EQ(*got, value) << promql;
  }
  // The output of the two tasks that wrote some ("hello\n"; `true` writes
  // nothing).
  std::optional<double> out = prometheus_.One(
      R"(crucible_executor_output_bytes_total{stream="stdout"})", &why);
  ASSERT_TRUE(out.has_value()) << why;
  EXPECT_EQ(*out, 6);
  // The buckets make quantiles: each is a finite wait no longer than the
  // test.
  for (const char* q :
       {"histogram_quantile(0.5, crucible_server_queue_wait_seconds_bucket)",
        "histogram_quantile(0.99, "
        "crucible_server_lease_to_start_seconds_bucket)",
        "histogram_quantile(0.9, sum by (le) "
        "(crucible_executor_engine_call_seconds_bucket{call=\"create\"}))"}) {
    std::optional<double> v = prometheus_.One(q, &why);
    ASSERT_TRUE(v.has_value()) << why;
    EXPECT_GT(*v, 0) << q;
    EXPECT_LT(*v, 120) << q;
  }
}

}  // namespace
}  // namespace worker_e2e
