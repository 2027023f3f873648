#include "common/metrics_flags.h"

#include <string>

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, metrics_listen, "",
          "if set, host:port of a plain HTTP port serving GET /metrics "
          "(Prometheus text format 0.0.4), apart from gRPC; empty: none");
ABSL_FLAG(std::string, metrics_port_file, "",
          "if set, the bound port of --metrics_listen is written here (for "
          "port 0)");

namespace common {

absl::StatusOr<std::unique_ptr<MetricsServer>> StartMetricsFromFlags() {
  return MetricsServer::StartIfSet(absl::GetFlag(FLAGS_metrics_listen),
                                   absl::GetFlag(FLAGS_metrics_port_file));
}

}  // namespace common
