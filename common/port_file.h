#ifndef CRUCIBLE_COMMON_PORT_FILE_H_
#define CRUCIBLE_COMMON_PORT_FILE_H_

#include <string>

#include "absl/status/status.h"

namespace common {

// Writes "PORT\n" to `path` through a temporary file and a rename, so a
// reader (a script waiting for a server) never sees a half-written file.
// INTERNAL naming the path if either step fails.
absl::Status WritePortFile(const std::string& path, int port);

}  // namespace common

#endif  // CRUCIBLE_COMMON_PORT_FILE_H_
