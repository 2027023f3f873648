#ifndef CRUCIBLE_CLI_PROGRESS_H_
#define CRUCIBLE_CLI_PROGRESS_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "cli/connection.h"
#include "cli/output.h"
#include "crucible/v1/task_service.grpc.pb.h"

namespace cli {

// The status line of a task followed in the foreground ("task ID RUNNING,
// 5s"): watches the task with WatchTask and redraws the line each second
// through Output. Thread-safe; owns its two threads.
class Progress {
 public:
  Progress(const Connection& connection, crucible::v1::TaskService::Stub& stub,
           Output& output, std::string task_id);
  // Stop().
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Erases the line and joins the threads. Idempotent.
  void Stop();

 private:
  void Watch();
  void Tick();
  void Draw() ABSL_LOCKS_EXCLUDED(mu_);

  crucible::v1::TaskService::Stub& stub_;
  Output& output_;
  const std::string task_id_;
  std::unique_ptr<grpc::ClientContext> ctx_;  // of the WatchTask call
  absl::Notification stop_;
  absl::Mutex mu_;
  crucible::v1::TaskState state_ ABSL_GUARDED_BY(mu_) =
      crucible::v1::TASK_STATE_QUEUED;
  int attempt_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time since_ ABSL_GUARDED_BY(mu_) = absl::Now();
  std::thread watcher_;
  std::thread ticker_;
};

}  // namespace cli

#endif  // CRUCIBLE_CLI_PROGRESS_H_
