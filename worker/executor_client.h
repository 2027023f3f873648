#ifndef CRUCIBLE_WORKER_EXECUTOR_CLIENT_H_
#define CRUCIBLE_WORKER_EXECUTOR_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "crucible/v1/executor_service.grpc.pb.h"
#include "worker/channel.h"

namespace worker {

// A handle to cancel one Run call from another thread. Thread-safe.
class RunCall {
 public:
  // Cancels the call (now if it is in flight, at start otherwise).
  void Cancel();
  bool cancelled() const;

 private:
  friend class ExecutorClient;
  // False if Cancel came first: the call must not start.
  bool Attach(grpc::ClientContext* ctx);
  void Detach();

  mutable absl::Mutex mu_;
  grpc::ClientContext* ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

// Client of ExecutorService on any number of executors (one channel per
// address, made on first use). Thread-safe. The destructor waits for the
// asynchronous Cancel calls it started.
class ExecutorClient {
 public:
  struct Options {
    // Deadline of ExecutorService.Cancel.
    absl::Duration cancel_deadline = absl::Seconds(5);
    // Keepalives and reconnection of the channels.
    ChannelOptions channel;
  };
  explicit ExecutorClient(Options options) : options_(options) {}
  ~ExecutorClient();

  // Calls Run on `address` and hands every message to `on_event`, on the
  // calling thread, until the stream ends; returns its status. The call is
  // bounded by `deadline` and can be cancelled through `call`.
  absl::Status Run(
      const std::string& address, const crucible::v1::RunRequest& request,
      absl::Duration deadline, RunCall& call,
      const std::function<void(const crucible::v1::RunResponse&)>& on_event);

  // Calls Cancel(run_id) on `address` without blocking; `done` runs on a
  // gRPC thread with the call's status.
  void CancelAsync(const std::string& address, const std::string& run_id,
                   std::function<void(absl::Status)> done);

  // Drops the channels of every address not in `addresses` (executors that
  // discovery no longer lists and that run nothing for us). Calls in flight
  // keep theirs until they end.
  void Retain(const std::set<std::string>& addresses);
  // The addresses that have a channel.
  std::set<std::string> ChannelsForTest() const;

 private:
  using Stub = crucible::v1::ExecutorService::Stub;
  std::shared_ptr<Stub> StubFor(const std::string& address);

  const Options options_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Stub>> stubs_ ABSL_GUARDED_BY(mu_);
  int pending_cancels_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace worker

#endif  // CRUCIBLE_WORKER_EXECUTOR_CLIENT_H_
