#include "common/grpc_server.h"

#include <grpc/grpc.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/support/server_interceptor.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "common/port_file.h"
#include "crucible/descriptor_set.h"
#include "glog/logging.h"
#include "grpc/health/v1/health.pb.h"

namespace common {
namespace {

// Answers every call UNIMPLEMENTED (CallbackGenericService's default). One
// per process, never destroyed: servers may use it until they are gone.
grpc::CallbackGenericService* UnimplementedService() {
  static auto* service = new grpc::CallbackGenericService();
  return service;
}

// Counts the calls in progress: gRPC makes one interceptor when a call
// starts and destroys it once the call has ended.
class CallCounter final : public grpc::experimental::Interceptor {
 public:
  explicit CallCounter(std::shared_ptr<std::atomic<int>> live)
      : live_(std::move(live)) {
    live_->fetch_add(1, std::memory_order_relaxed);
  }
  ~CallCounter() override { live_->fetch_sub(1, std::memory_order_release); }
  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    methods->Proceed();
  }

 private:
  const std::shared_ptr<std::atomic<int>> live_;
};

class CallCounterFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CallCounterFactory(std::shared_ptr<std::atomic<int>> live)
      : live_(std::move(live)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* /*info*/) override {
    return new CallCounter(live_);
  }

 private:
  const std::shared_ptr<std::atomic<int>> live_;
};

// Why a health service is NOT_SERVING ("" if no one said).
using ReasonLookup = std::function<std::string(const std::string& service)>;

constexpr char kHealthCheckMethod[] = "/grpc.health.v1.Health/Check";
// Longer reasons are cut: a header's size is limited.
constexpr size_t kMaxReasonBytes = 1024;

// The message's bytes; the buffer keeps them.
std::string Bytes(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (!buffer.Dump(&slices).ok()) return bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return bytes;
}

// A metadata value: printable ASCII only (others become '?'), and not too
// long.
std::string HeaderValue(absl::string_view reason) {
  std::string value(reason.substr(0, kMaxReasonBytes));
  for (char& c : value) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return value;
}

// Adds kHealthReasonKey to the trailing metadata of a Health/Check answer
// that says NOT_SERVING. gRPC's default health service reads and writes
// ByteBuffers (its Check handler is a CallbackUnaryHandler<ByteBuffer,
// ByteBuffer>), so the received message is one, and the answer to send is
// serialized already.
class HealthReasonAdder final : public grpc::experimental::Interceptor {
 public:
  explicit HealthReasonAdder(const ReasonLookup& lookup) : lookup_(lookup) {}
  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::POST_RECV_MESSAGE)) {
      const auto* request =
          static_cast<const grpc::ByteBuffer*>(methods->GetRecvMessage());
      grpc::health::v1::HealthCheckRequest parsed;
      if (request != nullptr && parsed.ParseFromString(Bytes(*request))) {
        service_ = parsed.service();
      }
    }
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_MESSAGE)) {
      const grpc::ByteBuffer* answer = methods->GetSerializedSendMessage();
      grpc::health::v1::HealthCheckResponse parsed;
      not_serving_ =
          answer != nullptr && parsed.ParseFromString(Bytes(*answer)) &&
          parsed.status() == grpc::health::v1::HealthCheckResponse::NOT_SERVING;
    }
    if (not_serving_ && methods->QueryInterceptionHookPoint(
                            InterceptionHookPoints::PRE_SEND_STATUS)) {
      const std::string reason = lookup_(service_);
      if (!reason.empty()) {
        methods->GetSendTrailingMetadata()->emplace(kHealthReasonKey,
                                                    HeaderValue(reason));
      }
    }
    methods->Proceed();
  }

 private:
  const ReasonLookup& lookup_;  // the factory's, which outlives the call
  std::string service_;
  bool not_serving_ = false;
};

class HealthReasonAdderFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit HealthReasonAdderFactory(ReasonLookup lookup)
      : lookup_(std::move(lookup)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    if (absl::string_view(info->method()) != kHealthCheckMethod) {
      return nullptr;
    }
    return new HealthReasonAdder(lookup_);
  }

 private:
  const ReasonLookup lookup_;
};

// The interceptors of a server: calls counted into `live` (if not null),
// reasons added to Health/Check answers.
std::vector<
    std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
