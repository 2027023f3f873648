#ifndef CRUCIBLE_WORKER_QUEUE_SESSION_H_
#define CRUCIBLE_WORKER_QUEUE_SESSION_H_

#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "crucible/v1/queue_service.grpc.pb.h"
#include "worker/executor_client.h"
#include "worker/executor_pool.h"
#include "worker/protocol.h"

namespace worker {

struct SessionOptions {
  // Name sent in the hello.
  std::string worker_id = "worker";
  // Slots: the credits of the hello, and the most runs at once.
  int slots = 4;
  // How often the running leases are named in a heartbeat.
  absl::Duration heartbeat_interval = absl::Seconds(5);
  // Deadline of a Run call: the spec's timeout plus this margin (container
  // start and removal, output draining)...
  absl::Duration run_deadline_margin = absl::Minutes(2);
  // ...or this when the spec has no timeout (the executor applies its
  // default, which the worker does not know). A guard against a stuck
  // stream, not a task limit.
  absl::Duration run_deadline_without_timeout = absl::Hours(24);
  // Reports queued for the server beyond this many bytes make the run
  // threads wait (back-pressure to the executor's stream).
  size_t max_outbound_bytes = 16 << 20;
  // On Stop: how long to wait for cancelled runs to end and their reports
  // to be written before the stream is cut.
  absl::Duration stop_grace = absl::Seconds(8);
};

// One QueueService.Connect stream and the runs it was assigned. The reader
// is the thread calling Run(); a writer thread owns every write (one at a
// time) and sends the heartbeats; each assignment runs on its own thread.
// All threads are owned and joined before Run() returns. When the stream
// ends, the runs it carried are cancelled (their leases lapse on the server;
// resuming them on a new stream is future work). Thread-safe.
class QueueSession {
 public:
  QueueSession(SessionOptions options, crucible::v1::QueueService::Stub& stub,
               ExecutorClient& executors, ExecutorPool& pool);
  ~QueueSession();

  // Opens the stream, says hello, serves it until it ends, stops its runs
  // and returns the stream's status. Call once.
  absl::Status Run();
  // From any thread: cancels the runs, reports them as UNAVAILABLE errors
  // (so the server retries them at once), half-closes after the reports
  // are written (bounded by stop_grace), then cuts the stream.
  void Stop();

 private:
  struct ActiveRun;

  void WriterLoop();
  void Handle(const crucible::v1::ConnectResponse& msg);
  void StartRun(const crucible::v1::Assignment& assignment);
  void RunOne(std::shared_ptr<ActiveRun> run);
  void CancelFromServer(const crucible::v1::AssignmentCancel& cancel);
  void OnRejected(const crucible::v1::ReportRejected& rejected);
  void StopAllRuns();
  void ReapFinished();
  // Queues a report unless the writer has closed. With `may_block`, waits
  // while too many bytes are queued.
  void Enqueue(crucible::v1::ConnectRequest msg, bool may_block);
  void PushLocked(crucible::v1::ConnectRequest msg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<std::string> HeartbeatLeasesLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration RunDeadline(const crucible::v1::TaskSpec& spec) const;

  const SessionOptions options_;
  crucible::v1::QueueService::Stub& stub_;
  ExecutorClient& executors_;
  ExecutorPool& pool_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<crucible::v1::ConnectRequest,
                                           crucible::v1::ConnectResponse>>
      stream_;
  std::thread writer_;

  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<ActiveRun>> runs_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> finished_ ABSL_GUARDED_BY(mu_);  // to join
  std::deque<crucible::v1::ConnectRequest> outbound_ ABSL_GUARDED_BY(mu_);
  size_t outbound_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;      // Stop() was called
  bool reader_done_ ABSL_GUARDED_BY(mu_) = false;   // the stream ended
  bool writer_stop_ ABSL_GUARDED_BY(mu_) = false;   // Run() tells the writer to quit
  bool writer_closed_ ABSL_GUARDED_BY(mu_) = false; // no more writes
};

}  // namespace worker

#endif  // CRUCIBLE_WORKER_QUEUE_SESSION_H_
