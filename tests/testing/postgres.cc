#include "tests/testing/postgres.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace testing_util {

std::string TestPostgresUri() {
  const char* uri = std::getenv("CRUCIBLE_TEST_POSTGRES_URI");
  return uri == nullptr ? "" : uri;
}

absl::Status ExecPostgres(const std::string& uri, const std::string& sql) {
  PGconn* c = PQconnectdb(uri.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    absl::Status s = absl::UnavailableError(
        absl::StrCat("connect ", uri, ": ", PQerrorMessage(c)));
    PQfinish(c);
    return s;
  }
  PGresult* r = PQexec(c, sql.c_str());
  absl::Status s = absl::OkStatus();
  if (PQresultStatus(r) != PGRES_COMMAND_OK &&
      PQresultStatus(r) != PGRES_TUPLES_OK) {
    s = absl::InternalError(
        absl::StrCat(sql, ": ", absl::StripAsciiWhitespace(PQerrorMessage(c))));
  }
  PQclear(r);
  PQfinish(c);
  return s;
}

absl::StatusOr<std::string> FreshPostgresDatabase() {
  static std::atomic<int> counter{0};
  const std::string base = TestPostgresUri();
  // postgresql://user@host:port/db[?...]: the same server, another db.
  const size_t scheme = base.find("://");
  const size_t slash =
      base.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (scheme == std::string::npos || slash == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("CRUCIBLE_TEST_POSTGRES_URI is not a URI: ", base));
  }
  const std::string name =
      absl::StrCat("t_", getpid(), "_", counter.fetch_add(1), "_",
                   static_cast<unsigned>(rand()) % 100000);
  if (absl::Status s =
          ExecPostgres(base, absl::StrCat("CREATE DATABASE ", name));
      !s.ok()) {
    return s;
  }
  return absl::StrCat(base.substr(0, slash + 1), name);
}

}  // namespace testing_util
