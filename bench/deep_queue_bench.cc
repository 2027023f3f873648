// crucible-deep-queue-bench: a crucible-server process holding a deep queue.
//
// For each depth D of --depths, on a fresh SQLite store (durable, as
// shipped): D + --dispatched tasks are created with BatchCreateTasks while
// no worker is connected. Then, with all of them queued:
//   - the server's resident memory (VmRSS) and its peak (VmHWM);
//   - GetTask of random tasks, and the first page of ListTasks (no filter,
//     QUEUED, a label a hundredth of the tasks carry, a label none carries):
//     p50 and p99 of --calls calls each;
//   - kill -9 and start again: the time until its health says SERVING, and
//     its memory once serving;
//   - dispatch: --workers workers that complete every assignment at once
//     take the --dispatched oldest tasks while D stay queued behind them:
//     tasks/s created -> leased -> completed.
// Not a test; see bench/README.md.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/bench_worker.h"
#include "bench/create_load.h"
#include "bench/server_process.h"
#include "crucible/v1/task_service.grpc.pb.h"

ABSL_FLAG(std::vector<std::string>, depths,
          std::vector<std::string>({"0", "100000", "1000000"}),
          "queue depths to measure, one fresh store each");
ABSL_FLAG(int, dispatched, 20000,
          "tasks dispatched (above the depth) to measure the dispatch rate");
ABSL_FLAG(int, calls, 200, "GetTask and ListTasks calls of each kind");
ABSL_FLAG(int, fill_threads, 4, "threads making BatchCreateTasks calls");
ABSL_FLAG(int, workers, 4, "QueueService workers of the dispatch");
ABSL_FLAG(int, credits, 256, "credits each worker keeps granted");
ABSL_FLAG(std::string, bin_dir, "",
          "directory of crucible-server; default: this binary's");
ABSL_FLAG(std::string, dir, "/tmp/crucible-deep-queue-bench",
          "stores, logs and port files (emptied first, kept after)");

namespace {

namespace v1 = crucible::v1;

constexpr int kBatch = 1000;  // BatchCreateTasks' maximum
constexpr int kShards = 100;  // label values: shard=s0..s99

// Kilobytes of `field` (VmRSS, VmHWM) in /proc/`pid`/status; -1 if absent.
int64_t StatusKb(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (!absl::StartsWith(line, field + ":")) continue;
    std::vector<std::string> parts =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    int64_t kb = 0;
    if (parts.size() >= 2 && absl::SimpleAtoi(parts[1], &kb)) return kb;
  }
  return -1;
}

std::string Mib(int64_t kb) { return absl::StrCat(kb / 1024, " MiB"); }

// One task of the fill: a small shell command with labels and a request_id,
// as `crucible submit --from-file` sends them.
v1::CreateTaskRequest TaskRequest(int64_t i) {
  v1::CreateTaskRequest req;
  req.set_request_id(absl::StrCat("deep-", i));
  v1::TaskSpec& spec = *req.mutable_spec();
  spec.set_image("localhost/crucible/busybox:latest");
  spec.add_command("sh");
  spec.add_command("-c");
  spec.add_command(absl::StrCat("echo case ", i, " && test -d /tmp"));
  (*spec.mutable_env())["CASE"] = absl::StrCat(i);
  (*spec.mutable_labels())["suite"] = "deep-queue";
  (*spec.mutable_labels())["shard"] = absl::StrCat("s", i % kShards);
  return req;
}

