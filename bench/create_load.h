#ifndef CRUCIBLE_BENCH_CREATE_LOAD_H_
#define CRUCIBLE_BENCH_CREATE_LOAD_H_

// The CreateTask callers of the benchmarks: crucible-queue-bench and
// grpc_floor load a server with the very same client.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/synchronization/notification.h"
#include "crucible/v1/task_service.grpc.pb.h"

namespace bench {

// A channel with a connection of its own (`i` tells them apart).
inline std::shared_ptr<grpc::Channel> Channel(const std::string& target, int i) {
  grpc::ChannelArguments args;
  args.SetInt("crucible.bench.channel", i);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // A load generator's settings: no transparent retries (a failed call is
  // made again by the caller below) and no channelz accounting, so less of
  // the two cores goes to the callers. They change nothing in the server.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  args.SetInt(GRPC_ARG_ENABLE_CHANNELZ, 0);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

// Keeps `inflight` CreateTask calls (callback API) going over `channels`
// until `total` were answered OK; a failed call is made again. Run() from
// one thread; the calls complete on gRPC's threads.
class CreateLoad {
 public:
  CreateLoad(const std::vector<std::shared_ptr<grpc::Channel>>& channels, int total)
      : total_(total) {
    for (const auto& c : channels) stubs_.push_back(crucible::v1::TaskService::NewStub(c));
  }
  void Run(int inflight) {
    for (int i = 0; i < inflight; ++i) Issue(i);
    done_.WaitForNotification();
  }
  int failures() const { return failures_.load(); }

 private:
  struct Call {
    grpc::ClientContext ctx;
    crucible::v1::CreateTaskRequest req;
    crucible::v1::CreateTaskResponse resp;
  };
  void Issue(int n) {
    if (issued_.fetch_add(1) >= total_) return;
    auto* call = new Call;
    call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    call->req.mutable_spec()->set_image("localhost/crucible/busybox:latest");
    call->req.mutable_spec()->add_command("true");
    stubs_[n % stubs_.size()]->async()->CreateTask(
        &call->ctx, &call->req, &call->resp, [this, call, n](grpc::Status s) {
          delete call;
          if (!s.ok()) {
            if (failures_.fetch_add(1) < 5) {
              std::fprintf(stderr, "CreateTask: %s\n", s.error_message().c_str());
            }
            issued_.fetch_sub(1);  // try that one again
          } else if (answered_.fetch_add(1) + 1 == total_) {
            done_.Notify();
            return;
          }
          Issue(n);
        });
  }

  const int total_;
  std::vector<std::unique_ptr<crucible::v1::TaskService::Stub>> stubs_;
  std::atomic<int> issued_{0};
  std::atomic<int> answered_{0};
  std::atomic<int> failures_{0};
  absl::Notification done_;
};

}  // namespace bench

#endif  // CRUCIBLE_BENCH_CREATE_LOAD_H_
