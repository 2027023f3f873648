#include "tests/testing/test_stack.h"

#include <cstdlib>

namespace testing_util {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

}  // namespace

TestStack TestStackFromEnv() {
  return TestStack{Env("CRUCIBLE_TEST_DOCKER_HOST"),
                   Env("CRUCIBLE_TEST_ENGINE_SOCKET")};
}

bool InCi() { return Env("CI") == "true"; }

std::string BinaryPath(const std::string& name) {
  std::string dir = Env("CRUCIBLE_BIN_DIR");
  return (dir.empty() ? std::string("build/bin") : dir) + "/" + name;
}

std::string SourcePath(const std::string& relative) {
  std::string dir = Env("CRUCIBLE_SOURCE_DIR");
  return (dir.empty() ? std::string(".") : dir) + "/" + relative;
}

}  // namespace testing_util
