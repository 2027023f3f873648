#ifndef CRUCIBLE_WORKER_WORKER_H_
#define CRUCIBLE_WORKER_WORKER_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "crucible/v1/queue_service.grpc.pb.h"
#include "worker/backoff.h"
#include "worker/executor_client.h"
#include "worker/executor_pool.h"
#include "worker/queue_session.h"

namespace worker {

struct WorkerOptions {
  // host:port of the server's QueueService.
  std::string server_address = "127.0.0.1:8080";
  // host:port of every executor.
  std::vector<std::string> executors = {"127.0.0.1:8082"};
  // The stream's behaviour (worker id, slots, heartbeats, deadlines).
  SessionOptions session;
  // Delays between reconnections.
  BackoffOptions reconnect_backoff;
  // A stream that lasted at least this long resets the backoff.
  absl::Duration backoff_reset_after = absl::Seconds(10);
  // Deadline of ExecutorService.Cancel.
  absl::Duration cancel_deadline = absl::Seconds(5);
};

// Keeps one QueueService stream open (reconnecting with capped, jittered
// exponential backoff when it ends) and runs its assignments on the
// executors. Thread-safe; Start and Stop are called by the owner.
class Worker {
 public:
  explicit Worker(WorkerOptions options);
  ~Worker();

  // Starts the connection loop on a thread of its own.
  void Start();
  // Stops the stream (cancelling and reporting the running tasks) and joins
  // the loop. Idempotent.
  void Stop();

 private:
  void Loop();

  const WorkerOptions options_;
  std::unique_ptr<crucible::v1::QueueService::Stub> stub_;
  ExecutorClient executors_;
  ExecutorPool pool_;
  std::thread loop_;

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<QueueSession> session_ ABSL_GUARDED_BY(mu_);
};

}  // namespace worker

#endif  // CRUCIBLE_WORKER_WORKER_H_
