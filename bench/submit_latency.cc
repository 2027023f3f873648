// One short task end to end: `crucible submit -- true` through a real
// crucible-server, crucible-worker and crucible-executor against `podman run
// --rm` of the same hardened container on the same engine, interleaved in
// one run; where Crucible's time goes; then containers per second with every
// slot busy against as many parallel `podman run`s. Not a test: see
// bench/README.md, "Latency of one task (issue 21)".
//
//   deploy/local/engine start /tmp/lat-engine 25771
//   build/bench/submit_latency --engine_dir=/tmp/lat-engine --pairs=30
//
// With --baseline_bin_dir, a second stack of other binaries (a build of an
// earlier commit) runs on the same engine, interleaved with the first: the
// before and after of a change, side by side.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/metrics_scrape.h"
#include "common/proto_time.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "executor/policy/container_policy.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::string, engine_dir, "",
          "the DIR of `deploy/local/engine start DIR PORT`: its docker_host "
          "file names the proxy; `podman run` uses its storage, inside the "
          "engine's mount namespace (nsenter)");
ABSL_FLAG(std::string, bin_dir, CRUCIBLE_BENCH_BIN_DIR,
          "crucible, crucible-server, crucible-worker, crucible-executor");
ABSL_FLAG(std::string, baseline_bin_dir, "",
          "if set, a second stack from these binaries, interleaved: before");
ABSL_FLAG(std::string, containers_conf, CRUCIBLE_BENCH_CONTAINERS_CONF,
          "CONTAINERS_CONF of `podman run` (the engine's own)");
ABSL_FLAG(std::string, image, "localhost/crucible/busybox:latest",
          "image of both");
ABSL_FLAG(int, pairs, 30, "measured runs of each, interleaved");
ABSL_FLAG(int, warmup, 3, "runs of each before measuring");
ABSL_FLAG(int, slots, 4, "executor slots, and parallel podman runs");
ABSL_FLAG(int, throughput_runs, 40, "containers per throughput round");
ABSL_FLAG(int, throughput_rounds, 2, "alternating rounds of each");
ABSL_FLAG(std::string, work_dir, "",
          "logs and databases; default a new /tmp/crucible-latency-<pid>");

namespace {

using crucible::v1::Task;

// A child process: argv, output to `log`, killed by SIGALRM after `limit`.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log,
            absl::Duration limit,
            const std::vector<std::pair<std::string, std::string>>& env = {}) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  FILE* f = std::fopen(log.c_str(), "a");
  if (f != nullptr) {
    dup2(fileno(f), 1);
    dup2(fileno(f), 2);
  }
  for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
  if (limit != absl::InfiniteDuration()) {
    alarm(static_cast<unsigned>(absl::ToInt64Seconds(limit)));
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.data()));
  args.push_back(nullptr);
  execv(args[0], args.data());
  _exit(127);
}

// Runs argv to its end; its wall time, or nullopt if it did not exit 0.
std::optional<absl::Duration> Timed(
    const std::vector<std::string>& argv, const std::string& log,
    const std::vector<std::pair<std::string, std::string>>& env = {}) {
  const absl::Time t0 = absl::Now();
  pid_t pid = Spawn(argv, log, absl::Seconds(120), env);
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return std::nullopt;
  const absl::Duration took = absl::Now() - t0;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "%s exited with wait status %d (log: %s)\n",
            argv[0].c_str(), status, log.c_str());
    return std::nullopt;
  }
  return took;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(ss.str()));
}

