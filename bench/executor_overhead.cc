// Executor overhead against the raw engine API sequence, side by side in one
// run, both through the same docker-proxy; then containers per second with
// every slot busy. Not a test: see bench/README.md.
//
//   build/bench/executor_overhead --docker_host=tcp://127.0.0.1:23771 \
//       --iterations=30 --slots=4 --throughput_runs=40
//
// raw:      create -> wait(next-exit) posted -> start -> logs (follow) ->
//           wait answered -> remove, with the executor's own HTTP client
//           (executor/docker), nothing else.
// executor: ExecutorService.Run over gRPC (127.0.0.1, a real stub) into an
//           in-process ExecutorService + Runner: policy, image inspect,
//           the same sequence, inspect, remove, events streamed back.
// Both run `true` in localhost/crucible/busybox:latest, alternating, so
// that a noisy neighbour hurts both alike.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "crucible/v1/executor_service.grpc.pb.h"
#include "executor/docker/engine_client.h"
#include "executor/executor_service.h"
#include "executor/policy/container_policy.h"
#include "executor/runner/runner.h"

ABSL_FLAG(std::string, docker_host, "tcp://127.0.0.1:2375", "the docker-proxy");
ABSL_FLAG(std::string, image, "localhost/crucible/busybox:latest",
          "image to run");
ABSL_FLAG(int, iterations, 30, "runs of each path for the overhead figure");
ABSL_FLAG(int, warmup, 3, "runs of each path before measuring");
ABSL_FLAG(int, slots, 4, "executor slots for the throughput figure");
ABSL_FLAG(int, throughput_runs, 40, "runs for the throughput figure");
ABSL_FLAG(std::string, userns, "auto",
          "the policy's userns: \"auto\" (a user namespace per container) "
          "or \"\" (none); the guard behind --docker_host must have the same");

