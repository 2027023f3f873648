#ifndef CRUCIBLE_EXECUTOR_DOCKER_METERED_ENGINE_H_
#define CRUCIBLE_EXECUTOR_DOCKER_METERED_ENGINE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "executor/docker/engine.h"

namespace docker {

// An Engine that times every call of the engine it wraps and counts its
// errors, for Prometheus: crucible_executor_engine_call_seconds{call} and
// crucible_executor_engine_call_errors_total{call,code}. `call` is one of
// ping, inspect_image, pull_image, create, wait, start, logs, write_stdin,
// kill, inspect, remove, list; `code` a status code name. wait and logs
// follow the container, so they last as long as it runs. Adds nothing to
// a call but a clock read and a few relaxed atomics. Thread-safe if the
// wrapped engine is.
class MeteredEngine final : public Engine {
 public:
  // `engine` and `clock` (not owned) must outlive this; `registry` too.
  MeteredEngine(
      Engine& engine, const common::Clock& clock,
      common::MetricsRegistry& registry = common::DefaultMetricsRegistry());

  absl::Status Ping() override;
  absl::Status InspectImage(absl::string_view image) override;
  absl::Status PullImage(absl::string_view image) override;
  absl::StatusOr<std::string> CreateContainer(
      absl::string_view name, const nlohmann::json& body) override;
  absl::StatusOr<int64_t> Wait(absl::string_view id,
                               absl::string_view condition,
                               const AbortFn& abort,
                               const std::function<void()>& on_sent) override;
  absl::Status Start(absl::string_view id) override;
  absl::Status Logs(absl::string_view id, bool follow,
                    const std::function<bool(absl::string_view)>& on_bytes,
                    const AbortFn& abort) override;
  absl::Status WriteStdin(absl::string_view id, absl::string_view data,
                          const AbortFn& abort) override;
  absl::Status Kill(absl::string_view id) override;
  absl::StatusOr<ContainerState> InspectContainer(
      absl::string_view id) override;
  absl::Status Remove(absl::string_view id) override;
  absl::StatusOr<std::vector<ContainerSummary>> ListContainers(
      absl::string_view label_key, absl::string_view label_value) override;
  // The scratch area's calls are passed through, not timed yet.
  absl::Status CreateVolume(absl::string_view name,
                            const nlohmann::json& body) override {
    return engine_.CreateVolume(name, body);
  }
  absl::Status RemoveVolume(absl::string_view name) override {
    return engine_.RemoveVolume(name);
  }
  absl::Status InitContainer(absl::string_view id) override {
    return engine_.InitContainer(id);
  }
  absl::Status PutArchive(absl::string_view id, absl::string_view dir,
                          absl::string_view archive) override {
    return engine_.PutArchive(id, dir, archive);
  }
  absl::Status StreamArchive(
      absl::string_view id, absl::string_view path,
      const std::function<bool(absl::string_view)>& on_bytes) override {
    return engine_.StreamArchive(id, path, on_bytes);
  }

 private:
  enum Call {
    kPing,
    kInspectImage,
    kPullImage,
    kCreate,
    kWait,
    kStart,
    kLogs,
    kWriteStdin,
    kKill,
    kInspect,
    kRemove,
    kList,
    kCalls
  };
  // Observes the call's latency since `begin`; counts it if `status` is an
  // error.
  void Record(Call call, absl::Time begin, const absl::Status& status);
  // Runs `engine_call` (a call on engine_), recording it as `call`.
  template <typename F>
  auto Timed(Call call, F engine_call) {
    const absl::Time begin = clock_.Now();
    auto result = engine_call();
    Record(call, begin, StatusOf(result));
    return result;
  }
  static const absl::Status& StatusOf(const absl::Status& s) { return s; }
  template <typename T>
  static const absl::Status& StatusOf(const absl::StatusOr<T>& r) {
    return r.status();
  }

  Engine& engine_;
  const common::Clock& clock_;
  common::MetricFamily<common::Counter>& errors_;
  std::array<common::Histogram*, kCalls> seconds_{};
};

}  // namespace docker

#endif  // CRUCIBLE_EXECUTOR_DOCKER_METERED_ENGINE_H_
