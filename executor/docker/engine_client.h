#ifndef CRUCIBLE_EXECUTOR_DOCKER_ENGINE_CLIENT_H_
#define CRUCIBLE_EXECUTOR_DOCKER_ENGINE_CLIENT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace docker {

struct EngineClientOptions {
  // DOCKER_HOST-style address: "unix:///path/to.sock" or "tcp://host:port"
  // (e.g. a docker-socket-proxy).
  std::string docker_host = "tcp://127.0.0.1:2375";
  // Highest Engine API version used; lower if the engine is older.
  std::string max_api_version = "1.41";
  // Connect timeout of every call.
  absl::Duration connect_timeout = absl::Seconds(5);
  // Total timeout of every non-streaming call.
  absl::Duration request_timeout = absl::Seconds(60);
  // If set, called with the error whenever a call finds the engine
  // unreachable: a transport failure (refused, reset, timed out) or a
  // proxy's 502/503/504; never for a 403 refusal or an engine's own error.
  // Runs on the calling thread: must be cheap, thread-safe, non-blocking.
  std::function<void(const absl::Status&)> on_unreachable;
};

// What InspectContainer reports about a container's state.
struct ContainerState {
  std::string status;  // "created", "running", "exited", ...
  bool running = false;
  bool oom_killed = false;
  int64_t exit_code = 0;
  std::string error;  // the engine's State.Error, if any
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

// A client of the Docker Engine API (as served by Docker, Podman or a
// docker-socket-proxy) over HTTP/1.1 with libcurl. Every call uses its own
// connection, so calls may run concurrently from several threads, and
// streaming calls (Wait, Logs) do not block the others. Thread-safe.
//
// Errors: engine or proxy unreachable, timeouts, a proxy's 403 or 5xx
// gateway answers -> UNAVAILABLE with a message naming the address;
// unknown container -> NOT_FOUND; missing image (InspectImage) ->
// FAILED_PRECONDITION naming it; an aborted streaming call -> CANCELLED;
// other engine errors -> INTERNAL with the engine's message. No exceptions
// escape.
//
// HTTP calls made (V = negotiated API version, e.g. v1.41):
//   GET    /_ping                                 Ping
//   GET    /version                               NegotiateApiVersion
//   GET    /V/images/{name}/json                  InspectImage
//   POST   /V/images/create?fromImage={name}      PullImage (only if policy allows)
//   POST   /V/containers/create?name={name}       CreateContainer
//   POST   /V/containers/{name}/wait?condition=...  Wait
//   POST   /V/containers/{name}/start             Start
//   POST   /V/containers/{name}/attach?stream=1&stdin=1  WriteStdin (Upgrade: tcp)
//   GET    /V/containers/{name}/logs?follow={0,1}&stdout=1&stderr=1   Logs
//   POST   /V/containers/{name}/kill?signal=KILL  Kill
//   GET    /V/containers/{name}/json              InspectContainer
//   DELETE /V/containers/{name}?force=1&v=1       Remove
//   GET    /V/containers/json?all=1&filters={"label":["K=V"]} (URL-encoded)
//                                                 ListContainers
//
// The per-container calls take a container name or id; Crucible always
// passes the name it created the container with (policy::ContainerName),
// as the docker-proxy allows them only on crucible-* names.
class EngineClient {
 public:
  // INVALID_ARGUMENT if `options.docker_host` is not unix:// or tcp://.
  static absl::StatusOr<std::unique_ptr<EngineClient>> Create(
      EngineClientOptions options);

  const std::string& docker_host() const { return options_.docker_host; }

  // OK if the engine answers /_ping.
  absl::Status Ping();
  // The API version used: min(engine's ApiVersion, max_api_version). Cached
  // after the first success; every versioned call negotiates first.
  absl::StatusOr<std::string> NegotiateApiVersion();

  // OK if the image is present; FAILED_PRECONDITION naming it if not.
  absl::Status InspectImage(absl::string_view image);
  // Pulls `image` from its registry. FAILED_PRECONDITION naming the image
  // if the engine could not pull it (its progress stream reports an error).
  absl::Status PullImage(absl::string_view image);
  // Creates a container named `name` from a create body; returns its id.
  absl::StatusOr<std::string> CreateContainer(absl::string_view name,
                                              const nlohmann::json& body);
  // Waits for `condition` ("next-exit", "not-running", ...) and returns the
  // exit code. `on_sent` (may be empty) is called once the request has been
  // written. No total timeout; `abort` ends it with CANCELLED.
  absl::StatusOr<int64_t> Wait(absl::string_view id, absl::string_view condition,
                               const AbortFn& abort,
                               const std::function<void()>& on_sent);
  absl::Status Start(absl::string_view id);
  // The container's stdout+stderr from the start (multiplexed format, raw
  // bytes); with `follow`, until it exits. `on_bytes` returning false, or
  // `abort` returning true, ends the call with CANCELLED. No total timeout.
  absl::Status Logs(absl::string_view id, bool follow,
                    const std::function<bool(absl::string_view)>& on_bytes,
                    const AbortFn& abort);
  // Attaches to the container's stdin (hijacked connection), writes `data`,
  // then half-closes so the process sees EOF (needs OpenStdin and StdinOnce
  // in the create body). Blocks while the process does not read; `abort`
  // ends it with CANCELLED. No total timeout.
  absl::Status WriteStdin(absl::string_view id, absl::string_view data,
                          const AbortFn& abort);
  // Sends SIGKILL. OK if the container is not running (anymore).
  absl::Status Kill(absl::string_view id);
  absl::StatusOr<ContainerState> InspectContainer(absl::string_view id);
  // Force-removes the container and its anonymous volumes. OK if it is
  // already gone.
  absl::Status Remove(absl::string_view id);
  // All containers (running or not) carrying label `key=value`.
  absl::StatusOr<std::vector<ContainerSummary>> ListContainers(
      absl::string_view label_key, absl::string_view label_value);

 private:
  struct Request;
  struct Response {
    long code = 0;  // NOLINT(runtime/int): curl's type
    std::string body;
  };

  explicit EngineClient(EngineClientOptions options, std::string unix_socket,
                        std::string base_url);
  absl::StatusOr<Response> Do(const Request& request);
  absl::StatusOr<std::string> VersionedPath(absl::string_view rest);
  // May throw nlohmann::json::exception; the caller catches.
  static void AppendSummaries(const nlohmann::json& j,
                              std::vector<ContainerSummary>& out);
  absl::Status HttpError(absl::string_view method, absl::string_view path,
                         const Response& response) const;
  // Tells options_.on_unreachable about `status`, then returns it.
  absl::Status Unreachable(absl::Status status) const;

  const EngineClientOptions options_;
  const std::string unix_socket_;  // empty for tcp://
  const std::string base_url_;     // "http://host:port" (or "http://localhost")
  absl::Mutex mu_;
  std::optional<std::string> api_version_ ABSL_GUARDED_BY(mu_);
};

}  // namespace docker

#endif  // CRUCIBLE_EXECUTOR_DOCKER_ENGINE_CLIENT_H_
