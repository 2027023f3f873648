// crucible-fair-share-bench: what dispatch costs with many active tenants
// against one, side by side in one run.
//
// Two levels, each run for one tenant and for --tenants tenants in
// alternating rounds:
// - the ReadyQueue alone: --queue_tasks tasks queued, then every one
//   picked and removed (the dispatch decision, weighted fair queuing);
// - the real Scheduler on a durable SQLite file (no gRPC): --tasks tasks
//   created, then handed to one worker session in grants of --credits;
//   reports the time the dispatch calls took (decisions under the
//   scheduler's lock) and the time until every assignment was durable and
//   delivered.
// Then the scenario at queue level: one tenant with --backlog tasks
// queued, a second submits one; how many dispatches until it goes.
// Not a test; see bench/README.md.
#include <time.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "glog/logging.h"
#include "server/outbox/durable_outbox.h"
#include "server/queue/ready_queue.h"
#include "server/scheduler/scheduler.h"
#include "server/store/sqlite_task_store.h"

ABSL_FLAG(int, tenants, 100, "active tenants of the many-tenant runs");
ABSL_FLAG(int, queue_tasks, 1000000, "tasks of each ReadyQueue run");
ABSL_FLAG(int, tasks, 20000, "tasks of each Scheduler run");
ABSL_FLAG(int, credits, 256, "credits granted to the worker at a time");
ABSL_FLAG(int, rounds, 3, "rounds; each runs one tenant, then many");
ABSL_FLAG(int, backlog, 100000, "the backlogged tenant's tasks (scenario)");
ABSL_FLAG(std::string, db, "crucible-fair-share-bench.db",
          "SQLite file of the Scheduler runs (deleted first)");

namespace {

namespace v1 = crucible::v1;

// CPU time of this thread.
absl::Duration ThreadCpu() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return absl::DurationFromTimespec(ts);
}

std::string TenantOf(int i, int tenants) {
  return absl::StrCat("tenant-", i % tenants);
}

struct QueueResult {
  double add_ns = 0;       // per task
  double dispatch_ns = 0;  // per Pick + Remove
};

QueueResult RunQueue(int tasks, int tenants) {
  server::ReadyQueue q(10);
  absl::flat_hash_map<std::string, server::QueuePosition> positions;
  positions.reserve(tasks);
  std::vector<server::QueuePosition> all;
  all.reserve(tasks);
  for (int i = 0; i < tasks; ++i) {
    all.push_back({absl::StrCat("task-", i), i % 3, static_cast<uint64_t>(i),
                   absl::InfinitePast(), TenantOf(i, tenants)});
    positions[all.back().id] = all.back();
  }
  const absl::Time now = absl::Now();
  absl::Duration start = ThreadCpu();
  for (const server::QueuePosition& p : all) q.Add(p, now);
  const absl::Duration added = ThreadCpu() - start;
  start = ThreadCpu();
  int picked = 0;
  while (q.HasReady()) {
    q.Remove(positions.at(q.Pick()));
    ++picked;
  }
  const absl::Duration dispatched = ThreadCpu() - start;
  if (picked != tasks) std::fprintf(stderr, "picked %d of %d\n", picked, tasks);
  return {absl::ToDoubleNanoseconds(added) / tasks,
          absl::ToDoubleNanoseconds(dispatched) / tasks};
}

// Collects assignments; signals when `expected` arrived. Thread-safe.
class CountingSink : public server::WorkerSink {
 public:
  explicit CountingSink(int expected) : expected_(expected) {}
  void Send(v1::ConnectResponse message) override {
    if (message.has_assignment() && ++received_ == expected_) all_.Notify();
  }
  void Wait() { all_.WaitForNotification(); }
  int received() const { return received_.load(); }

 private:
  const int expected_;
  std::atomic<int> received_{0};
  absl::Notification all_;
};

struct SchedulerResult {
  double create_per_s = 0;
  double dispatch_cpu_us = 0;   // per task, in the dispatch calls
  double dispatch_wall_us = 0;  // per task, in the dispatch calls
  double delivered_per_s = 0;   // dispatch start -> all delivered
};

