#ifndef CRUCIBLE_EXECUTOR_DOCKER_ENGINE_H_
#define CRUCIBLE_EXECUTOR_DOCKER_ENGINE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace docker {

// What InspectContainer reports about a container's state.
struct ContainerState {
  std::string status;  // "created", "running", "exited", ...
  bool running = false;
  bool oom_killed = false;
  int64_t exit_code = 0;
  // The engine has recorded the exit (State.FinishedAt is set): exit_code
  // is final and the container's log holds all its output. Podman reports
  // this as "stopped" before its cleanup makes it "exited".
  bool finished = false;
  std::string error;  // the engine's State.Error, if any
  // The host pid of the container's process while it runs (State.Pid), 0
  // otherwise or where the engine does not say.
  int64_t pid = 0;
  // The limits the engine keeps for the container (its HostConfig), 0 where
  // it has none: what it will enforce, which may differ from what the
  // create asked for (an engine that cannot enforce a limit may drop it).
  int64_t memory_bytes = 0;       // HostConfig.Memory
  int64_t memory_swap_bytes = 0;  // HostConfig.MemorySwap
  int64_t pids_limit = 0;         // HostConfig.PidsLimit
  int64_t nano_cpus = 0;          // HostConfig.NanoCpus
};

// One entry of ListContainers.
struct ContainerSummary {
  std::string id;
  // The container's name, without the leading '/' the engine reports (the
  // first of its names); empty if it has none.
  std::string name;
  std::string state;
  std::map<std::string, std::string> labels;
};

// Returns true to abort a streaming call; polled about once per second and
// whenever data arrives. Must be cheap and thread-safe.
using AbortFn = std::function<bool()>;

// The container engine as the runner, the orphan reaper and the engine's
// health checks see it: the one seam between the executor's logic and the
// outside world. EngineClient (HTTP to the Docker Engine API) is the real
// implementation; tests/testing/fake_engine.h is an in-process one with
// scriptable faults. Implementations are thread-safe, and the streaming
// calls (Wait, Logs, WriteStdin) do not block the others.
//
// Errors every implementation follows: engine unreachable -> UNAVAILABLE;
// a call the engine's guard refuses -> PERMISSION_DENIED (a configuration
// error, never retried); unknown container -> NOT_FOUND; missing image
// (InspectImage) -> FAILED_PRECONDITION naming it; an aborted streaming call ->
// CANCELLED; other engine errors -> INTERNAL with the engine's message.
//
// The per-container calls take a container name or id; Crucible always
// passes the name it created the container with (policy::ContainerName).
class Engine {
 public:
  virtual ~Engine() = default;

  // OK if the engine answers.
  virtual absl::Status Ping() = 0;
  // OK if the image is present; FAILED_PRECONDITION naming it if not.
  virtual absl::Status InspectImage(absl::string_view image) = 0;
  // Pulls `image` from its registry. FAILED_PRECONDITION naming the image
  // if the engine could not pull it.
  virtual absl::Status PullImage(absl::string_view image) = 0;
  // Creates a container named `name` from a create body; returns its id.
  virtual absl::StatusOr<std::string> CreateContainer(
      absl::string_view name, const nlohmann::json& body) = 0;
  // Waits for `condition` ("next-exit", "not-running", ...) and returns the
  // exit code. `on_sent` (may be empty) is called once the request has been
  // made. No total timeout; `abort` ends it with CANCELLED.
  virtual absl::StatusOr<int64_t> Wait(
      absl::string_view id, absl::string_view condition, const AbortFn& abort,
      const std::function<void()>& on_sent) = 0;
  virtual absl::Status Start(absl::string_view id) = 0;
  // The container's stdout+stderr from the start (multiplexed format, raw
  // bytes); with `follow`, until it exits. `on_bytes` returning false, or
  // `abort` returning true, ends the call with CANCELLED. No total timeout.
  virtual absl::Status Logs(
      absl::string_view id, bool follow,
      const std::function<bool(absl::string_view)>& on_bytes,
      const AbortFn& abort) = 0;
  // Writes `data` to the container's stdin, then closes it so the process
  // sees EOF. Blocks while the process does not read; `abort` ends it with
  // CANCELLED. No total timeout.
  virtual absl::Status WriteStdin(absl::string_view id, absl::string_view data,
                                  const AbortFn& abort) = 0;
  // Sends SIGKILL. OK if the container is not running (anymore).
  virtual absl::Status Kill(absl::string_view id) = 0;
  virtual absl::StatusOr<ContainerState> InspectContainer(
      absl::string_view id) = 0;
  // Force-removes the container and its anonymous volumes. OK if it is
  // already gone.
  virtual absl::Status Remove(absl::string_view id) = 0;
  // All containers (running or not) carrying label `key=value`.
  virtual absl::StatusOr<std::vector<ContainerSummary>> ListContainers(
      absl::string_view label_key, absl::string_view label_value) = 0;

  // The scratch area of a run with files or artifacts
  // (executor/policy/scratch.h). An engine without it answers
  // UNIMPLEMENTED, and such runs fail (FAILED_PRECONDITION at the runner).
  //
  // Creates the volume `name` from a create body.
  virtual absl::Status CreateVolume(absl::string_view name,
                                    const nlohmann::json& body) {
    return absl::UnimplementedError("this engine has no scratch volumes");
  }
  // Removes the volume. OK if it is already gone.
  virtual absl::Status RemoveVolume(absl::string_view name) {
    return absl::UnimplementedError("this engine has no scratch volumes");
  }
  // Prepares a created container without starting it (Podman's init): its
  // volumes are mounted, so that an archive put lands in them.
  virtual absl::Status InitContainer(absl::string_view id) {
    return absl::UnimplementedError("this engine has no container init");
  }
  // Extracts the tar `archive` into the directory `dir` of the container.
  virtual absl::Status PutArchive(absl::string_view id, absl::string_view dir,
                                  absl::string_view archive) {
    return absl::UnimplementedError("this engine has no archive upload");
  }
  // A tar of `path` in the container (a directory: its tree, under its own
  // name), its bytes handed to `on_bytes` as they come; `on_bytes`
  // returning false stops the download (CANCELLED).
  virtual absl::Status StreamArchive(
      absl::string_view id, absl::string_view path,
      const std::function<bool(absl::string_view)>& on_bytes) {
    return absl::UnimplementedError("this engine has no archive download");
  }
};

}  // namespace docker

#endif  // CRUCIBLE_EXECUTOR_DOCKER_ENGINE_H_
