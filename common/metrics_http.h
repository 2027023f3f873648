#ifndef CRUCIBLE_COMMON_METRICS_HTTP_H_
#define CRUCIBLE_COMMON_METRICS_HTTP_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/http_listen.h"
#include "common/metrics.h"

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
  int port() const { return listener_->port(); }

 private:
  explicit MetricsServer(const MetricsRegistry& registry)
      : registry_(registry) {}

  const MetricsRegistry& registry_;
  std::unique_ptr<HttpListener> listener_;  // stops serving when destroyed
};

}  // namespace common

#endif  // CRUCIBLE_COMMON_METRICS_HTTP_H_
