#ifndef CRUCIBLE_COMMON_METRICS_HTTP_H_
#define CRUCIBLE_COMMON_METRICS_HTTP_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/metrics.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace common {

// The Content-Type of the text exposition format.
inline constexpr char kMetricsContentType[] =
    "text/plain; version=0.0.4; charset=utf-8";

// Serves GET /metrics (the registry in the text format 0.0.4) over plain
// HTTP on a port of its own, apart from gRPC, for Prometheus to scrape;
// every other path answers 404, every other method 405. Thread-safe:
// requests run on the HTTP library's threads (two).
class MetricsServer {
 public:
  // Binds `address` (host:port, [v6]:port; port 0 picks a free one, see
  // port()) and serves `registry` (not owned; it must outlive the server).
  // INVALID_ARGUMENT for an address without a port, UNAVAILABLE if it
  // cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& address,
      const MetricsRegistry& registry = DefaultMetricsRegistry());
  // Start, or nullptr (nothing served) for an empty `address`: the
  // --metrics_listen of every process. Logs the URL it serves; if
  // `port_file` is set, writes the bound port there (common/port_file.h).
  static absl::StatusOr<std::unique_ptr<MetricsServer>> StartIfSet(
      const std::string& address, const std::string& port_file = "",
      const MetricsRegistry& registry = DefaultMetricsRegistry());
  // Stops serving and joins the serving thread.
  ~MetricsServer();

  int port() const { return port_; }

 private:
  explicit MetricsServer(const MetricsRegistry& registry);
  void Serve();

  const MetricsRegistry& registry_;
  std::unique_ptr<httplib::Server> http_;
  int port_ = 0;
  std::atomic<bool> served_{false};  // Serve has returned
  std::thread thread_;
};

}  // namespace common

#endif  // CRUCIBLE_COMMON_METRICS_HTTP_H_
