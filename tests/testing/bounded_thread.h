#ifndef CRUCIBLE_TESTS_TESTING_BOUNDED_THREAD_H_
#define CRUCIBLE_TESTS_TESTING_BOUNDED_THREAD_H_

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <thread>
#include <utility>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace testing_util {

// A test's helper thread that is joined within a bound, so that a bug that
// keeps it running fails the test instead of hanging ctest. Owned by, and
// confined to, the test thread that made it.
//
//   BoundedThread run([&] { result = runner.Run(...); });
//   ...
//   ASSERT_TRUE(run.JoinWithin(absl::Seconds(30))) << "Run never returned";
class BoundedThread {
 public:
  // How long the destructor waits for a thread not joined yet (a test that
  // returned early, on a failed ASSERT) before it aborts the test binary.
  static constexpr absl::Duration kDestructorBound = absl::Seconds(30);

  explicit BoundedThread(std::function<void()> fn)
      : thread_([this, fn = std::move(fn)] {
          fn();
          done_.Notify();
        }) {}
  BoundedThread(const BoundedThread&) = delete;
  BoundedThread& operator=(const BoundedThread&) = delete;

  // Waits up to `timeout` for the function to return; true if it did (and
  // the thread is joined), false if it still runs.
  bool JoinWithin(absl::Duration timeout) {
    if (!thread_.joinable()) return true;
    if (!done_.WaitForNotificationWithTimeout(timeout)) return false;
    thread_.join();
    return true;
  }

  // The thread uses the test's stack: it can be neither left running nor
  // detached. One still running after kDestructorBound aborts the binary
  // with a message, which ctest reports as a failure.
  ~BoundedThread() {
    if (JoinWithin(kDestructorBound)) return;
    std::fprintf(stderr,
                 "BoundedThread: a test thread still runs %s after its test "
                 "ended; aborting rather than hanging\n",
                 absl::FormatDuration(kDestructorBound).c_str());
    std::abort();
  }

 private:
  absl::Notification done_;
  std::thread thread_;  // last: started once done_ exists
};

}  // namespace testing_util

#endif  // CRUCIBLE_TESTS_TESTING_BOUNDED_THREAD_H_
