#ifndef CRUCIBLE_BENCH_CREATE_LOAD_H_
#define CRUCIBLE_BENCH_CREATE_LOAD_H_

// The CreateTask callers of the benchmarks: crucible-queue-bench and
// grpc_floor load a server with the very same client.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "crucible/v1/task_service.grpc.pb.h"

namespace bench {

// A channel with a connection of its own (`i` tells them apart); plaintext
// unless `credentials` are given.
inline std::shared_ptr<grpc::Channel> Channel(
    const std::string& target, int i,
    std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr) {
  grpc::ChannelArguments args;
  args.SetInt("crucible.bench.channel", i);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // A load generator's settings: no transparent retries (a failed call is
  // made again by the caller below) and no channelz accounting, so less of
  // the two cores goes to the callers. They change nothing in the server.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  args.SetInt(GRPC_ARG_ENABLE_CHANNELZ, 0);
  return grpc::CreateCustomChannel(
      target,
      credentials != nullptr ? credentials : grpc::InsecureChannelCredentials(),
      args);
}

// Whether CreateLoad can run with `channels` channels and `threads` caller
// threads; says why not on stderr.
inline bool LoadShapeOk(int channels, int threads) {
  if (channels >= 1 && threads >= 1) return true;
  std::fprintf(stderr, "--channels and --caller_threads must be at least 1\n");
  return false;
}

// Keeps `inflight` CreateTask calls going over `channels` until `total`
// were answered OK; a failed call is made again. With `batch` > 1, each
// call is a BatchCreateTasks of `batch` tasks instead (the last one
// smaller), and a task the batch refused is made again in a later one.
//
// A load generator, so it uses the completion-queue API as gRPC's own
// benchmark clients do: each of `threads` threads polls a queue of its own
// and makes the next call itself, with no hand-over to another thread.
// (With the callback API, the queue bench used about a tenth more CPU per
// task, on the cores the server needs.)
class CreateLoad {
 public:
  CreateLoad(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
             int total, int threads, int batch = 1)
      : total_(total), threads_(threads), batch_(batch) {
    for (const auto& c : channels)
      stubs_.push_back(crucible::v1::TaskService::NewStub(c));
  }
  // Returns when all `total` calls were answered OK.
  void Run(int inflight) {
    std::vector<std::thread> pollers;
    for (int t = 0; t < threads_; ++t) {
      pollers.emplace_back([this, t, inflight] { Poll(t, inflight); });
    }
    for (std::thread& p : pollers) p.join();
  }
  int failures() const { return failures_.load(); }
  // Every call carries `authorization: Bearer token` (set before Run).
  void SetToken(const std::string& token) {
    authorization_ = "Bearer " + token;
  }

 private:
  struct Call {
    int n;      // picks the channel
    int tasks;  // in this call
    grpc::ClientContext ctx;
    crucible::v1::CreateTaskRequest req;
    crucible::v1::CreateTaskResponse resp;
    crucible::v1::BatchCreateTasksRequest batch_req;
    crucible::v1::BatchCreateTasksResponse batch_resp;
    grpc::Status status;
    std::unique_ptr<
        grpc::ClientAsyncResponseReader<crucible::v1::CreateTaskResponse>>
        reader;
    std::unique_ptr<
        grpc::ClientAsyncResponseReader<crucible::v1::BatchCreateTasksResponse>>
        batch_reader;
    // Tasks a batch answered with an error.
    int Refused() const {
      int refused = 0;
      for (const auto& r : batch_resp.results()) refused += !r.has_task();
      return refused;
    }
  };

  static void SetSpec(crucible::v1::TaskSpec& spec) {
    spec.set_image("localhost/crucible/busybox:latest");
    spec.add_command("true");
  }

  // Starts call `n` on `cq` unless all tasks were asked for; says if it did.
  bool Issue(grpc::CompletionQueue& cq, int n) {
    // Counts only tasks asked for: a failed one gives its slot back, and an
    // increment past `total` would keep it from being made again.
    int made = issued_.load();
    int tasks = 0;
    do {
      if (made >= total_) return false;
      tasks = std::min(batch_, total_ - made);
    } while (!issued_.compare_exchange_weak(made, made + tasks));
    auto* call = new Call;
    call->n = n;
    call->tasks = tasks;
    call->ctx.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(60));
    if (!authorization_.empty()) {
      call->ctx.AddMetadata("authorization", authorization_);
    }
    auto& stub = *stubs_[n % stubs_.size()];
    if (batch_ > 1) {
      for (int i = 0; i < tasks; ++i) {
        SetSpec(*call->batch_req.add_requests()->mutable_spec());
      }
      call->batch_reader =
          stub.AsyncBatchCreateTasks(&call->ctx, call->batch_req, &cq);
      call->batch_reader->Finish(&call->batch_resp, &call->status, call);
    } else {
      SetSpec(*call->req.mutable_spec());
      call->reader = stub.AsyncCreateTask(&call->ctx, call->req, &cq);
      call->reader->Finish(&call->resp, &call->status, call);
    }
    return true;
  }

  // Thread `t` keeps its share of the calls in flight on its own queue.
  void Poll(int t, int inflight) {
    grpc::CompletionQueue cq;
    int outstanding = 0;
    for (int n = t; n < inflight; n += threads_) outstanding += Issue(cq, n);
    void* tag = nullptr;
    bool ok = false;
    while (outstanding > 0 && cq.Next(&tag, &ok)) {
      std::unique_ptr<Call> call(static_cast<Call*>(tag));
      --outstanding;
      const int refused =
          call->status.ok() ? (batch_ > 1 ? call->Refused() : 0) : call->tasks;
      if (refused > 0) {
        if (failures_.fetch_add(refused) < 5) {
          std::fprintf(stderr, "%s: %s\n",
                       batch_ > 1 ? "BatchCreateTasks" : "CreateTask",
                       call->status.ok()
                           ? "a task refused"
                           : call->status.error_message().c_str());
        }
        issued_.fetch_sub(refused);  // make those again
      }
      outstanding += Issue(cq, call->n);
    }
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
  }

  const int total_;
  const int threads_;
  const int batch_;
  std::string authorization_;
  std::vector<std::unique_ptr<crucible::v1::TaskService::Stub>> stubs_;
  std::atomic<int> issued_{0};  // calls made and not failed
  std::atomic<int> failures_{0};
};

}  // namespace bench

#endif  // CRUCIBLE_BENCH_CREATE_LOAD_H_
