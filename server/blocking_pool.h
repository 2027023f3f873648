#ifndef CRUCIBLE_SERVER_BLOCKING_POOL_H_
#define CRUCIBLE_SERVER_BLOCKING_POOL_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace server {

// A fixed set of threads for work that may block (store writes, waiting for
// the scheduler's lock), so that gRPC reactions never do. Thread-safe. The
// destructor runs everything already scheduled, then joins the threads.
class BlockingPool {
 public:
  explicit BlockingPool(int threads);
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  void Schedule(std::function<void()> fn);

 private:
  void Loop();
  bool Ready() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || !queue_.empty();
  }

  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

// The pool jobs of one self-owned reactor. The reactor is cleaned up (and
// deleted) by whichever comes last: Done() (called from OnDone) or the end of
// its last job; cleanup always runs on the pool, never in a reaction.
// Thread-safe.
class ReactorJobs {
 public:
  // `cleanup` typically unsubscribes and deletes the reactor owning this.
  ReactorJobs(BlockingPool& pool, std::function<void()> cleanup)
      : pool_(pool), cleanup_(std::move(cleanup)) {}

  // Runs `fn` on the pool. Not after Done().
  void Run(std::function<void()> fn);
  // The reactor is done (OnDone).
  void Done();

 private:
  BlockingPool& pool_;
  const std::function<void()> cleanup_;
  absl::Mutex mu_;
  int jobs_ ABSL_GUARDED_BY(mu_) = 0;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_BLOCKING_POOL_H_
