#ifndef CRUCIBLE_SERVER_STORE_SQLITE_SCHEMA_H_
#define CRUCIBLE_SERVER_STORE_SQLITE_SCHEMA_H_

#include "absl/status/status.h"

struct sqlite3;

namespace server {

// The schema version this binary knows (after every migration).
int SqliteSchemaVersion();

// Applies the pending migrations, each in a transaction of its own.
// FAILED_PRECONDITION if the database is newer than this binary.
absl::Status MigrateSqliteSchema(sqlite3* db);

}  // namespace server

#endif  // CRUCIBLE_SERVER_STORE_SQLITE_SCHEMA_H_