// Creates tasks 0..n-1 (ids[i] is task i's) with --fill_threads threads of
// batch calls. False if a batch fails or refuses a task.
bool Fill(v1::TaskService::Stub& stub, int64_t n,
          std::vector<std::string>& ids) {
  ids.assign(n, "");
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < absl::GetFlag(FLAGS_fill_threads); ++t) {
    threads.emplace_back([&] {
      for (int64_t first = next.fetch_add(kBatch); first < n && !failed;
           first = next.fetch_add(kBatch)) {
        const int64_t end = std::min(n, first + kBatch);
        v1::BatchCreateTasksRequest req;
        for (int64_t i = first; i < end; ++i) {
          *req.add_requests() = TaskRequest(i);
        }
        v1::BatchCreateTasksResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(60));
        grpc::Status status = stub.BatchCreateTasks(&ctx, req, &resp);
        if (!status.ok() || resp.results_size() != end - first) {
          std::fprintf(stderr, "BatchCreateTasks: %s\n",
                       status.error_message().c_str());
          failed = true;
          return;
        }
        for (int64_t i = first; i < end; ++i) {
          const v1::BatchCreateTaskResult& r = resp.results(i - first);
          if (!r.has_task()) {
            std::fprintf(stderr, "task %lld refused: %s\n",
                         static_cast<long long>(i),
                         r.error().message().c_str());
            failed = true;
            return;
          }
          ids[i] = r.task().id();
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return !failed;
}

struct Percentiles {
  absl::Duration p50, p99;
};

// p50 and p99 of `calls` runs of `call`, which returns whether it succeeded;
// both InfiniteDuration if one failed.
template <typename Call>
Percentiles Measure(int calls, Call call) {
  std::vector<absl::Duration> times;
  for (int i = 0; i < calls; ++i) {
    const absl::Time start = absl::Now();
    if (!call(i)) return {absl::InfiniteDuration(), absl::InfiniteDuration()};
    times.push_back(absl::Now() - start);
  }
  std::sort(times.begin(), times.end());
  return {times[times.size() / 2],
          times[std::min(times.size() - 1, times.size() * 99 / 100)]};
}

std::string Format(const Percentiles& p) {
  auto ms = [](absl::Duration d) {
    return absl::StrFormat("%.2f", absl::ToDoubleMilliseconds(d));
  };
  return absl::StrCat(ms(p.p50), " / ", ms(p.p99), " ms");
}

// ListTasks' first page with `filter` applied to the request.
template <typename Filter>
Percentiles MeasureList(v1::TaskService::Stub& stub, Filter filter) {
  return Measure(absl::GetFlag(FLAGS_calls), [&](int) {
    v1::ListTasksRequest req;
    filter(req);
    v1::ListTasksResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(30));
    return stub.ListTasks(&ctx, req, &resp).ok();
  });
}

// Takes --dispatched tasks with --workers workers; tasks/s.
double Dispatch(const std::string& target, int64_t tasks) {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> completed{0};
  std::atomic<int64_t> messages{0};
  std::vector<std::unique_ptr<grpc::ClientContext>> ctxs;
  std::vector<std::thread> workers;
  const absl::Time start = absl::Now();
  for (int i = 0; i < absl::GetFlag(FLAGS_workers); ++i) {
    ctxs.push_back(std::make_unique<grpc::ClientContext>());
    workers.emplace_back(bench::Worker, bench::Channel(target, 100 + i), i,
                         absl::GetFlag(FLAGS_credits), ctxs.back().get(),
                         std::ref(stop), std::ref(completed),
                         std::ref(messages));
  }
  const absl::Time deadline = start + absl::Minutes(5);
  while (completed.load() < tasks && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  const absl::Duration took = absl::Now() - start;
  const int64_t done = completed.load();
  stop = true;
  for (auto& ctx : ctxs) ctx->TryCancel();
  for (std::thread& w : workers) w.join();
  if (done < tasks) return -1;
  return static_cast<double>(done) / absl::ToDoubleSeconds(took);
}

// Measures one depth; false if anything failed (said on stderr).
bool RunDepth(const std::string& bin, const std::string& dir, int64_t depth) {
  const int64_t dispatched = absl::GetFlag(FLAGS_dispatched);
  const std::string db = absl::StrCat(dir, "/deep-", depth, ".db");
  const std::string log = absl::StrCat(dir, "/server-", depth, ".log");
  bench::ServerProcess server;
  server.port_file = absl::StrCat(dir, "/server-", depth, ".port");
  server.args = {
      bin + "/crucible-server",         "--insecure", "--allow_anonymous",
      "--fleet_admission=false",        "--db=" + db, "--listen=127.0.0.1:0",
      "--port_file=" + server.port_file};
  if (!bench::Spawn(server, log)) {
    std::fprintf(stderr, "the server did not start; see %s\n", log.c_str());
    return false;
  }
  const std::string target = absl::StrCat("127.0.0.1:", server.port);
  auto stub = v1::TaskService::NewStub(bench::Channel(target, 0));

  std::vector<std::string> ids;
  const absl::Time fill_start = absl::Now();
  if (!Fill(*stub, depth + dispatched, ids)) return false;
  const absl::Duration fill = absl::Now() - fill_start;
  const int64_t rss = StatusKb(server.pid, "VmRSS");
  const int64_t hwm = StatusKb(server.pid, "VmHWM");

  absl::BitGen rng;
  const Percentiles get = Measure(absl::GetFlag(FLAGS_calls), [&](int) {
    v1::GetTaskRequest req;
    req.set_task_id(ids[absl::Uniform<size_t>(rng, 0, ids.size())]);
    v1::GetTaskResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(30));
    return stub->GetTask(&ctx, req, &resp).ok();
  });
  const Percentiles list_all = MeasureList(*stub, [](v1::ListTasksRequest&) {});
  const Percentiles list_queued = MeasureList(
      *stub,
      [](v1::ListTasksRequest& req) { req.add_states(v1::TASK_STATE_QUEUED); });
  const Percentiles list_shard =
      MeasureList(*stub, [](v1::ListTasksRequest& req) {
        (*req.mutable_labels())["shard"] = "s7";
      });
  const Percentiles list_none =
      MeasureList(*stub, [](v1::ListTasksRequest& req) {
        (*req.mutable_labels())["suite"] = "no-such-suite";
      });

  for (const Percentiles& p :
       {get, list_all, list_queued, list_shard, list_none}) {
    if (p.p50 == absl::InfiniteDuration()) {
      std::fprintf(stderr, "a GetTask or ListTasks call failed\n");
      return false;
    }
  }

  kill(server.pid, SIGKILL);
  waitpid(server.pid, nullptr, 0);
  const absl::Time killed = absl::Now();
  server.args.back() = "--port_file=" + server.port_file;
  server.args[server.args.size() - 2] = absl::StrCat("--listen=", target);
  if (!bench::Spawn(server, log, absl::Minutes(5))) {
    std::fprintf(stderr, "the server did not start again; see %s\n",
                 log.c_str());
    return false;
  }
  while (!bench::Serving(server.port)) {
    if (absl::Now() - killed > absl::Minutes(5)) {
      std::fprintf(stderr, "not serving 5 min after the restart; see %s\n",
                   log.c_str());
      return false;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  const absl::Duration restart = absl::Now() - killed;
  const int64_t rss_restarted = StatusKb(server.pid, "VmRSS");

  const double rate = Dispatch(target, dispatched);
  kill(server.pid, SIGTERM);
  waitpid(server.pid, nullptr, 0);
  if (rate < 0) {
    std::fprintf(stderr, "fewer than %lld tasks dispatched in 5 min\n",
                 static_cast<long long>(dispatched));
    return false;
  }

  std::printf(
      "depth %lld (+%lld dispatched): filled in %s (%.0f tasks/s)\n"
      "  memory: VmRSS %s (peak %s); after kill -9 and restart %s\n"
      "  restart (kill -9 to SERVING): %s\n"
      "  GetTask p50/p99: %s\n"
      "  ListTasks first page p50/p99: all %s; QUEUED %s; label 1/%d %s; "
      "label matching none %s\n"
      "  dispatch: %.0f tasks/s (%lld tasks, %lld still queued behind)\n",
      static_cast<long long>(depth), static_cast<long long>(dispatched),
      absl::FormatDuration(fill).c_str(),
      static_cast<double>(ids.size()) / absl::ToDoubleSeconds(fill),
      Mib(rss).c_str(), Mib(hwm).c_str(), Mib(rss_restarted).c_str(),
      absl::FormatDuration(restart).c_str(), Format(get).c_str(),
      Format(list_all).c_str(), Format(list_queued).c_str(), kShards,
      Format(list_shard).c_str(), Format(list_none).c_str(), rate,
      static_cast<long long>(dispatched), static_cast<long long>(depth));
  std::fflush(stdout);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string bin = bench::BinDirOr(absl::GetFlag(FLAGS_bin_dir));
  const std::string dir = absl::GetFlag(FLAGS_dir);
  bench::FreshDir(dir);
  for (const std::string& d : absl::GetFlag(FLAGS_depths)) {
    int64_t depth = 0;
    if (!absl::SimpleAtoi(d, &depth) || depth < 0) {
      std::fprintf(stderr, "--depths: %s is not a depth\n", d.c_str());
      return 2;
    }
    if (!RunDepth(bin, dir, depth)) return 1;
  }
  return 0;
}