Interceptors(std::shared_ptr<std::atomic<int>> live, ReasonLookup lookup) {
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  if (live != nullptr) {
    interceptors.push_back(
        std::make_unique<CallCounterFactory>(std::move(live)));
  }
  interceptors.push_back(
      std::make_unique<HealthReasonAdderFactory>(std::move(lookup)));
  return interceptors;
}

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(
    const GrpcServerOptions& options,
    const std::vector<grpc::Service*>& services) {
  grpc::EnableDefaultHealthCheckService(true);
  // Referenced so the linker keeps the health schema for reflection.
  grpc::health::v1::HealthCheckResponse::descriptor();
  absl::StatusOr<std::unique_ptr<DescriptorIndex>> index =
      DescriptorIndex::Create(crucible_proto::DocumentedDescriptorSet());
  if (!index.ok()) return index.status();
  auto reflection = std::make_unique<ServerReflection>(*std::move(index));
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.listen_address,
                           options.credentials != nullptr
                               ? options.credentials
                               : grpc::InsecureServerCredentials(),
                           &port);
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  // Nothing serves channelz here, so its per-call accounting is pure cost.
  builder.AddChannelArgument(GRPC_ARG_ENABLE_CHANNELZ, 0);
  // gRPC sets SO_REUSEPORT by default, which lets a second process bind a
  // port in use and share its connections: two servers on one database, or
  // two executors with the same <hostname>-<port> id removing each other's
  // containers. A port in use must fail the start instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Clients (the worker's channels) send keepalive pings to find a dead
  // peer within seconds, also on idle connections. gRPC's defaults admit
  // pings at most every 5 min, and only with calls in flight, and answer
  // more with GOAWAY ENHANCE_YOUR_CALM, which would cut the worker's
  // streams; admit them down to kMinClientPingInterval instead.
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
      static_cast<int>(absl::ToInt64Milliseconds(kMinClientPingInterval)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  auto live_calls = std::make_shared<std::atomic<int>>(0);
  auto health = std::make_shared<MirroredHealth>();
  const ReasonLookup reason = [health](const std::string& service) {
    return health->Reason(service);
  };
  builder.experimental().SetInterceptorCreators(
      Interceptors(live_calls, reason));
  for (grpc::Service* service : services) builder.RegisterService(service);
  if (options.generic_service != nullptr) {
    builder.RegisterCallbackGenericService(options.generic_service);
  }
  for (grpc::Service* service : reflection->services()) {
    builder.RegisterService(service);
  }
  builder.SetOption(reflection->ServiceListOption());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen_address,
                     " (address in use or not local?)"));
  }
  std::unique_ptr<grpc::Server> health_server;
  int health_port = 0;
  if (!options.health_listen_address.empty()) {
    // Only the default health service (EnableDefaultHealthCheckService
    // above adds one to every server built).
    grpc::ServerBuilder health_builder;
    health_builder.AddListeningPort(options.health_listen_address,
                                    grpc::InsecureServerCredentials(),
                                    &health_port);
    health_builder.AddChannelArgument(GRPC_ARG_ENABLE_CHANNELZ, 0);
    health_builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    // gRPC builds no server without a service of the callback or sync API
    // beside the health one; this answers every other method UNIMPLEMENTED.
    health_builder.RegisterCallbackGenericService(UnimplementedService());
    health_builder.experimental().SetInterceptorCreators(
        Interceptors(nullptr, reason));
    health_server = health_builder.BuildAndStart();
    if (health_server == nullptr || health_port == 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", options.health_listen_address,
                       " (health port; address in use or not local?)"));
    }
  }
  auto result = std::unique_ptr<GrpcServer>(new GrpcServer(
      std::move(reflection), std::move(live_calls), std::move(health),
      std::move(server), port, std::move(health_server), health_port,
      options.health_service_names));
  result->health_->SetServingStatus(kLivenessService, true);
  result->SetServing(options.initially_ready, options.not_ready_reason);
  // Last: whoever waits for the port file finds the health statuses set.
  if (!options.port_file.empty()) {
    if (absl::Status s = WritePortFile(options.port_file, port); !s.ok())
      return s;
  }
  return result;
}

GrpcServer::GrpcServer(std::unique_ptr<ServerReflection> reflection,
                       std::shared_ptr<std::atomic<int>> live_calls,
                       std::shared_ptr<MirroredHealth> health,
                       std::unique_ptr<grpc::Server> server, int port,
                       std::unique_ptr<grpc::Server> health_server,
                       int health_port, std::vector<std::string> names)
    : reflection_(std::move(reflection)),
      live_calls_(std::move(live_calls)),
      health_(std::move(health)),
      server_(std::move(server)),
      port_(port),
      health_server_(std::move(health_server)),
      health_port_(health_port),
      health_names_(std::move(names)) {
  health_->Add(server_->GetHealthCheckService());
  if (health_server_ != nullptr) {
    health_->Add(health_server_->GetHealthCheckService());
  }
}

