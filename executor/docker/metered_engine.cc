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
  const absl::Time begin = clock_.Now();
  absl::Status s = engine_.Ping();
  Record(kPing, begin, s);
  return s;
}

absl::Status MeteredEngine::InspectImage(absl::string_view image) {
  const absl::Time begin = clock_.Now();
  absl::Status s = engine_.InspectImage(image);
  Record(kInspectImage, begin, s);
  return s;
}

absl::Status MeteredEngine::PullImage(absl::string_view image) {
  const absl::Time begin = clock_.Now();
  absl::Status s = engine_.PullImage(image);
  Record(kPullImage, begin, s);
  return s;
}

absl::StatusOr<std::string> MeteredEngine::CreateContainer(
    absl::string_view name, const nlohmann::json& body) {
  const absl::Time begin = clock_.Now();
  absl::StatusOr<std::string> r = engine_.CreateContainer(name, body);
  Record(kCreate, begin, r.status());
  return r;
}

absl::StatusOr<int64_t> MeteredEngine::Wait(
    absl::string_view id, absl::string_view condition, const AbortFn& abort,
    const std::function<void()>& on_sent) {
  const absl::Time begin = clock_.Now();
  absl::StatusOr<int64_t> r = engine_.Wait(id, condition, abort, on_sent);
  Record(kWait, begin, r.status());
  return r;
}

absl::Status MeteredEngine::Start(absl::string_view id) {
  const absl::Time begin = clock_.Now();
  absl::Status s = engine_.Start(id);
  Record(kStart, begin, s);
  return s;
}

absl::Status MeteredEngine::Logs(
    absl::string_view id, bool follow,
    const std::function<bool(absl::string_view)>& on_bytes,
    const AbortFn& abort) {
  const absl::Time begin = clock_.Now();
  absl::Status s = engine_.Logs(id, follow, on_bytes, abort);
  Record(kLogs, begin, s);
  return s;
}

absl::Status MeteredEngine::WriteStdin(absl::string_view id,
                                       absl::string_view data,
                                       const AbortFn& abort) {
  const absl::Time begin = clock_.Now();
  absl::Status s = engine_.WriteStdin(id, data, abort);
  Record(kWriteStdin, begin, s);
  return s;
}

absl::Status MeteredEngine::Kill(absl::string_view id) {
  const absl::Time begin = clock_.Now();
  absl::Status s = engine_.Kill(id);
  Record(kKill, begin, s);
  return s;
}

absl::StatusOr<ContainerState> MeteredEngine::InspectContainer(
    absl::string_view id) {
  const absl::Time begin = clock_.Now();
  absl::StatusOr<ContainerState> r = engine_.InspectContainer(id);
  Record(kInspect, begin, r.status());
  return r;
}

absl::Status MeteredEngine::Remove(absl::string_view id) {
  const absl::Time begin = clock_.Now();
  absl::Status s = engine_.Remove(id);
  Record(kRemove, begin, s);
  return s;
}

absl::StatusOr<std::vector<ContainerSummary>> MeteredEngine::ListContainers(
    absl::string_view label_key, absl::string_view label_value) {
  const absl::Time begin = clock_.Now();
  absl::StatusOr<std::vector<ContainerSummary>> r =
      engine_.ListContainers(label_key, label_value);
  Record(kList, begin, r.status());
  return r;
}

}  // namespace docker
