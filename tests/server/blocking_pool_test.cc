#include "server/blocking_pool.h"

#include <atomic>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace server {
namespace {

TEST(BlockingPoolTest, RunsEverythingScheduledBeforeDestruction) {
  std::atomic<int> ran{0};
  {
    BlockingPool pool(3);
    for (int i = 0; i < 100; ++i) pool.Schedule([&ran] { ++ran; });
  }
  EXPECT_EQ(ran.load(), 100);
}

TEST(ReactorJobsTest, CleanupRunsOnceAfterDoneAndTheLastJob) {
  BlockingPool pool(2);
  std::atomic<int> cleanups{0};
  absl::Notification release, cleaned;
  ReactorJobs jobs(pool, [&] {
    ++cleanups;
    cleaned.Notify();
  });
  // Bounded: a test that fails before the release below must not leave the
  // pool's thread (and the pool's destructor) waiting forever.
  jobs.Run([&] {
    EXPECT_TRUE(release.WaitForNotificationWithTimeout(absl::Seconds(30)));
  });
  jobs.Done();
  // The job is still running: no cleanup yet.
  EXPECT_FALSE(cleaned.WaitForNotificationWithTimeout(absl::Milliseconds(50)));
  release.Notify();
  ASSERT_TRUE(cleaned.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(cleanups.load(), 1);
}

TEST(ReactorJobsTest, DoneWithoutJobsCleansUpOnThePool) {
  BlockingPool pool(1);
  absl::Notification cleaned;
  ReactorJobs jobs(pool, [&] { cleaned.Notify(); });
  jobs.Done();
  EXPECT_TRUE(cleaned.WaitForNotificationWithTimeout(absl::Seconds(5)));
}

}  // namespace
}  // namespace server