SchedulerResult RunScheduler(int tasks, int tenants, const std::string& db) {
  std::filesystem::remove(db);
  std::filesystem::remove(db + "-wal");
  std::filesystem::remove(db + "-shm");
  auto store = server::SqliteTaskStore::Open({.path = db});
  if (!store.ok()) {
    std::fprintf(stderr, "store: %s\n", store.status().ToString().c_str());
    std::exit(1);
  }
  server::DurableOutbox outbox(**store, {});
  server::SchedulerOptions options;
  auto scheduler = server::Scheduler::Create(options, **store, outbox,
                                             common::Clock::Real());
  if (!scheduler.ok()) std::exit(1);
  SchedulerResult r;

  v1::TaskSpec spec;
  spec.set_image("localhost/crucible/busybox:latest");
  spec.add_command("true");
  std::atomic<int> created{0};
  std::atomic<int> failed{0};
  absl::Notification all_created;
  absl::Time start = absl::Now();
  for (int i = 0; i < tasks; ++i) {
    (*scheduler)
        ->CreateTaskAsync(server::TenantScope{.tenant = TenantOf(i, tenants)},
                          spec, "", [&](absl::StatusOr<v1::Task> t) {
                            if (!t.ok()) ++failed;
                            if (++created == tasks) all_created.Notify();
                          });
  }
  all_created.WaitForNotification();
  r.create_per_s = tasks / absl::ToDoubleSeconds(absl::Now() - start);
  if (failed > 0) std::fprintf(stderr, "%d creates failed\n", failed.load());

  CountingSink sink(tasks);
  auto session = (*scheduler)->ConnectWorker("bench-worker", 0, &sink);
  if (!session.ok()) std::exit(1);
  const int credits = absl::GetFlag(FLAGS_credits);
  start = absl::Now();
  absl::Duration cpu;
  absl::Duration wall;
  for (int granted = 0; granted < tasks; granted += credits) {
    const absl::Time t0 = absl::Now();
    const absl::Duration c0 = ThreadCpu();
    (*scheduler)->AddCredits(*session, credits).IgnoreError();
    cpu += ThreadCpu() - c0;
    wall += absl::Now() - t0;
  }
  sink.Wait();
  r.delivered_per_s = tasks / absl::ToDoubleSeconds(absl::Now() - start);
  r.dispatch_cpu_us = absl::ToDoubleMicroseconds(cpu) / tasks;
  r.dispatch_wall_us = absl::ToDoubleMicroseconds(wall) / tasks;
  (*scheduler)->DisconnectWorker(*session);
  scheduler->reset();
  return r;
}

// The scenario: how many dispatches after a second tenant's task
// was queued behind `backlog` tasks of the first does it go?
int Newcomer(int backlog) {
  server::ReadyQueue q(10);
  absl::flat_hash_map<std::string, server::QueuePosition> positions;
  const absl::Time now = absl::Now();
  // a has dispatched 1000 already, `backlog` are left.
  const int total = backlog + 1000;
  for (int i = 0; i < total; ++i) {
    server::QueuePosition p{absl::StrCat("a-", i), 0, static_cast<uint64_t>(i),
                            absl::InfinitePast(), "a"};
    positions[p.id] = p;
    q.Add(p, now);
  }
  for (int i = 0; i < 1000; ++i) q.Remove(positions.at(q.Pick()));
  server::QueuePosition b{"b-0", 0, static_cast<uint64_t>(total),
                          absl::InfinitePast(), "b"};
  positions[b.id] = b;
  q.Add(b, now);
  for (int n = 1; q.HasReady(); ++n) {
    const server::QueuePosition p = positions.at(q.Pick());
    q.Remove(p);
    if (p.tenant == "b") return n;
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  FLAGS_minloglevel = google::GLOG_WARNING;  // not each run's start and end
  const int many = absl::GetFlag(FLAGS_tenants);
  const int rounds = absl::GetFlag(FLAGS_rounds);
  std::printf("ReadyQueue, %d tasks (ns per task, CPU)\n",
              absl::GetFlag(FLAGS_queue_tasks));
  std::printf("  %-5s %-8s %8s %12s\n", "round", "tenants", "add",
              "pick+remove");
  for (int round = 1; round <= rounds; ++round) {
    for (int tenants : {1, many}) {
      QueueResult r = RunQueue(absl::GetFlag(FLAGS_queue_tasks), tenants);
      std::printf("  %-5d %-8d %8.0f %12.0f\n", round, tenants, r.add_ns,
                  r.dispatch_ns);
    }
  }
  std::printf(
      "\nScheduler on SQLite, %d tasks, grants of %d credits "
      "(dispatch calls: µs per task; rates: tasks/s)\n",
      absl::GetFlag(FLAGS_tasks), absl::GetFlag(FLAGS_credits));
  std::printf("  %-5s %-8s %9s %13s %14s %16s\n", "round", "tenants",
              "created/s", "dispatch CPU", "dispatch wall", "leased+sent/s");
  for (int round = 1; round <= rounds; ++round) {
    for (int tenants : {1, many}) {
      SchedulerResult r = RunScheduler(absl::GetFlag(FLAGS_tasks), tenants,
                                       absl::GetFlag(FLAGS_db));
      std::printf("  %-5d %-8d %9.0f %13.1f %14.1f %16.0f\n", round, tenants,
                  r.create_per_s, r.dispatch_cpu_us, r.dispatch_wall_us,
                  r.delivered_per_s);
    }
  }
  const int backlog = absl::GetFlag(FLAGS_backlog);
  std::printf(
      "\nTenant a has %d tasks queued, tenant b queues one: b's goes at "
      "dispatch %d after it\n",
      backlog, Newcomer(backlog));
  return 0;
}
