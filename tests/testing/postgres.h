#ifndef CRUCIBLE_TESTS_TESTING_POSTGRES_H_
#define CRUCIBLE_TESTS_TESTING_POSTGRES_H_

#include <string>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace testing_util {

// The tests' PostgreSQL server (env CRUCIBLE_TEST_POSTGRES_URI, set by ctest
// for tests labelled "postgres"); empty if unset.
std::string TestPostgresUri();

// A new, empty database on that server, for one test: its URI.
absl::StatusOr<std::string> FreshPostgresDatabase();

// Runs `sql` (statements without rows) on the database at `uri`.
absl::Status ExecPostgres(const std::string& uri, const std::string& sql);

}  // namespace testing_util

// In SetUp or a test body: binds `var` to a fresh database's URI, or fails
// (CI=true) or skips (elsewhere) the test when there is no PostgreSQL server.
#define CRUCIBLE_REQUIRE_POSTGRES(var)                                  \
  std::string var;                                                      \
  if (::testing_util::TestPostgresUri().empty()) {                      \
    const char* ci = std::getenv("CI");                                 \
    if (ci != nullptr && std::string(ci) == "true") {                   \
      FAIL() << "CRUCIBLE_TEST_POSTGRES_URI is unset but CI=true: the " \
                "postgres fixture did not run";                         \
    }                                                                   \
    GTEST_SKIP() << "CRUCIBLE_TEST_POSTGRES_URI is unset; skipping";    \
  } else {                                                              \
    auto fresh_db = ::testing_util::FreshPostgresDatabase();            \
    ASSERT_TRUE(fresh_db.ok()) << fresh_db.status();                    \
    var = *fresh_db;                                                    \
  }

#endif  // CRUCIBLE_TESTS_TESTING_POSTGRES_H_
