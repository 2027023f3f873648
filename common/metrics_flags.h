#ifndef CRUCIBLE_COMMON_METRICS_FLAGS_H_
#define CRUCIBLE_COMMON_METRICS_FLAGS_H_

#include <memory>

#include "absl/status/statusor.h"
#include "common/metrics_http.h"

namespace common {

// --metrics_listen and --metrics_port_file, the same in crucible-server,
// crucible-worker and crucible-executor (defined once, in metrics_flags.cc):
// MetricsServer::StartIfSet on them. nullptr without --metrics_listen; an
// error (the process stops, as for --listen) if the port cannot be bound.
absl::StatusOr<std::unique_ptr<MetricsServer>> StartMetricsFromFlags();

}  // namespace common

#endif  // CRUCIBLE_COMMON_METRICS_FLAGS_H_
