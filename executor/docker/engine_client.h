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
#include "executor/docker/engine.h"
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

// The real Engine: a client of the Docker Engine API (as served by Docker,
// Podman or a docker-socket-proxy) over HTTP/1.1 with libcurl. Every call
// uses its own connection, so calls may run concurrently from several
// threads, and streaming calls (Wait, Logs) do not block the others.
// Thread-safe.
//
// Errors: engine or proxy unreachable, timeouts, a proxy's 5xx gateway
// answers -> UNAVAILABLE with a message naming the address; a proxy's 403
// (the path is not allowed) -> PERMISSION_DENIED;
// unknown container -> NOT_FOUND; missing image (InspectImage) ->
// FAILED_PRECONDITION naming it; an aborted streaming call -> CANCELLED;
// other engine errors -> INTERNAL with the engine's message. No exceptions
// escape.
//
// HTTP calls made (V = negotiated API version, e.g. v1.41):
//   GET    /_ping                                 Ping
//   GET    /version                               NegotiateApiVersion
//   GET    /V/images/{name}/json                  InspectImage
//   POST   /V/images/create?fromImage={name}      PullImage (only if policy
//   allows) POST   /V/containers/create?name={name}       CreateContainer POST
//   /V/containers/{name}/wait?condition=...  Wait POST
//   /V/containers/{name}/start             Start POST
//   /V/containers/{name}/attach?stream=1&stdin=1  WriteStdin (Upgrade: tcp) GET
//   /V/containers/{name}/logs?follow={0,1}&stdout=1&stderr=1   Logs POST
//   /V/containers/{name}/kill?signal=KILL  Kill GET /V/containers/{name}/json
//   InspectContainer DELETE /V/containers/{name}?force=1&v=1       Remove GET
//   /V/containers/json?all=1&filters={"label":["K=V"]} (URL-encoded)
//                                                 ListContainers
//
// The per-container calls take a container name or id; Crucible always
// passes the name it created the container with (policy::ContainerName),
// as the docker-proxy allows them only on crucible-* names.
class EngineClient final : public Engine {
 public:
  // INVALID_ARGUMENT if `options.docker_host` is not unix:// or tcp://.
  static absl::StatusOr<std::unique_ptr<EngineClient>> Create(
      EngineClientOptions options);

  const std::string& docker_host() const { return options_.docker_host; }

  // Engine (see engine.h); Ping is GET /_ping.
  absl::Status Ping() override;
  absl::Status InspectImage(absl::string_view image) override;
  // Fails with FAILED_PRECONDITION if the pull's progress stream reports an
  // error.
  absl::Status PullImage(absl::string_view image) override;
  absl::StatusOr<std::string> CreateContainer(
      absl::string_view name, const nlohmann::json& body) override;
  // `on_sent` is called once the request has been written.
  absl::StatusOr<int64_t> Wait(absl::string_view id,
                               absl::string_view condition,
                               const AbortFn& abort,
                               const std::function<void()>& on_sent) override;
  absl::Status Start(absl::string_view id) override;
  absl::Status Logs(absl::string_view id, bool follow,
                    const std::function<bool(absl::string_view)>& on_bytes,
                    const AbortFn& abort) override;
  // Attaches to the container's stdin (hijacked connection), writes `data`,
  // then half-closes (needs OpenStdin and StdinOnce in the create body).
  absl::Status WriteStdin(absl::string_view id, absl::string_view data,
                          const AbortFn& abort) override;
  absl::Status Kill(absl::string_view id) override;
  absl::StatusOr<ContainerState> InspectContainer(
      absl::string_view id) override;
  absl::Status Remove(absl::string_view id) override;
  absl::StatusOr<std::vector<ContainerSummary>> ListContainers(
      absl::string_view label_key, absl::string_view label_value) override;
  // POST /volumes/create.
  absl::Status CreateVolume(absl::string_view name,
                            const nlohmann::json& body) override;
  // DELETE /volumes/{name}.
  absl::Status RemoveVolume(absl::string_view name) override;
  // POST /v4.0.0/libpod/containers/{id}/init (Podman's API).
  absl::Status InitContainer(absl::string_view id) override;
  // PUT /containers/{id}/archive?path={dir}; `dir` goes into the query as
  // is (a clean absolute path, policy::CheckScratchDir).
  absl::Status PutArchive(absl::string_view id, absl::string_view dir,
                          absl::string_view archive) override;
  // GET /containers/{id}/archive?path={path}.
  absl::Status StreamArchive(
      absl::string_view id, absl::string_view path,
      const std::function<bool(absl::string_view)>& on_bytes) override;

  // The API version used: min(engine's ApiVersion, max_api_version). Cached
  // after the first success; every versioned call negotiates first.
  absl::StatusOr<std::string> NegotiateApiVersion();

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
