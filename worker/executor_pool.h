#ifndef CRUCIBLE_WORKER_EXECUTOR_POOL_H_
#define CRUCIBLE_WORKER_EXECUTOR_POOL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace worker {

// Picks the executor for the next run: the one with the fewest runs in
// flight, ties broken round-robin. Thread-safe. No gRPC.
class ExecutorPool {
 public:
  explicit ExecutorPool(std::vector<std::string> addresses);

  // The address to use for a new run; counts it as busy until Release.
  // FAILED_PRECONDITION if the pool is empty.
  absl::StatusOr<std::string> Acquire();
  // A run on `address` ended.
  void Release(const std::string& address);
  // Runs in flight on `address` (0 for an unknown address).
  int InFlight(const std::string& address) const;

 private:
  struct Entry {
    std::string address;
    int in_flight = 0;
  };
  mutable absl::Mutex mu_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;  // where the round-robin scan starts
};

}  // namespace worker

#endif  // CRUCIBLE_WORKER_EXECUTOR_POOL_H_
