#ifndef CRUCIBLE_TESTS_WORKER_FAKE_SERVICES_H_
#define CRUCIBLE_TESTS_WORKER_FAKE_SERVICES_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "crucible/v1/executor_service.grpc.pb.h"
#include "crucible/v1/queue_service.grpc.pb.h"

namespace worker_test {

// A QueueService that records what a worker sends and lets the test send
// messages on the open stream. Thread-safe.
class FakeQueue final : public crucible::v1::QueueService::Service {
 public:
  using Messages = std::vector<crucible::v1::ConnectRequest>;

  grpc::Status Connect(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<crucible::v1::ConnectResponse,
                               crucible::v1::ConnectRequest>* stream) override;

  // Writes on the current stream; false if there is none.
  bool Send(const crucible::v1::ConnectResponse& msg);
  // Cuts the current stream.
  void Drop();
  // Waits until `pred` holds for everything received so far.
  bool WaitFor(const std::function<bool(const Messages&)>& pred,
               absl::Duration timeout = absl::Seconds(10));
  Messages Received() const;
  int connects() const;
  // Streams that ended (the worker half-closed or the stream broke).
  int stream_ends() const;
  bool WaitForStreamEnds(int n, absl::Duration timeout = absl::Seconds(10));

 private:
  mutable absl::Mutex mu_;
  Messages received_ ABSL_GUARDED_BY(mu_);
  int connects_ ABSL_GUARDED_BY(mu_) = 0;
  int stream_ends_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::ServerContext* ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  grpc::ServerReaderWriter<crucible::v1::ConnectResponse,
                           crucible::v1::ConnectRequest>* stream_
      ABSL_GUARDED_BY(mu_) = nullptr;
};

// An ExecutorService whose Run follows a script chosen by the test.
// Thread-safe.
class FakeExecutor final : public crucible::v1::ExecutorService::Service {
 public:
  enum class Mode {
    kScript,          // started, stdout "hello\n", stderr "oops\n", exit 3
    kError,           // fails with error_code
    kUntilCancelled,  // started, then waits for Cancel, the call's cancel or
                      // Finish
  };

  void set_mode(Mode mode, grpc::StatusCode error_code = grpc::StatusCode::OK);

  grpc::Status Run(
      grpc::ServerContext* ctx, const crucible::v1::RunRequest* request,
      grpc::ServerWriter<crucible::v1::RunResponse>* writer) override;
  grpc::Status Cancel(grpc::ServerContext* ctx,
                      const crucible::v1::CancelRequest* request,
                      crucible::v1::CancelResponse* response) override;
  // Answers with what set_executor_id made it say.
  grpc::Status Describe(grpc::ServerContext* ctx,
                        const crucible::v1::DescribeRequest* request,
                        crucible::v1::DescribeResponse* response) override;
  void set_executor_id(const std::string& id);

  // Ends the kUntilCancelled run `run_id` with exit code 0.
  void Finish(const std::string& run_id);
  std::vector<crucible::v1::RunRequest> runs() const;
  std::vector<std::string> cancels() const;
  // Run ids whose Run call was cancelled by the client.
  std::vector<std::string> call_cancelled() const;
  bool WaitForRuns(size_t n, absl::Duration timeout = absl::Seconds(10));
  // Waits until the Run call of `run_id` was seen cancelled by the client.
  bool WaitForCallCancelled(const std::string& run_id,
                            absl::Duration timeout = absl::Seconds(10));

 private:
  mutable absl::Mutex mu_;
  Mode mode_ ABSL_GUARDED_BY(mu_) = Mode::kScript;
  grpc::StatusCode error_code_ ABSL_GUARDED_BY(mu_) = grpc::StatusCode::OK;
  std::vector<crucible::v1::RunRequest> runs_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> active_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> cancels_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> call_cancelled_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> finish_ ABSL_GUARDED_BY(mu_);
  std::string executor_id_ ABSL_GUARDED_BY(mu_) = "fake";
};

}  // namespace worker_test

#endif  // CRUCIBLE_TESTS_WORKER_FAKE_SERVICES_H_
