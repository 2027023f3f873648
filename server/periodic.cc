#include "server/periodic.h"

#include <utility>

namespace server {

PeriodicRunner::PeriodicRunner(absl::Duration interval,
                               std::function<void()> fn)
    : thread_([this, interval, fn = std::move(fn)] {
        while (!stop_.WaitForNotificationWithTimeout(interval)) fn();
      }) {}

PeriodicRunner::~PeriodicRunner() {
  stop_.Notify();
  thread_.join();
}

}  // namespace server
