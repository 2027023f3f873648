// grpc_floor: what one unary CreateTask round trip costs on this machine,
// with nothing behind it. A TaskService whose CreateTask answers at once
// (no validation, store or scheduler) and the queue bench's client
// (bench/create_load.h: the same calls in flight over the same channels)
// in one process.
// Not a test; see bench/README.md. Its figure is the floor under
// crucible-queue-bench, which does this call and more for every task.
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/create_load.h"
#include "crucible/v1/task_service.grpc.pb.h"

ABSL_FLAG(int, calls, 50000, "CreateTask calls to make");
ABSL_FLAG(int, inflight, 256, "calls in flight at once");
ABSL_FLAG(int, channels, 1,
          "client channels (connections), as the queue bench");
ABSL_FLAG(int, caller_threads, 2, "threads making the calls");

namespace {

namespace v1 = crucible::v1;

// Answers every CreateTask at once with a task carrying the spec.
// Stateless, so thread-safe.
class ImmediateTaskService final : public v1::TaskService::CallbackService {
  grpc::ServerUnaryReactor* CreateTask(
      grpc::CallbackServerContext* ctx, const v1::CreateTaskRequest* request,
      v1::CreateTaskResponse* response) override {
    *response->mutable_task()->mutable_spec() = request->spec();
    response->mutable_task()->set_id("0123456789abcdef0123456789abcdef");
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int calls = absl::GetFlag(FLAGS_calls);
  if (!bench::LoadShapeOk(absl::GetFlag(FLAGS_channels),
                          absl::GetFlag(FLAGS_caller_threads))) {
    return 2;
  }
  ImmediateTaskService service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  builder.AddChannelArgument(GRPC_ARG_ENABLE_CHANNELZ,
                             0);  // as common::GrpcServer
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    std::fprintf(stderr, "cannot start the server\n");
    return 1;
  }
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < absl::GetFlag(FLAGS_channels); ++i) {
    channels.push_back(bench::Channel(absl::StrCat("127.0.0.1:", port), i));
  }
  bench::CreateLoad caller(channels, calls,
                           absl::GetFlag(FLAGS_caller_threads));
  const absl::Time start = absl::Now();
  caller.Run(absl::GetFlag(FLAGS_inflight));
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  server->Shutdown();

  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double cpu = usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
                     (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  std::printf(
      "calls=%d inflight=%d channels=%d failures retried=%d\n"
      "%.0f CreateTask calls/s; %.0f us CPU per call (client and server), "
      "%.2f cores busy\n",
      calls, absl::GetFlag(FLAGS_inflight), absl::GetFlag(FLAGS_channels),
      caller.failures(), calls / secs, cpu / calls * 1e6, cpu / secs);
  return 0;
}