// The `podman run` flags of the executor's create body, field by field;
// a field this does not know is an error, so that the two stay the same.
absl::StatusOr<std::vector<std::string>> PodmanRunFlags(
    const nlohmann::json& body) {
  std::vector<std::string> f = {"--rm"};
  std::vector<std::string> cmd;
  for (const auto& [key, v] : body.items()) {
    if (key == "Image" || key == "Tty" || key == "OpenStdin" ||
        key == "AttachStdin" || key == "AttachStdout" ||
        key == "AttachStderr" || key == "NetworkDisabled" || key == "Labels") {
      continue;  // the image goes last; podman run attaches out and err
    } else if (key == "User") {
      f.push_back("--user=" + v.get<std::string>());
    } else if (key == "Env") {
      for (const auto& e : v) f.push_back("--env=" + e.get<std::string>());
    } else if (key == "Cmd") {
      for (const auto& c : v) cmd.push_back(c.get<std::string>());
    } else if (key == "WorkingDir") {
      f.push_back("--workdir=" + v.get<std::string>());
    } else if (key != "HostConfig") {
      return absl::UnimplementedError("create body field " + key);
    }
  }
  for (const auto& [key, v] : body["HostConfig"].items()) {
    if (key == "Privileged" || key == "AutoRemove") {
      if (v.get<bool>()) return absl::UnimplementedError(key);
    } else if (key == "CapDrop") {
      for (const auto& c : v) f.push_back("--cap-drop=" + c.get<std::string>());
    } else if (key == "ReadonlyRootfs") {
      if (v.get<bool>()) f.push_back("--read-only");
    } else if (key == "SecurityOpt") {
      for (const auto& s : v) {
        f.push_back("--security-opt=" + s.get<std::string>());
      }
    } else if (key == "NetworkMode") {
      f.push_back("--network=" + v.get<std::string>());
    } else if (key == "Memory") {
      f.push_back(absl::StrCat("--memory=", v.get<int64_t>()));
    } else if (key == "MemorySwap") {
      f.push_back(absl::StrCat("--memory-swap=", v.get<int64_t>()));
    } else if (key == "PidsLimit") {
      f.push_back(absl::StrCat("--pids-limit=", v.get<int64_t>()));
    } else if (key == "NanoCpus") {
      f.push_back(absl::StrCat("--cpus=", v.get<int64_t>() / 1e9));
    } else if (key == "Tmpfs") {
      for (const auto& [path, opts] : v.items()) {
        f.push_back(
            absl::StrCat("--tmpfs=", path, ":", opts.get<std::string>()));
      }
    } else if (key == "Ulimits") {
      for (const auto& u : v) {
        f.push_back(absl::StrCat("--ulimit=", u["Name"].get<std::string>(), "=",
                                 u["Soft"].get<int64_t>(), ":",
                                 u["Hard"].get<int64_t>()));
      }
    } else if (key == "RestartPolicy") {
      f.push_back("--restart=" + v["Name"].get<std::string>());
    } else if (key == "UsernsMode") {
      f.push_back("--userns=" + v.get<std::string>());
    } else if (key == "Runtime") {
      f.push_back("--runtime=" + v.get<std::string>());
    } else {
      return absl::UnimplementedError("create body field HostConfig." + key);
    }
  }
  f.push_back(body["Image"].get<std::string>());
  f.insert(f.end(), cmd.begin(), cmd.end());
  return f;
}

// A crucible-server, -executor and -worker from one bin dir, plaintext on
// 127.0.0.1 ephemeral ports, against the engine's proxy.
class Stack {
 public:
  Stack(std::string name, std::string bin, std::string dir)
      : name_(std::move(name)), bin_(std::move(bin)), dir_(std::move(dir)) {}
  ~Stack() {
    for (auto it = pids_.rbegin(); it != pids_.rend(); ++it) {
      kill(*it, SIGTERM);
      int status;
      waitpid(*it, &status, 0);
    }
  }

