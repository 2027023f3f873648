// Every task container in a user namespace of its own (policy "userns":
// "auto"), on the real engine, created through the docker-proxy and the
// engine guard like any task's (CRUCIBLE_TEST_DOCKER_HOST):
// - inside, /proc/self/uid_map maps the task's uid 0 and 65534 to host uids
//   no real user has (above 65535);
// - from the host, the container's process (its pid from the engine's
//   inspect) runs as the mapped uid: /proc/<pid>/status and `ps -o uid`;
// - two containers running at once get disjoint ranges;
// - a file the task writes to its scratch directory (/tmp, a tmpfs that
//   exists only in the container's mount namespace, so no host path holds
//   it) is owned by the task's mapped uid and gid on the host: stat(2)
//   through /proc/<pid>/root, the container's root as the host sees it,
//   which reports the host's (kernel) ids to this test, itself in the
//   host's user namespace;
// - the engine probe of executor start passes (limits enforced, a user
//   namespace given);
// - on a freshly started private engine (deploy/local/engine), many runs at
//   once all end: Podman 4.3 deadlocked there under a plain "auto", which
//   the policy's explicit size avoids (policy::kUsernsAutoMode).
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "executor/docker/demux.h"
#include "executor/docker/engine_client.h"
#include "executor/engine_probe.h"
#include "executor/policy/container_policy.h"
#include "executor/runner/runner.h"
#include "gtest/gtest.h"
#include "tests/executor/engine_env.h"
#include "tests/testing/process.h"
#include "tests/testing/test_stack.h"

namespace {

using executor_testing::kBusybox;

// One line of a uid_map or gid_map: ids [inside, inside+count) are host
// ids [outside, outside+count).
struct IdRange {
  int64_t inside = 0, outside = 0, count = 0;
};

std::vector<IdRange> ParseIdMap(absl::string_view text) {
  std::vector<IdRange> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    IdRange r;
    if (f.size() == 3 && absl::SimpleAtoi(f[0], &r.inside) &&
        absl::SimpleAtoi(f[1], &r.outside) &&
        absl::SimpleAtoi(f[2], &r.count)) {
      out.push_back(r);
    }
  }
  return out;
}

// The host id of `id` under `map`, -1 if unmapped.
int64_t HostId(const std::vector<IdRange>& map, int64_t id) {
  for (const IdRange& r : map) {
    if (id >= r.inside && id < r.inside + r.count)
      return r.outside + id - r.inside;
  }
  return -1;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The "Uid:" (or "Gid:") line of /proc/<pid>/status: real, effective,
// saved and filesystem ids.
std::vector<int64_t> StatusIds(int64_t pid, absl::string_view key) {
  std::vector<int64_t> ids;
  for (absl::string_view line :
       absl::StrSplit(ReadFile(absl::StrCat("/proc/", pid, "/status")), '\n')) {
    if (!absl::ConsumePrefix(&line, key)) continue;
    for (absl::string_view f :
         absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty())) {
      int64_t id = 0;
      if (absl::SimpleAtoi(f, &id)) ids.push_back(id);
    }
  }
  return ids;
}

// `ps -o uid= -p PID`, as an operator would look; -1 if it says nothing.
// Debian 12's procps prints uids of 2^31 and above as negative 32-bit
// numbers (the subordinate range starts at 2147483647): read modulo 2^32.
int64_t PsUid(int64_t pid) {
  std::string out;
  FILE* p = popen(absl::StrCat("ps -o uid= -p ", pid).c_str(), "r");
  if (p == nullptr) return -1;
  char buf[256];
  while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
  pclose(p);
  int64_t uid = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(out), &uid)) return -1;
  return uid < 0 ? uid + (int64_t{1} << 32) : uid;
}

// The task: says what it is inside, writes its scratch file, then waits
// to be looked at from the host.
constexpr char kTask[] =
    "cat /proc/self/uid_map; echo uid $(id -u); "
    "echo scratch > /tmp/scratch; exec sleep 120";

class UsernsEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CRUCIBLE_REQUIRE_ENGINE(host);
    docker::EngineClientOptions eo;
    eo.docker_host = host;
    auto engine = docker::EngineClient::Create(eo);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
    ASSERT_TRUE(engine_->Ping().ok());
    policy::ContainerPolicyOptions po;
    po.executor_id = executor_id_;
    ASSERT_EQ(po.userns, policy::kUsernsAuto);  // the default
    auto policy = policy::ContainerPolicy::Create(po);
    ASSERT_TRUE(policy.ok()) << policy.status();
    policy_ = std::make_unique<policy::ContainerPolicy>(*policy);
  }

  void TearDown() override {
    if (engine_ == nullptr) return;
    auto left = engine_->ListContainers("crucible.executor", executor_id_);
    ASSERT_TRUE(left.ok()) << left.status();
    for (const auto& c : *left) EXPECT_TRUE(engine_->Remove(c.name).ok());
  }

  struct Task {
    std::string name;
    int64_t pid = 0;
  };

  // Creates (through the proxy and the guard) and starts a task container
  // running kTask; returns once its scratch file exists.
  Task Start() {
    crucible::v1::RunRequest r;
    r.set_run_id(absl::StrCat(executor_id_, "-run-", ++runs_));
    r.set_task_id("task");
    r.set_attempt(1);
    r.mutable_spec()->set_image(kBusybox);
    for (const char* a : {"sh", "-c", kTask}) r.mutable_spec()->add_command(a);
    auto plan = policy_->Plan(r);
    EXPECT_TRUE(plan.ok()) << plan.status();
    if (!plan.ok()) return {};
    EXPECT_EQ(plan->create_body["HostConfig"]["UsernsMode"], "auto:size=65536");
    auto id = engine_->CreateContainer(plan->name, plan->create_body);
    EXPECT_TRUE(id.ok()) << id.status();
    if (!id.ok()) return {};
    EXPECT_TRUE(engine_->Start(plan->name).ok());
    Task t{.name = plan->name};
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      auto st = engine_->InspectContainer(plan->name);
      if (st.ok() && st->pid > 0) {
        t.pid = st->pid;
        struct stat s;
        if (stat(Scratch(t).c_str(), &s) == 0) return t;
      }
      absl::SleepFor(absl::Milliseconds(50));  // polling a real engine
    }
    ADD_FAILURE() << plan->name << " did not start and write its scratch file";
    return t;
  }

  static std::string Scratch(const Task& t) {
    return absl::StrCat("/proc/", t.pid, "/root/tmp/scratch");
  }

  // What the task printed on stdout so far.
  std::string Stdout(const Task& t) {
    std::string raw;
    EXPECT_TRUE(engine_
                    ->Logs(
                        t.name, false,
                        [&raw](absl::string_view b) {
                          raw.append(b.data(), b.size());
                          return true;
                        },
                        [] { return false; })
                    .ok());
    docker::Demuxer demux;
    std::vector<docker::Frame> frames;
    EXPECT_TRUE(demux.Feed(raw, frames));
    std::string out;
    for (const docker::Frame& f : frames) {
      if (f.stream == docker::StreamId::kStdout) out += f.data;
    }
    return out;
  }

  const std::string executor_id_ = executor_testing::UniqueExecutorId();
  int runs_ = 0;
  std::unique_ptr<docker::EngineClient> engine_;
  std::unique_ptr<policy::ContainerPolicy> policy_;
};

TEST_F(UsernsEngineTest, TaskUidsMapToUnprivilegedHostUidsInsideAndOut) {
  Task t = Start();
  ASSERT_GT(t.pid, 0);
  // Inside: the task's own view of its map, and its uid.
  const std::string out = Stdout(t);
  const std::vector<IdRange> inside = ParseIdMap(out);
  ASSERT_FALSE(inside.empty()) << out;
  EXPECT_NE(out.find("uid 65534\n"), std::string::npos) << out;
  const int64_t root = HostId(inside, 0);
  const int64_t nobody = HostId(inside, 65534);
  // No real user's uid (those are below 65536), never the host's root.
  EXPECT_GT(root, 65535) << out;
  EXPECT_GT(nobody, 65535) << out;
  EXPECT_EQ(nobody, root + 65534) << out;

  // From the host: the same map, and the process runs as the mapped uid.
  const std::vector<IdRange> host_view =
      ParseIdMap(ReadFile(absl::StrCat("/proc/", t.pid, "/uid_map")));
  ASSERT_EQ(host_view.size(), inside.size());
  EXPECT_EQ(HostId(host_view, 65534), nobody);
  EXPECT_EQ(StatusIds(t.pid, "Uid:"), std::vector<int64_t>(4, nobody));
  EXPECT_EQ(PsUid(t.pid), nobody);
  const std::vector<IdRange> gids =
      ParseIdMap(ReadFile(absl::StrCat("/proc/", t.pid, "/gid_map")));
  EXPECT_GT(HostId(gids, 0), 65535);
  EXPECT_EQ(StatusIds(t.pid, "Gid:"),
            std::vector<int64_t>(4, HostId(gids, 65534)));

  // Its scratch file, owned on the host by its mapped uid and gid.
  struct stat s;
  ASSERT_EQ(stat(Scratch(t).c_str(), &s), 0);
  EXPECT_EQ(static_cast<int64_t>(s.st_uid), nobody);
  EXPECT_EQ(static_cast<int64_t>(s.st_gid), HostId(gids, 65534));
  EXPECT_EQ(ReadFile(Scratch(t)), "scratch\n");
}

