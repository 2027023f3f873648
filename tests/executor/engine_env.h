#ifndef CRUCIBLE_TESTS_EXECUTOR_ENGINE_ENV_H_
#define CRUCIBLE_TESTS_EXECUTOR_ENGINE_ENV_H_

#include <string>

#include "gtest/gtest.h"

namespace executor_testing {

// The engine address for engine tests: env CRUCIBLE_TEST_DOCKER_HOST, or
// empty if unset.
std::string TestDockerHost();
// True if env CI is "true".
bool InCi();
// A label value unique to this test process and call.
std::string UniqueExecutorId();

inline constexpr char kBusybox[] = "localhost/crucible/busybox:latest";

}  // namespace executor_testing

// In SetUp or a test body: binds `var` to the engine address, or fails (CI)
// or skips (elsewhere) the test when CRUCIBLE_TEST_DOCKER_HOST is unset.
#define CRUCIBLE_REQUIRE_ENGINE(var)                                      \
  std::string var = ::executor_testing::TestDockerHost();                 \
  if (var.empty()) {                                                      \
    if (::executor_testing::InCi()) {                                     \
      FAIL() << "CRUCIBLE_TEST_DOCKER_HOST is unset but CI=true: the "    \
                "engine fixture did not run";                             \
    }                                                                     \
    GTEST_SKIP() << "CRUCIBLE_TEST_DOCKER_HOST is unset (e.g. "           \
                    "unix:///tmp/eng/engine.sock); skipping engine test"; \
  }

#endif  // CRUCIBLE_TESTS_EXECUTOR_ENGINE_ENV_H_