  bool Start(const std::string& docker_host, int slots) {
    std::filesystem::create_directories(dir_);
    if (!StartOne("server",
                  {"--db=" + dir_ + "/crucible.db", "--allow_anonymous"},
                  server_port_, server_metrics_)) {
      return false;
    }
    if (!StartOne(
            "executor",
            {"--docker_host=" + docker_host, absl::StrCat("--slots=", slots),
             absl::StrCat("--executor_id=bench-", name_, "-", getpid())},
            executor_port_, executor_metrics_)) {
      return false;
    }
    int worker_metrics = 0;
    if (!StartOne("worker",
                  {absl::StrCat("--server=127.0.0.1:", server_port_),
                   absl::StrCat("--executors=127.0.0.1:", executor_port_),
                   absl::StrCat("--executor_slots=", slots)},
                  worker_port_, worker_metrics)) {
      return false;
    }
    tasks_ = crucible::v1::TaskService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_port_),
                            grpc::InsecureChannelCredentials()));
    return true;
  }

  // `crucible submit -- true`: its wall time (nullopt on failure).
  std::optional<absl::Duration> Submit(const std::string& image) {
    return Timed(
        {bin_ + "/crucible", absl::StrCat("--server=127.0.0.1:", server_port_),
         "submit", "--image", image, "--", "true"},
        dir_ + "/cli.log");
  }

  // The newest task (the one just run, when runs are one at a time).
  std::optional<Task> Newest() {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    crucible::v1::ListTasksRequest req;
    req.set_page_size(1);
    crucible::v1::ListTasksResponse resp;
    if (!tasks_->ListTasks(&ctx, req, &resp).ok() || resp.tasks().empty()) {
      return std::nullopt;
    }
    return resp.tasks(0);
  }

  std::string ServerMetrics() const {
    return bench::ScrapeMetrics(server_metrics_);
  }
  std::string ExecutorMetrics() const {
    return bench::ScrapeMetrics(executor_metrics_);
  }
  const std::string& name() const { return name_; }

 private:
  bool StartOne(const std::string& process, std::vector<std::string> args,
                int& port, int& metrics_port) {
    const std::string port_file = dir_ + "/" + process + ".port";
    const std::string metrics_file = dir_ + "/" + process + ".metrics_port";
    args.insert(args.begin(), bin_ + "/crucible-" + process);
    for (std::string a : {"--listen=127.0.0.1:0", "--insecure",
                          "--metrics_listen=127.0.0.1:0"}) {
      args.push_back(a);
    }
    args.push_back("--port_file=" + port_file);
    args.push_back("--metrics_port_file=" + metrics_file);
    pid_t pid = Spawn(args, dir_ + "/" + process + ".log",
                      absl::InfiniteDuration(), {{"GLOG_logtostderr", "1"}});
    if (pid < 0) return false;
    pids_.push_back(pid);
    for (absl::Time until = absl::Now() + absl::Seconds(60);
         absl::Now() < until; absl::SleepFor(absl::Milliseconds(20))) {
      if (absl::SimpleAtoi(ReadFile(port_file), &port) &&
          absl::SimpleAtoi(ReadFile(metrics_file), &metrics_port)) {
        return true;
      }
      if (waitpid(pid, nullptr, WNOHANG) == pid) break;
    }
    fprintf(stderr, "%s: %s did not start; see %s/%s.log\n", name_.c_str(),
            process.c_str(), dir_.c_str(), process.c_str());
    return false;
  }

  std::string name_, bin_, dir_;
  std::vector<pid_t> pids_;
  int server_port_ = 0, executor_port_ = 0, worker_port_ = 0;
  int server_metrics_ = 0, executor_metrics_ = 0;
  std::unique_ptr<crucible::v1::TaskService::Stub> tasks_;
};

struct Stats {
  double p50, p90, mean;
};

Stats Summarize(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  double sum = 0;
  for (double x : ms) sum += x;
  auto at = [&](double q) {
    return ms[std::min(ms.size() - 1, static_cast<size_t>(q * ms.size()))];
  };
  return {at(0.5), at(0.9), sum / ms.size()};
}

// Where one Crucible run's time went, from the task's own timestamps (all
// processes on this machine's clock), in ms.
struct Timeline {
  std::vector<double> cli_to_create, create_to_start, start_to_finish,
      finish_to_end, end_to_exit;
  void Add(absl::Time spawned, absl::Time exited, const Task& t) {
    const absl::Time create = common::FromProtoTime(t.create_time());
    const absl::Time start = common::FromProtoTime(t.result().start_time());
    const absl::Time finish = common::FromProtoTime(t.result().finish_time());
    const absl::Time end = common::FromProtoTime(t.end_time());
    auto ms = [](absl::Duration d) { return absl::ToDoubleMilliseconds(d); };
    cli_to_create.push_back(ms(create - spawned));
    create_to_start.push_back(ms(start - create));
    start_to_finish.push_back(ms(finish - start));
    finish_to_end.push_back(ms(end - finish));
    end_to_exit.push_back(ms(exited - end));
  }
};

struct Side {
  std::string label;
  std::vector<double> ms;
  Stack* stack = nullptr;  // null: podman run
  Timeline timeline;
};

