#ifndef CRUCIBLE_TESTS_TESTING_SQLITE_CHECK_H_
#define CRUCIBLE_TESTS_TESTING_SQLITE_CHECK_H_

#include <sqlite3.h>

#include <string>

namespace testing_util {

// What PRAGMA integrity_check says of the SQLite file at `path` ("ok" when
// sound), opened read-only; "cannot open" if it cannot be.
inline std::string IntegrityCheck(const std::string& path) {
  sqlite3* db = nullptr;
  std::string result = "cannot open";
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
      SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, nullptr) ==
            SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      result = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return result;
}

}  // namespace testing_util

#endif  // CRUCIBLE_TESTS_TESTING_SQLITE_CHECK_H_
