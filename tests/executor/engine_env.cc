#include "tests/executor/engine_env.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace executor_testing {

std::string TestDockerHost() {
  const char* v = std::getenv("CRUCIBLE_TEST_DOCKER_HOST");
  return v == nullptr ? "" : v;
}

bool InCi() {
  const char* v = std::getenv("CI");
  return v != nullptr && std::string(v) == "true";
}

std::string UniqueExecutorId() {
  static std::atomic<int> n{0};
  return absl::StrCat("test-", getpid(), "-", n++);
}

}  // namespace executor_testing