void PrintBreakdown(Side& s, const std::string& server_before,
                    const std::string& server_after,
                    const std::string& exec_before,
                    const std::string& exec_after, int runs) {
  printf("\nwhere the time of %s goes (means over %d runs, ms):\n",
         s.label.c_str(), runs);
  const Timeline& t = s.timeline;
  for (const auto& [what, v] :
       {std::pair{"CLI start -> task created (CreateTask, commit)",
                  &t.cli_to_create},
        {"created -> container started (queue, dispatch, worker, "
         "executor, engine)",
         &t.create_to_start},
        {"started -> exit seen (the container, logs, wait, inspect)",
         &t.start_to_finish},
        {"exit seen -> task ended (remove, report, commit)", &t.finish_to_end},
        {"task ended -> CLI exited (stream end, GetTask, exit)",
         &t.end_to_exit}}) {
    printf("  %-72s %7.1f\n", what, Summarize(*v).mean);
  }
  bench::MetricDiff server(server_before, server_after);
  bench::MetricDiff exec(exec_before, exec_after);
  printf(
      "  server: queue wait %.1f, lease -> start %.1f, store commit %.1f "
      "(%.1f commits/run)\n",
      server.MeanMs("crucible_server_queue_wait_seconds", ""),
      server.MeanMs("crucible_server_lease_to_start_seconds", ""),
      server.MeanMs("crucible_server_store_commit_seconds", ""),
      server.Count("crucible_server_store_commit_seconds", "") / runs);
  printf("  executor engine calls (mean ms x calls/run):");
  for (const char* call : {"inspect_image", "create", "wait", "start", "logs",
                           "inspect", "remove", "kill"}) {
    const std::string labels = absl::StrCat("call=\"", call, "\"");
    const double n =
        exec.Count("crucible_executor_engine_call_seconds", labels);
    if (n == 0) continue;
    printf(" %s %.1f x%.1f", call,
           exec.MeanMs("crucible_executor_engine_call_seconds", labels),
           n / runs);
  }
  printf(
      "\n  executor create -> started %.1f\n",
      exec.MeanMs("crucible_executor_container_create_to_start_seconds", ""));
}

