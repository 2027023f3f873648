#include "executor/docker/metered_engine.h"

#include <utility>

namespace docker {
namespace {

// The `call` label of each MeteredEngine::Call, in order.
constexpr const char* kCallNames[] = {
    "ping", "inspect_image", "pull_image", "create",  "wait",   "start",
    "logs", "write_stdin",   "kill",       "inspect", "remove", "list"};

}  // namespace

MeteredEngine::MeteredEngine(Engine& engine, const common::Clock& clock,
                             common::MetricsRegistry& registry)
    : engine_(engine),
      clock_(clock),
      errors_(registry.AddCounter(
          "crucible_executor_engine_call_errors_total",
          "Engine API calls that failed, by call and status code "
          "(UNAVAILABLE: engine or proxy unreachable; PERMISSION_DENIED: "
          "refused by the docker-proxy or the guard; NOT_FOUND, INTERNAL...).",
          {"call", "code"})) {
  static_assert(sizeof kCallNames / sizeof kCallNames[0] == kCalls);
  auto& seconds = registry.AddHistogram(
      "crucible_executor_engine_call_seconds",
      "Latency of Engine API calls, by call; wait and logs last as long as "
      "the container runs.",
      {"call"});
  for (int c = 0; c < kCalls; ++c) {
    seconds_[c] = &seconds.WithLabels({kCallNames[c]});
  }
}

void MeteredEngine::Record(Call call, absl::Time begin,
                           const absl::Status& status) {
  seconds_[call]->ObserveDuration(clock_.Now() - begin);
  if (!status.ok()) {
    // A failure is rare: the family's lookup is fine here.
    errors_
        .WithLabels({kCallNames[call], absl::StatusCodeToString(status.code())})
        .Increment();
  }
}

absl::Status MeteredEngine::Ping() {
  return Timed(kPing, [&] { return engine_.Ping(); });
}

absl::Status MeteredEngine::InspectImage(absl::string_view image) {
  return Timed(kInspectImage, [&] { return engine_.InspectImage(image); });
}

absl::Status MeteredEngine::PullImage(absl::string_view image) {
  return Timed(kPullImage, [&] { return engine_.PullImage(image); });
}

absl::StatusOr<std::string> MeteredEngine::CreateContainer(
    absl::string_view name, const nlohmann::json& body) {
  return Timed(kCreate, [&] { return engine_.CreateContainer(name, body); });
}

absl::StatusOr<int64_t> MeteredEngine::Wait(
    absl::string_view id, absl::string_view condition, const AbortFn& abort,
    const std::function<void()>& on_sent) {
  return Timed(kWait,
               [&] { return engine_.Wait(id, condition, abort, on_sent); });
}

absl::Status MeteredEngine::Start(absl::string_view id) {
  return Timed(kStart, [&] { return engine_.Start(id); });
}

absl::Status MeteredEngine::Logs(
    absl::string_view id, bool follow,
    const std::function<bool(absl::string_view)>& on_bytes,
    const AbortFn& abort) {
  return Timed(kLogs,
               [&] { return engine_.Logs(id, follow, on_bytes, abort); });
}

absl::Status MeteredEngine::WriteStdin(absl::string_view id,
                                       absl::string_view data,
                                       const AbortFn& abort) {
  return Timed(kWriteStdin,
               [&] { return engine_.WriteStdin(id, data, abort); });
}

absl::Status MeteredEngine::Kill(absl::string_view id) {
  return Timed(kKill, [&] { return engine_.Kill(id); });
}

absl::StatusOr<ContainerState> MeteredEngine::InspectContainer(
    absl::string_view id) {
  return Timed(kInspect, [&] { return engine_.InspectContainer(id); });
}

absl::Status MeteredEngine::Remove(absl::string_view id) {
  return Timed(kRemove, [&] { return engine_.Remove(id); });
}

absl::StatusOr<std::vector<ContainerSummary>> MeteredEngine::ListContainers(
    absl::string_view label_key, absl::string_view label_value) {
  return Timed(kList,
               [&] { return engine_.ListContainers(label_key, label_value); });
}

}  // namespace docker
