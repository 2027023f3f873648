#ifndef CRUCIBLE_SERVER_SCHEDULER_SPEC_VALIDATION_H_
#define CRUCIBLE_SERVER_SCHEDULER_SPEC_VALIDATION_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "crucible/v1/task.pb.h"

namespace server {

// Limits a TaskSpec must respect to be accepted.
inline constexpr size_t kMaxImageBytes = 512;
inline constexpr int kMaxCommandEntries = 1024;
inline constexpr size_t kMaxCommandBytes = 128 << 10;
inline constexpr int kMaxEnvEntries = 256;
inline constexpr size_t kMaxEnvBytes = 128 << 10;
inline constexpr size_t kMaxStdinBytes = 1 << 20;
inline constexpr size_t kMaxWorkingDirBytes = 4096;
// Input files: how many, the bytes of one path (and of one of its names),
// and the bytes of all contents and paths together. Executors' policies
// bound them further; these keep every spec within one gRPC message on
// each hop (stdin plus files stay under 4 MiB).
inline constexpr int kMaxInputFiles = 1000;
inline constexpr size_t kMaxFilePathBytes = 1024;
inline constexpr size_t kMaxFileNameBytes = 255;
inline constexpr size_t kMaxInputBytes = 2 << 20;
// spec.callback_url (checked in server/callback/callback_url.cc).
inline constexpr size_t kMaxCallbackUrlBytes = 2048;
// Artifact paths or patterns.
inline constexpr int kMaxArtifactPatterns = 100;
inline constexpr int kMaxLabels = 64;
inline constexpr size_t kMaxLabelKeyBytes = 63;
inline constexpr size_t kMaxLabelValueBytes = 256;
inline constexpr int kMaxAttemptsLimit = 100;
inline constexpr size_t kMaxRequestIdBytes = 128;
// Longest timeout, initial_backoff or max_backoff.
inline constexpr absl::Duration kMaxSpecDuration = absl::Hours(24 * 30);

// The server's configured maxima of what a spec may ask for. 0 means no
// maximum beyond the fixed limits above.
struct ValidationLimits {
  // Bytes of standard input.
  int64_t max_stdin_bytes = kMaxStdinBytes;
  // resources.memory_bytes, cpu_millis, pids_limit, tmpfs_bytes.
  int64_t max_memory_bytes = 0;
  int64_t max_cpu_millis = 0;
  int64_t max_pids_limit = 0;
  int64_t max_tmpfs_bytes = 0;
  // timeout.
  absl::Duration max_timeout = absl::ZeroDuration();
  // max_output_bytes.
  int64_t max_output_bytes = 0;
};

// OK if `spec` can be accepted; otherwise INVALID_ARGUMENT whose message
// starts with the offending field, e.g. "spec.image: required".
absl::Status ValidateTaskSpec(const crucible::v1::TaskSpec& spec,
                              const ValidationLimits& limits = {});

// OK if an artifact a worker relays may be kept for `spec`: a plain path
// under the working directory (as files[].path) that one of spec.artifacts
// matches; otherwise INVALID_ARGUMENT ("artifact.chunk.path: ...").
absl::Status ValidateReportedArtifactPath(const crucible::v1::TaskSpec& spec,
                                          const std::string& path);

// INVALID_ARGUMENT ("request_id: ...") if the idempotency key is too long.
absl::Status ValidateRequestId(const std::string& request_id);

}  // namespace server

#endif  // CRUCIBLE_SERVER_SCHEDULER_SPEC_VALIDATION_H_
