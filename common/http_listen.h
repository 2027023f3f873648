#ifndef CRUCIBLE_COMMON_HTTP_LISTEN_H_
#define CRUCIBLE_COMMON_HTTP_LISTEN_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace common {

// Serves an httplib::Server whose routes and options are set, on a thread
// of its own, until destroyed: the one place for binding and stopping the
// processes' HTTP ports (the engine guard, /metrics).
//
// The port is bound exclusively. cpp-httplib's default socket options add
// SO_REUSEPORT, with which a second process binds a port already in use
// and the kernel splits the connections between the two (a second engine
// guard would start silently); a port in use fails the start instead.
// SO_REUSEADDR stays, so a restart binds at once over connections in
// TIME_WAIT.
class HttpListener {
 public:
  // Binds host:port (port 0: any free port, see port()) and serves `http`.
  // UNAVAILABLE "cannot listen on host:port" if the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpListener>> Start(
      std::unique_ptr<httplib::Server> http, const std::string& host, int port);
  // Stops serving and joins the serving thread.
  ~HttpListener();

  int port() const { return port_; }

 private:
  HttpListener(std::unique_ptr<httplib::Server> http, int port);

  const std::unique_ptr<httplib::Server> http_;
  const int port_;
  std::atomic<bool> served_{false};  // the serving thread has returned
  std::thread thread_;
};

}  // namespace common

#endif  // CRUCIBLE_COMMON_HTTP_LISTEN_H_
