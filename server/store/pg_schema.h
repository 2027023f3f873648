#ifndef CRUCIBLE_SERVER_STORE_PG_SCHEMA_H_
#define CRUCIBLE_SERVER_STORE_PG_SCHEMA_H_

#include "absl/status/status.h"
#include "server/store/pg_util.h"

namespace server {

// The PostgreSQL store's schema version this binary knows.
int PgSchemaVersion();

// Applies pending migrations, each in a transaction, under an advisory lock
// so that servers starting together apply each once. FAILED_PRECONDITION if
// the database's schema is newer than this binary's.
absl::Status MigratePgSchema(PgConnection& c);

}  // namespace server

#endif  // CRUCIBLE_SERVER_STORE_PG_SCHEMA_H_
