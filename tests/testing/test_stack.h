#ifndef CRUCIBLE_TESTS_TESTING_TEST_STACK_H_
#define CRUCIBLE_TESTS_TESTING_TEST_STACK_H_

#include <string>

namespace testing_util {

// Addresses of the test stack that ctest's "engine" fixture started. Empty
// when a test runs outside ctest without them.
struct TestStack {
  std::string docker_host;    // the proxy, tcp://127.0.0.1:PORT
  std::string engine_socket;  // the engine's own socket, behind the proxy
};

TestStack TestStackFromEnv();

// True when running in CI (CI=true): tests that need the engine must fail,
// not skip, when it is missing.
bool InCi();

// Path of a built binary (build/bin/NAME) and of a source file.
std::string BinaryPath(const std::string& name);
std::string SourcePath(const std::string& relative);

}  // namespace testing_util

// In a test body: skip (locally) or fail (CI) when the engine is not there.
#define REQUIRE_TEST_STACK(stack)                                            \
  do {                                                                       \
    if ((stack).docker_host.empty()) {                                       \
      if (::testing_util::InCi()) {                                          \
        FAIL() << "CRUCIBLE_TEST_DOCKER_HOST is not set; run through ctest"; \
      }                                                                      \
      GTEST_SKIP() << "no test engine; run through ctest";                   \
    }                                                                        \
  } while (0)

#endif  // CRUCIBLE_TESTS_TESTING_TEST_STACK_H_