TEST_F(UsernsEngineTest, TwoTasksAtOnceGetDisjointRanges) {
  Task a = Start();
  Task b = Start();
  ASSERT_GT(a.pid, 0);
  ASSERT_GT(b.pid, 0);
  const auto ma =
      ParseIdMap(ReadFile(absl::StrCat("/proc/", a.pid, "/uid_map")));
  const auto mb =
      ParseIdMap(ReadFile(absl::StrCat("/proc/", b.pid, "/uid_map")));
  ASSERT_FALSE(ma.empty());
  ASSERT_FALSE(mb.empty());
  for (const IdRange& x : ma) {
    EXPECT_GT(x.outside, 65535);
    for (const IdRange& y : mb) {
      EXPECT_TRUE(x.outside + x.count <= y.outside ||
                  y.outside + y.count <= x.outside)
          << "[" << x.outside << ", +" << x.count << ") overlaps [" << y.outside
          << ", +" << y.count << ")";
    }
  }
  // And so the two tasks' scratch files have different owners.
  struct stat sa, sb;
  ASSERT_EQ(stat(Scratch(a).c_str(), &sa), 0);
  ASSERT_EQ(stat(Scratch(b).c_str(), &sb), 0);
  EXPECT_NE(sa.st_uid, sb.st_uid);
}

TEST_F(UsernsEngineTest, TheEngineProbePassesOnThisEngine) {
  executor::LimitsProbeOptions o;
  o.image = kBusybox;
  o.run_id = absl::StrCat(executor_id_, "-probe");
  auto report =
      executor::ProbeEngineLimits(*engine_, *policy_, common::Clock::Real(), o);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->memory_bytes, 6 * policy::kMiB);
  EXPECT_EQ(report->pids_limit, 16);
  const auto map = ParseIdMap(report->uid_map);
  ASSERT_EQ(map.size(), 1u) << report->uid_map;
  EXPECT_GT(HostId(map, 0), 65535);
}

// A private engine, started for this test so that it is fresh (the
// deadlock came on a new engine's first concurrent creates), behind its own
// proxy and guard on CRUCIBLE_TEST_USERNS_PROXY_PORT.
class FreshEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CRUCIBLE_REQUIRE_ENGINE(shared);
    const char* port = std::getenv("CRUCIBLE_TEST_USERNS_PROXY_PORT");
    ASSERT_NE(port, nullptr) << "run through ctest";
    port_ = port;
    dir_ = testing_util::MakeTempDir("userns-engine");
    auto started = testing_util::RunCommand({script_, "start", dir_, port_},
                                            absl::Seconds(120));
    ASSERT_TRUE(started.ok()) << started.status();
    ASSERT_EQ(started->exit_code, 0) << started->err;
  }

  void TearDown() override {
    if (dir_.empty()) return;
    auto stopped =
        testing_util::RunCommand({script_, "stop", dir_}, absl::Seconds(90));
    EXPECT_TRUE(stopped.ok()) << stopped.status();
  }

  const std::string script_ = testing_util::SourcePath("deploy/local/engine");
  std::string port_, dir_;
};

TEST_F(FreshEngineTest, ManyRunsAtOnceAllEnd) {
  docker::EngineClientOptions eo;
  eo.docker_host = absl::StrCat("tcp://127.0.0.1:", port_);
  // A deadlocked engine answers nothing: each thread's run then fails
  // UNAVAILABLE after this, within a few minutes, rather than the test
  // hanging.
  eo.request_timeout = absl::Seconds(30);
  auto engine = docker::EngineClient::Create(eo);
  ASSERT_TRUE(engine.ok()) << engine.status();
  policy::ContainerPolicyOptions po;
  po.executor_id = executor_testing::UniqueExecutorId();
  ASSERT_EQ(po.userns, policy::kUsernsAuto);  // the default
  auto policy = policy::ContainerPolicy::Create(po);
  ASSERT_TRUE(policy.ok()) << policy.status();
  constexpr int kThreads = 6, kRunsEach = 4;
  runner::RunnerOptions ro;
  ro.slots = kThreads;
  runner::Runner runner(**engine, *policy, common::Clock::Real(), ro);

  class Discard : public runner::RunSink {
    void OnStarted(const crucible::v1::RunStarted&) override {}
    void OnOutput(crucible::v1::OutputChunk) override {}
  };
  std::vector<std::string> failures[kThreads];
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Discard sink;
      for (int i = 0; i < kRunsEach; ++i) {
        crucible::v1::RunRequest r;
        r.set_run_id(absl::StrCat(po.executor_id, "-", t, "-", i));
        r.set_task_id("task");
        r.set_attempt(1);
        r.mutable_spec()->set_image(kBusybox);
        r.mutable_spec()->add_command("true");
        auto result = runner.Run(r, sink, nullptr);
        if (!result.ok()) {
          failures[t].push_back(
              absl::StrCat(r.run_id(), ": ", result.status().ToString()));
          break;  // a hung engine: one timeout per thread is enough
        } else if (result->exit_code() != 0) {
          failures[t].push_back(
              absl::StrCat(r.run_id(), ": exit ", result->exit_code()));
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_TRUE(failures[t].empty()) << absl::StrJoin(failures[t], "\n");
  }
  auto left = (*engine)->ListContainers("crucible.executor", po.executor_id);
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_TRUE(left->empty()) << left->size() << " containers left";
}

}  // namespace
