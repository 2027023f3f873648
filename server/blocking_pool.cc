#include "server/blocking_pool.h"

#include <pthread.h>

#include <utility>

namespace server {

BlockingPool::BlockingPool(int threads) {
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] {
      pthread_setname_np(pthread_self(), "blocking-pool");  // for top -H, perf
      Loop();
    });
  }
}

BlockingPool::~BlockingPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

void BlockingPool::Schedule(std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(fn));
}

void BlockingPool::Loop() {
  while (true) {
    std::function<void()> fn;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &BlockingPool::Ready));
      if (queue_.empty()) return;  // stopping, and nothing left
      fn = std::move(queue_.front());
      queue_.pop_front();
    }
    fn();
  }
}

void ReactorJobs::Run(std::function<void()> fn) {
  {
    absl::MutexLock lock(&mu_);
    ++jobs_;
  }
  pool_.Schedule([this, fn = std::move(fn)] {
    fn();
    bool last;
    {
      absl::MutexLock lock(&mu_);
      --jobs_;
      last = done_ && jobs_ == 0;
    }
    if (last) {
      std::function<void()> cleanup = cleanup_;  // `this` dies in it
      cleanup();
    }
  });
}

void ReactorJobs::Done() {
  bool last;
  {
    absl::MutexLock lock(&mu_);
    done_ = true;
    last = jobs_ == 0;
  }
  if (last) pool_.Schedule(cleanup_);
}

}  // namespace server
