// EngineHealth with a fake ping: NOT_SERVING at the first unreachable call,
// fast pings while down, SERVING (and "after an outage") on the first good
// ping. The executor id: stable, kept in its file, never shared.
#include "executor/engine_health.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "executor/executor_id.h"
#include "gtest/gtest.h"

namespace executor {
namespace {

// The changes EngineHealth delivered, and a fake engine to ping.
class Recorder {
 public:
  void SetEngineUp(bool up) {
    absl::MutexLock lock(&mu_);
    up_ = up;
  }
  absl::Status Ping() {
    absl::MutexLock lock(&mu_);
    return up_ ? absl::OkStatus() : absl::UnavailableError("engine down");
  }
  void OnChange(bool serving, bool after_outage, const absl::Status& why) {
    absl::MutexLock lock(&mu_);
    changes_.push_back({serving, after_outage});
    whys_.push_back(why);
  }
  // The causes delivered with the changes.
  std::vector<absl::Status> whys() {
    absl::MutexLock lock(&mu_);
    return whys_;
  }
  // Waits up to `timeout` for `n` changes; returns them.
  std::vector<std::pair<bool, bool>> AwaitChanges(
      size_t n, absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return changes_.size() >= n;
    };
    mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
    return changes_;
  }

 private:
  absl::Mutex mu_;
  bool up_ ABSL_GUARDED_BY(mu_) = true;
  std::vector<std::pair<bool, bool>> changes_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Status> whys_ ABSL_GUARDED_BY(mu_);
};

EngineHealth::PingFn PingOf(Recorder& r) {
  return [&r] { return r.Ping(); };
}
EngineHealth::ChangeFn ChangesTo(Recorder& r) {
  return [&r](bool serving, bool after_outage, const absl::Status& why) {
    r.OnChange(serving, after_outage, why);
  };
}

using Changes = std::vector<std::pair<bool, bool>>;

TEST(EngineHealthTest, FirstGoodPingIsServingNotAnOutage) {
  Recorder r;
  EngineHealth health(common::Clock::Real(), {.ping_interval = absl::Hours(1)});
  EXPECT_FALSE(health.serving());
  health.Start(PingOf(r), ChangesTo(r));
  EXPECT_EQ(r.AwaitChanges(1), (Changes{{true, false}}));
  EXPECT_TRUE(health.serving());
}

TEST(EngineHealthTest, UnreachableCallIsNotServingAtOnceNotAtTheNextPing) {
  Recorder r;
  // Pings an hour apart while serving: only the report can explain a change.
  EngineHealth health(common::Clock::Real(),
                      {.ping_interval = absl::Hours(1),
                       .unhealthy_ping_interval = absl::Hours(1)});
  health.Start(PingOf(r), ChangesTo(r));
  ASSERT_EQ(r.AwaitChanges(1).size(), 1u);
  r.SetEngineUp(false);
  health.ReportUnreachable(absl::UnavailableError("connection refused"));
  EXPECT_EQ(r.AwaitChanges(2), (Changes{{true, false}, {false, false}}));
  EXPECT_EQ(r.whys(), (std::vector<absl::Status>{
                          absl::OkStatus(),
                          absl::UnavailableError("connection refused")}));
  EXPECT_FALSE(health.serving());
  EXPECT_EQ(health.pings(), 1);  // no ping needed to go NOT_SERVING
  // More reports while down change nothing.
  health.ReportUnreachable(absl::UnavailableError("connection refused"));
  health.Stop();  // joins the thread: whatever it would deliver, it has
  EXPECT_EQ(r.AwaitChanges(3, absl::ZeroDuration()).size(), 2u);
}

TEST(EngineHealthTest, WhileDownPingsOftenAndRecoveryIsAnOutageEnd) {
  Recorder r;
  EngineHealth health(common::Clock::Real(),
                      {.ping_interval = absl::Hours(1),
                       .unhealthy_ping_interval = absl::Milliseconds(20)});
  health.Start(PingOf(r), ChangesTo(r));
  ASSERT_EQ(r.AwaitChanges(1).size(), 1u);
  r.SetEngineUp(false);
  health.ReportUnreachable(absl::UnavailableError("HTTP 503"));
  ASSERT_EQ(r.AwaitChanges(2).size(), 2u);
  // Pinged again and again (every 20 ms), still down: no change.
  while (health.pings() < 4) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_FALSE(health.serving());
  r.SetEngineUp(true);
  EXPECT_EQ(r.AwaitChanges(3),
            (Changes{{true, false}, {false, false}, {true, true}}));
  EXPECT_TRUE(health.serving());
}

TEST(EngineHealthTest, ReportsDoNotStarveThePings) {
  Recorder r;
  EngineHealth health(common::Clock::Real(),
                      {.ping_interval = absl::Hours(1),
                       .unhealthy_ping_interval = absl::Milliseconds(50)});
  health.Start(PingOf(r), ChangesTo(r));
  ASSERT_EQ(r.AwaitChanges(1).size(), 1u);
  r.SetEngineUp(false);
  health.ReportUnreachable(absl::UnavailableError("down"));
  ASSERT_EQ(r.AwaitChanges(2).size(), 2u);
  r.SetEngineUp(true);
  // Calls still failing (in flight since the outage) every few ms must not
  // hold off the ping that sees the engine back.
  std::atomic<bool> done = false;
  std::thread reporter([&] {
    while (!done) {
      health.ReportUnreachable(absl::UnavailableError("late failure"));
      absl::SleepFor(absl::Milliseconds(5));
    }
  });
  const Changes changes = r.AwaitChanges(3);
  done = true;
  reporter.join();
  ASSERT_GE(changes.size(), 3u);
  EXPECT_EQ(changes[2], std::make_pair(true, true));
}

TEST(EngineHealthTest, DownAtStartStaysNotServingUntilAPingSucceeds) {
  Recorder r;
  r.SetEngineUp(false);
  EngineHealth health(common::Clock::Real(),
                      {.ping_interval = absl::Hours(1),
                       .unhealthy_ping_interval = absl::Milliseconds(10)});
  health.Start(PingOf(r), ChangesTo(r));
  while (health.pings() < 3) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_FALSE(health.serving());
  // The first failure said why, once; the next ones changed nothing.
  EXPECT_EQ(r.AwaitChanges(1, absl::ZeroDuration()), (Changes{{false, false}}));
  EXPECT_EQ(r.whys(),
            (std::vector<absl::Status>{absl::UnavailableError("engine down")}));
  r.SetEngineUp(true);
  // Reaching the engine after failures at start counts as an outage's end
  // (so the orphans a predecessor left are reaped then).
  EXPECT_EQ(r.AwaitChanges(2), (Changes{{false, false}, {true, true}}));
}

TEST(ExecutorIdTest, FlagWinsThenPortThenPid) {
  absl::BitGen gen;
  auto flag = ExecutorIdentity::Resolve(
      {.id = "given", .listen = "127.0.0.1:8082", .hostname = "h", .pid = 7},
      gen);
  ASSERT_TRUE(flag.ok());
  EXPECT_EQ(flag->id(), "given");
  auto port = ExecutorIdentity::Resolve(
      {.listen = "[::]:8082", .hostname = "h", .pid = 7}, gen);
  ASSERT_TRUE(port.ok());
  EXPECT_EQ(port->id(), "h-8082");
  EXPECT_TRUE(port->stable());
  auto pid = ExecutorIdentity::Resolve(
      {.listen = "127.0.0.1:0", .hostname = "h", .pid = 7}, gen);
  ASSERT_TRUE(pid.ok());
  EXPECT_EQ(pid->id(), "h-7");
  EXPECT_FALSE(pid->stable());
}

TEST(ExecutorIdTest, IdFileKeepsTheIdAcrossRestartsAndIsNeverShared) {
  absl::BitGen gen;
  const std::string file =
      testing::TempDir() + "/executor-id-" + std::to_string(getpid());
  std::remove(file.c_str());
  const ExecutorIdOptions options{
      .id_file = file, .listen = "127.0.0.1:0", .hostname = "h"};
  std::string first_id;
  {
    auto first = ExecutorIdentity::Resolve(options, gen);
    ASSERT_TRUE(first.ok()) << first.status();
    first_id = first->id();
    EXPECT_TRUE(first->stable());
    EXPECT_EQ(first_id.rfind("h-", 0), 0u) << first_id;
    // A second executor on the same file while the first runs: refused.
    auto second = ExecutorIdentity::Resolve(options, gen);
    EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  }
  // The first is gone (its lock with it): a restart gets the same id.
  auto restarted = ExecutorIdentity::Resolve(options, gen);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  EXPECT_EQ(restarted->id(), first_id);
  // Another file, another id.
  auto other = ExecutorIdentity::Resolve(
      {.id_file = file + ".other", .listen = "127.0.0.1:0", .hostname = "h"},
      gen);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->id(), first_id);
  std::remove(file.c_str());
  std::remove((file + ".other").c_str());
}

}  // namespace
}  // namespace executor
