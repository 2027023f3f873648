#ifndef CRUCIBLE_SERVER_PERIODIC_H_
#define CRUCIBLE_SERVER_PERIODIC_H_

#include <functional>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace server {

// Runs `fn` every `interval` on its own thread until destroyed (the
// destructor stops and joins the thread). Thread-safe.
class PeriodicRunner {
 public:
  PeriodicRunner(absl::Duration interval, std::function<void()> fn);
  ~PeriodicRunner();
  PeriodicRunner(const PeriodicRunner&) = delete;
  PeriodicRunner& operator=(const PeriodicRunner&) = delete;

 private:
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_PERIODIC_H_