namespace {

using crucible::v1::RunRequest;
using crucible::v1::RunResponse;

struct Stats {
  double median_ms, p90_ms, mean_ms;
};

Stats Summarize(std::vector<absl::Duration> d) {
  std::sort(d.begin(), d.end());
  absl::Duration sum;
  for (absl::Duration x : d) sum += x;
  auto at = [&](double q) {
    return absl::ToDoubleMilliseconds(
        d[std::min(d.size() - 1, size_t(q * d.size()))]);
  };
  return {at(0.5), at(0.9), absl::ToDoubleMilliseconds(sum) / d.size()};
}

// The raw sequence; returns false on any error.
// Calls on the container use its name: the proxy refuses hex ids.
bool RawRun(docker::EngineClient& engine, const std::string& name,
            const nlohmann::json& body) {
  absl::StatusOr<std::string> id = engine.CreateContainer(name, body);
  if (!id.ok()) {
    fprintf(stderr, "raw create: %s\n", id.status().ToString().c_str());
    return false;
  }
  absl::Notification sent;
  absl::StatusOr<int64_t> code;
  std::thread waiter([&] {
    code = engine.Wait(
        name, "next-exit", [] { return false; }, [&] { sent.Notify(); });
    if (!sent.HasBeenNotified()) sent.Notify();
  });
  sent.WaitForNotification();
  bool ok = engine.Start(name).ok();
  std::string out;
  ok = ok && engine
                 .Logs(
                     name, true,
                     [&](absl::string_view b) {
                       out.append(b.data(), b.size());
                       return true;
                     },
                     [] { return false; })
                 .ok();
  waiter.join();
  ok = ok && code.ok() && *code == 0;
  ok = engine.Remove(name).ok() && ok;
  return ok;
}

RunRequest Request(int n) {
  RunRequest r;
  r.set_run_id(absl::StrCat("bench-", getpid(), "-", n));
  r.set_task_id("bench");
  r.set_attempt(1);
  r.mutable_spec()->set_image(absl::GetFlag(FLAGS_image));
  r.mutable_spec()->add_command("true");
  return r;
}

bool ExecutorRun(crucible::v1::ExecutorService::Stub& stub, int n) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(120)));
  auto reader = stub.Run(&ctx, Request(n));
  RunResponse r;
  bool exited = false;
  while (reader->Read(&r)) {
    if (r.has_finished()) exited = r.finished().exit_code() == 0;
  }
  grpc::Status s = reader->Finish();
  if (!s.ok()) fprintf(stderr, "executor run: %s\n", s.error_message().c_str());
  return s.ok() && exited;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  auto engine = docker::EngineClient::Create(
      {.docker_host = absl::GetFlag(FLAGS_docker_host)});
  if (!engine.ok() || !(*engine)->Ping().ok()) {
    fprintf(stderr, "no engine at %s\n",
            absl::GetFlag(FLAGS_docker_host).c_str());
    return 1;
  }
  policy::ContainerPolicyOptions po;
  po.executor_id = absl::StrCat("bench-", getpid());
  po.allowed_image_prefixes = {absl::GetFlag(FLAGS_image)};
  po.userns = absl::GetFlag(FLAGS_userns);
  auto policy = policy::ContainerPolicy::Create(po);
  if (!policy.ok()) return 1;
  runner::RunnerOptions ro;
  ro.slots = absl::GetFlag(FLAGS_slots);
  runner::Runner runner(**engine, *policy, common::Clock::Real(), ro);
  executor::ExecutorService service(runner);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  auto stub = crucible::v1::ExecutorService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));

  // The raw path uses the very create body the executor would send.
  auto plan = policy->Plan(Request(-1));
  if (!plan.ok()) return 1;
  const nlohmann::json body = plan->create_body;

  int n = 0;
  for (int i = 0; i < absl::GetFlag(FLAGS_warmup); ++i) {
    if (!RawRun(**engine, plan->name, body) || !ExecutorRun(*stub, n++)) {
      return 1;
    }
  }
  std::vector<absl::Duration> raw, exec;
  for (int i = 0; i < absl::GetFlag(FLAGS_iterations); ++i) {
    absl::Time t0 = absl::Now();
    if (!RawRun(**engine, plan->name, body)) return 1;
    absl::Time t1 = absl::Now();
    if (!ExecutorRun(*stub, n++)) return 1;
    absl::Time t2 = absl::Now();
    raw.push_back(t1 - t0);
    exec.push_back(t2 - t1);
  }
  Stats r = Summarize(raw), e = Summarize(exec);
  printf("one `true` at a time, %d runs each, alternating, through %s\n",
         absl::GetFlag(FLAGS_iterations),
         absl::GetFlag(FLAGS_docker_host).c_str());
  printf(
      "  raw engine sequence : median %7.1f ms  p90 %7.1f ms  mean %7.1f ms\n",
      r.median_ms, r.p90_ms, r.mean_ms);
  printf(
      "  executor Run (gRPC) : median %7.1f ms  p90 %7.1f ms  mean %7.1f ms\n",
      e.median_ms, e.p90_ms, e.mean_ms);
  printf("  executor / raw      : median %.2fx  mean %.2fx\n",
         e.median_ms / r.median_ms, e.mean_ms / r.mean_ms);

  // Throughput: as many callers as slots, each running back to back.
  const int slots = absl::GetFlag(FLAGS_slots);
  const int total = absl::GetFlag(FLAGS_throughput_runs);
  std::atomic<int> next{0}, failed{0};
  absl::Time start = absl::Now();
  std::vector<std::thread> callers;
  for (int c = 0; c < slots; ++c) {
    callers.emplace_back([&] {
      for (int i = next++; i < total; i = next++) {
        if (!ExecutorRun(*stub, 100000 + i)) ++failed;
      }
    });
  }
  for (std::thread& t : callers) t.join();
  absl::Duration took = absl::Now() - start;
  printf(
      "%d runs of `true` with %d slots busy: %.1f s, %.2f containers/s (%d "
      "failed)\n",
      total, slots, absl::ToDoubleSeconds(took),
      total / absl::ToDoubleSeconds(took), failed.load());
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  return failed.load() == 0 ? 0 : 1;
}
