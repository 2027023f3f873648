#include "common/metrics_http.h"

#include <glog/logging.h>
#include <httplib.h>

#include <chrono>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/http_listen.h"
#include "common/port_file.h"
#include "common/status_macros.h"

namespace common {

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& address, const MetricsRegistry& registry) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics address ", address, ": want host:port (port 0: any)"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "0.0.0.0";
  std::unique_ptr<MetricsServer> server(new MetricsServer(registry));
  auto owned = std::make_unique<httplib::Server>();
  httplib::Server& http = *owned;
  // A scrape every few seconds needs no more; the default pool is 8+.
  http.new_task_queue = [] { return new httplib::ThreadPool(2); };
  http.set_read_timeout(std::chrono::seconds(10));
  http.set_payload_max_length(4096);
  http.Get("/metrics",
           [s = server.get()](const httplib::Request&, httplib::Response& res) {
             res.set_content(s->registry_.Expose(), kMetricsContentType);
           });
  // Another path: 404; another method on /metrics: 405.
  auto not_allowed = [](const httplib::Request& req, httplib::Response& res) {
    res.status = req.path == "/metrics" ? 405 : 404;
    res.set_content("", "text/plain");
  };
  http.Post(".*", not_allowed);
  http.Put(".*", not_allowed);
  http.Patch(".*", not_allowed);
  http.Delete(".*", not_allowed);
  http.Options(".*", not_allowed);
  absl::StatusOr<std::unique_ptr<HttpListener>> listener =
      HttpListener::Start(std::move(owned), host, port);
  if (!listener.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address, " for metrics"));
  }
  server->listener_ = *std::move(listener);
  return server;
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::StartIfSet(
    const std::string& address, const std::string& port_file,
    const MetricsRegistry& registry) {
  if (address.empty()) return nullptr;
  ASSIGN_OR_RETURN(std::unique_ptr<MetricsServer> server,
                   Start(address, registry));
  if (!port_file.empty()) {
    RETURN_IF_ERROR(WritePortFile(port_file, server->port()));
  }
  LOG(INFO) << "metrics on http://" << address.substr(0, address.rfind(':'))
            << ":" << server->port() << "/metrics";
  return server;
}

}  // namespace common