// Containers per second: `slots` callers, each running back to back.
double Throughput(const std::function<bool()>& one, int slots, int total) {
  std::atomic<int> next{0}, failed{0};
  const absl::Time start = absl::Now();
  std::vector<std::thread> callers;
  for (int c = 0; c < slots; ++c) {
    callers.emplace_back([&] {
      for (int i = next++; i < total; i = next++) {
        if (!one()) ++failed;
      }
    });
  }
  for (std::thread& t : callers) t.join();
  const double s = absl::ToDoubleSeconds(absl::Now() - start);
  if (failed.load() > 0) return -1;
  return total / s;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows when redirected
  const std::string engine_dir = absl::GetFlag(FLAGS_engine_dir);
  const std::string docker_host = ReadFile(engine_dir + "/docker_host");
  const std::string engine_pid = ReadFile(engine_dir + "/engine.pid");
  if (engine_dir.empty() || docker_host.empty() || engine_pid.empty()) {
    fprintf(stderr,
            "--engine_dir must be a running deploy/local/engine's DIR\n");
    return 2;
  }
  std::string work = absl::GetFlag(FLAGS_work_dir);
  if (work.empty()) work = absl::StrCat("/tmp/crucible-latency-", getpid());
  std::filesystem::create_directories(work);
  const std::string image = absl::GetFlag(FLAGS_image);
  const int slots = absl::GetFlag(FLAGS_slots);

  // The hardened container of the executor's built-in policy, as flags.
  policy::ContainerPolicyOptions po;
  po.executor_id = "bench";
  po.allowed_images = {image};
  auto policy = policy::ContainerPolicy::Create(po);
  crucible::v1::RunRequest probe;
  probe.set_run_id("bench");
  probe.set_task_id("bench");
  probe.set_attempt(1);
  probe.mutable_spec()->set_image(image);
  probe.mutable_spec()->add_command("true");
  absl::StatusOr<policy::ContainerPlan> plan =
      policy.ok() ? policy->Plan(probe) : policy.status();
  absl::StatusOr<std::vector<std::string>> flags =
      plan.ok() ? PodmanRunFlags(plan->create_body) : plan.status();
  if (!flags.ok()) {
    fprintf(stderr, "podman flags: %s\n", flags.status().ToString().c_str());
    return 1;
  }
  std::vector<std::string> podman = {"/usr/bin/nsenter",
                                     "-t",
                                     engine_pid,
                                     "-m",
                                     "podman",
                                     "--root",
                                     engine_dir + "/storage",
                                     "--runroot",
                                     engine_dir + "/run",
                                     "--tmpdir",
                                     engine_dir + "/tmp",
                                     "run"};
  podman.insert(podman.end(), flags->begin(), flags->end());
  const std::vector<std::pair<std::string, std::string>> podman_env = {
      {"CONTAINERS_CONF", absl::GetFlag(FLAGS_containers_conf)}};
  printf("podman run: %s\n", absl::StrJoin(podman, " ").c_str());
  auto podman_run = [&] {
    return Timed(podman, work + "/podman.log", podman_env);
  };

  std::vector<std::unique_ptr<Stack>> stacks;
  stacks.push_back(std::make_unique<Stack>(
      "crucible", absl::GetFlag(FLAGS_bin_dir), work + "/crucible"));
  if (!absl::GetFlag(FLAGS_baseline_bin_dir).empty()) {
    stacks.push_back(std::make_unique<Stack>(
        "baseline", absl::GetFlag(FLAGS_baseline_bin_dir), work + "/baseline"));
  }
  for (auto& s : stacks) {
    if (!s->Start(docker_host, slots)) return 1;
  }
  std::vector<Side> sides;
  sides.push_back({.label = "podman run --rm"});
  for (auto& s : stacks) {
    sides.push_back({.label = absl::StrCat("crucible submit (", s->name(), ")"),
                     .stack = s.get()});
  }
  auto run_one = [&](Side& side, bool record) {
    if (side.stack == nullptr) {
      std::optional<absl::Duration> d = podman_run();
      if (d && record) side.ms.push_back(absl::ToDoubleMilliseconds(*d));
      return d.has_value();
    }
    const absl::Time spawned = absl::Now();
    std::optional<absl::Duration> d = side.stack->Submit(image);
    if (!d) return false;
    if (!record) return true;
    side.ms.push_back(absl::ToDoubleMilliseconds(*d));
    std::optional<Task> task = side.stack->Newest();
    if (!task) return false;
    side.timeline.Add(spawned, spawned + *d, *task);
    return true;
  };
  // Warm-up (the first submit also waits for the worker to be ready).
  for (int i = 0; i < absl::GetFlag(FLAGS_warmup); ++i) {
    for (Side& s : sides) {
      if (!run_one(s, false)) return 1;
    }
  }
  std::vector<std::string> server_before, exec_before;
  for (auto& s : stacks) {
    server_before.push_back(s->ServerMetrics());
    exec_before.push_back(s->ExecutorMetrics());
  }
  const int pairs = absl::GetFlag(FLAGS_pairs);
  const absl::Time began = absl::Now();
  for (int i = 0; i < pairs; ++i) {
    // Each in turn, the order rotating, so that no side is always first.
    for (size_t k = 0; k < sides.size(); ++k) {
      if (!run_one(sides[(i + k) % sides.size()], true)) return 1;
    }
  }
  printf("\n%s, %d interleaved runs of `true` each, %s UTC to %s UTC\n",
         docker_host.c_str(), pairs,
         absl::FormatTime("%Y-%m-%d %H:%M", began, absl::UTCTimeZone()).c_str(),
         absl::FormatTime("%H:%M", absl::Now(), absl::UTCTimeZone()).c_str());
  const Stats podman_stats = Summarize(sides[0].ms);
  for (Side& s : sides) {
    Stats st = Summarize(s.ms);
    printf("  %-32s p50 %7.1f ms  p90 %7.1f ms  mean %7.1f ms", s.label.c_str(),
           st.p50, st.p90, st.mean);
    if (s.stack != nullptr) {
      printf("  (%.2fx / %.2fx podman run)", st.p50 / podman_stats.p50,
             st.p90 / podman_stats.p90);
    }
    printf("\n");
  }
  for (size_t i = 0; i < stacks.size(); ++i) {
    PrintBreakdown(sides[i + 1], server_before[i], stacks[i]->ServerMetrics(),
                   exec_before[i], stacks[i]->ExecutorMetrics(), pairs);
  }

  const int total = absl::GetFlag(FLAGS_throughput_runs);
  printf("\n%d containers of `true` per round, %d at a time:\n", total, slots);
  for (int round = 0; round < absl::GetFlag(FLAGS_throughput_rounds); ++round) {
    for (Side& s : sides) {
      double rate = Throughput(
          [&] {
            return s.stack == nullptr ? podman_run().has_value()
                                      : s.stack->Submit(image).has_value();
          },
          slots, total);
      printf("  round %d %-32s %.2f containers/s%s\n", round + 1,
             s.label.c_str(), rate, rate < 0 ? " (runs failed)" : "");
    }
  }
  return 0;
}