void GrpcServer::MirroredHealth::Add(grpc::HealthCheckServiceInterface* h) {
  absl::MutexLock lock(&mu_);
  if (h != nullptr) targets_.push_back(h);
}

void GrpcServer::MirroredHealth::Detach() {
  absl::MutexLock lock(&mu_);
  targets_.clear();
}

void GrpcServer::MirroredHealth::SetServingStatus(
    const std::string& service_name, bool serving) {
  Set(service_name, serving, "");
}

void GrpcServer::MirroredHealth::Set(const std::string& service_name,
                                     bool serving, absl::string_view reason) {
  absl::MutexLock lock(&mu_);
  // As gRPC's health services, which ignore changes once shut down.
  if (stopped_) return;
  if (serving || reason.empty()) {
    reasons_.erase(service_name);
  } else {
    reasons_[service_name] = std::string(reason);
  }
  for (grpc::HealthCheckServiceInterface* h : targets_) {
    h->SetServingStatus(service_name, serving);
  }
}

void GrpcServer::MirroredHealth::SetServingStatus(bool serving) {
  absl::MutexLock lock(&mu_);
  if (stopped_) return;
  reasons_.clear();
  for (grpc::HealthCheckServiceInterface* h : targets_) {
    h->SetServingStatus(serving);
  }
}

void GrpcServer::MirroredHealth::Shutdown() { Stop(""); }

void GrpcServer::MirroredHealth::Stop(absl::string_view reason) {
  absl::MutexLock lock(&mu_);
  if (stopped_) return;
  stopped_ = true;
  stop_reason_ = std::string(reason);
  for (grpc::HealthCheckServiceInterface* h : targets_) h->Shutdown();
}

std::string GrpcServer::MirroredHealth::Reason(
    const std::string& service_name) const {
  absl::MutexLock lock(&mu_);
  if (stopped_) return stop_reason_;
  auto it = reasons_.find(service_name);
  return it == reasons_.end() ? std::string() : it->second;
}

GrpcServer::~GrpcServer() { Shutdown(absl::ZeroDuration()); }

void GrpcServer::SetServing(bool serving, absl::string_view reason) {
  if (server_ == nullptr) return;  // shut down
  // Not SetServingStatus(bool): that one sets every service, liveness too.
  health_->Set("", serving, reason);
  for (const std::string& name : health_names_) {
    health_->Set(name, serving, reason);
  }
}

void GrpcServer::SetServiceServing(const std::string& service, bool serving,
                                   absl::string_view reason) {
  if (server_ == nullptr) return;
  health_->Set(service, serving, reason);
}

void GrpcServer::BeginStop(absl::string_view reason) {
  if (server_ == nullptr) return;
  // Every service NOT_SERVING, and later SetServingStatus calls ignored, so
  // a dependency coming back cannot make a stopping process look ready.
  health_->Stop(reason);
}

void GrpcServer::Shutdown(absl::Duration grace) {
  if (server_ == nullptr) return;
  BeginStop();
  absl::Notification shut_down;
  std::thread shutdown([&] {
    server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
    shut_down.Notify();
  });
  // gRPC's shutdown also waits, up to the deadline, for every client to
  // close its connection after the GOAWAY, which a client reads only when
  // it polls that channel: one with no call of its own running and
  // gRPC's backup poll (every 5 s) off or not yet due keeps it open (seen:
  // 3.5 to 10 s after a worker's stream was cancelled, its channel kept).
  // Once no call runs, nothing is left to wait for: the connections left
  // are closed at once, as they would be at the deadline.
  while (!shut_down.WaitForNotificationWithTimeout(absl::Milliseconds(10))) {
    if (live_calls_->load(std::memory_order_acquire) == 0) {
      grpc_server_cancel_all_calls(server_->c_server());
      break;
    }
  }
  shutdown.join();
  server_->Wait();
  // Whoever still holds health() (a timer) now sets nothing.
  health_->Detach();
  server_.reset();
  if (health_server_ != nullptr) {
    health_server_->Shutdown(absl::ToChronoTime(absl::Now()));
    health_server_->Wait();
    health_server_.reset();
  }
}

}  // namespace common
