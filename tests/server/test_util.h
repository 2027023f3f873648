#ifndef CRUCIBLE_TESTS_SERVER_TEST_UTIL_H_
#define CRUCIBLE_TESTS_SERVER_TEST_UTIL_H_

#include <unistd.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace server::testing_util {

// A new empty directory under the test temp dir, unique per test.
inline std::string FreshDir() {
  const ::testing::TestInfo* info =
      ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) /
      absl::StrCat("crucible_server_", info->test_suite_name(), "_",
                   info->name(), "_", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

}  // namespace server::testing_util

#endif  // CRUCIBLE_TESTS_SERVER_TEST_UTIL_H_
