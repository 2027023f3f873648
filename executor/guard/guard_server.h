#ifndef CRUCIBLE_EXECUTOR_GUARD_GUARD_SERVER_H_
#define CRUCIBLE_EXECUTOR_GUARD_GUARD_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/http_listen.h"
#include "executor/guard/create_guard.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace guard {

struct GuardServerOptions {
  // Where to listen: a loopback address, since only the docker-proxy
  // (HAProxy, same pod or host) sends it the creates.
  std::string host = "127.0.0.1";
  // 0 picks a free port (see port()).
  int port = 2376;
  // The engine's Unix socket, e.g. /var/run/docker.sock.
  std::string engine_socket;
  // Timeout of the forwarded create (connect and answer).
  absl::Duration engine_timeout = absl::Seconds(60);
};

// The engine guard's HTTP side: serves exactly POST /[vX.Y/]containers/create
// and POST /[vX.Y/]volumes/create (the scratch volume, CheckVolume)
// (everything else 403), passes method, query and body to CreateGuard, and
// forwards only the admitted, re-encoded body to the engine socket, relaying
// the engine's status and body. Refusals answer 403 with a JSON "message"
// (the engine's error shape) and are logged once. Request header blocks
// over 8 KiB and bodies over kMaxCreateBodyBytes (counted as read) are
// refused by the HTTP layer; so is a Transfer-Encoding.
// Thread-safe: requests run on the HTTP library's worker threads.
class GuardServer {
 public:
  // Binds the port; INVALID_ARGUMENT without an engine socket, UNAVAILABLE
  // if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<GuardServer>> Start(
      GuardServerOptions options, CreateGuard guard);
  int port() const { return listener_->port(); }

 private:
  GuardServer(GuardServerOptions options, CreateGuard guard);
  // Decides one POST: admitted creates go to the engine, the rest 403.
  void Handle(const httplib::Request& req, httplib::Response& res) const;
  // Decides one PUT (`upload`) or GET of /containers/NAME/archive: given
  // the engine's inspect of NAME, an admitted call (archive_guard.h) goes to
  // the engine, the download streamed back; the rest 403.
  void HandleArchive(const httplib::Request& req, httplib::Response& res,
                     bool upload) const;

  const GuardServerOptions options_;
  const CreateGuard guard_;
  // Last: destroyed first, so requests stop before the fields above go.
  std::unique_ptr<common::HttpListener> listener_;
};

}  // namespace guard

#endif  // CRUCIBLE_EXECUTOR_GUARD_GUARD_SERVER_H_
