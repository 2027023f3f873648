#include "common/http_listen.h"

#include <httplib.h>
#include <sys/socket.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "glog/logging.h"

namespace common {

absl::StatusOr<std::unique_ptr<HttpListener>> HttpListener::Start(
    std::unique_ptr<httplib::Server> http, const std::string& host, int port) {
  http->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  int bound = 0;
  if (port == 0) {
    bound = http->bind_to_any_port(host);
  } else if (http->bind_to_port(host, port)) {
    bound = port;
  }
  if (bound <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", host, ":", port));
  }
  return std::unique_ptr<HttpListener>(
      new HttpListener(std::move(http), bound));
}

HttpListener::HttpListener(std::unique_ptr<httplib::Server> http, int port)
    : http_(std::move(http)), port_(port) {
  thread_ = std::thread([this] {
    if (!http_->listen_after_bind()) {
      LOG(ERROR) << "HTTP port " << port_ << ": the listener failed";
    }
    served_ = true;
  });
}

HttpListener::~HttpListener() {
  // httplib's stop() does nothing until listen_after_bind, on thread_, has
  // marked the server running; a stop that comes sooner (a stop signal
  // right after the start) would leave it listening for good, so it waits
  // for that first (microseconds).
  while (!served_ && !http_->is_running()) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  http_->stop();
  thread_.join();
}

}  // namespace common
