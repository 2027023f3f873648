// The runs' threads: each placed run is one ExecutorService.Run call on a
// thread of its own, its events and end handed to the core.
#include <utility>

#include "glog/logging.h"
#include "worker/worker.h"

namespace worker {

std::shared_ptr<RunCall> Worker::Launcher::CallLocked(
    const std::string& lease) {
  return calls_[lease].call;
}

void Worker::Launcher::Launch(const std::string& executor,
                              const crucible::v1::RunRequest& request,
                              absl::Duration deadline) {
  absl::MutexLock lock(&mu_);
  Entry& entry = calls_[request.run_id()];
  ++entry.threads;
  const uint64_t id = next_id_++;
  // Started under the lock so that the thread's final step, which takes
  // it, finds itself in threads_.
  threads_[id] =
      std::thread([this, id, executor, request, deadline, call = entry.call] {
        RunOne(id, executor, request, deadline, call);
      });
}

void Worker::Launcher::RunOne(uint64_t id, std::string executor,
                              crucible::v1::RunRequest request,
                              absl::Duration deadline,
                              std::shared_ptr<RunCall> call) {
  const std::string& lease = request.run_id();
  absl::Status status =
      executors_.Run(executor, request, deadline, *call,
                     [this, &lease](const crucible::v1::RunResponse& event) {
                       core_->OnRunEvent(lease, event);
                     });
  // May place the run again (its executor was full), on a new thread.
  core_->OnRunEnded(lease, std::move(status));
  absl::MutexLock lock(&mu_);
  if (auto it = calls_.find(lease);
      it != calls_.end() && --it->second.threads == 0) {
    calls_.erase(it);
  }
  auto self = threads_.find(id);
  finished_.push_back(std::move(self->second));
  threads_.erase(self);
}

void Worker::Launcher::CancelCall(const std::string& lease) {
  std::shared_ptr<RunCall> call;
  {
    absl::MutexLock lock(&mu_);
    call = CallLocked(lease);
  }
  call->Cancel();
}

void Worker::Launcher::CancelOnExecutor(const std::string& executor,
                                        const std::string& lease) {
  std::shared_ptr<RunCall> call;
  {
    absl::MutexLock lock(&mu_);
    call = CallLocked(lease);
  }
  executors_.CancelAsync(executor, lease, [call, lease](absl::Status s) {
    if (s.ok()) return;
    LOG(WARNING) << "executor Cancel of " << lease << ": " << s
                 << "; cancelling the Run call instead";
    call->Cancel();
  });
}

void Worker::Launcher::ReapFinished() {
  std::vector<std::thread> finished;
  std::vector<std::string> idle;
  {
    absl::MutexLock lock(&mu_);
    finished.swap(finished_);
    for (const auto& [lease, entry] : calls_) {
      if (entry.threads == 0) idle.push_back(lease);
    }
  }
  // A cancel that came after its run's end left an entry no launch will
  // use: forget it once the core no longer holds the run (core first, then
  // our lock: never both at once).
  for (const std::string& lease : idle) {
    if (core_->holds(lease)) continue;
    absl::MutexLock lock(&mu_);
    if (auto it = calls_.find(lease);
        it != calls_.end() && it->second.threads == 0) {
      calls_.erase(it);
    }
  }
  for (std::thread& t : finished) t.join();
}

void Worker::Launcher::JoinAll() {
  {
    absl::MutexLock lock(&mu_);
    auto none = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return threads_.empty();
    };
    mu_.Await(absl::Condition(&none));
  }
  ReapFinished();
}

}  // namespace worker
