// SqliteTaskStore as an auth::TokenStore: the api_tokens table.
#include <sqlite3.h>

#include <optional>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"
#include "server/store/sqlite_task_store.h"
#include "server/store/sqlite_util.h"

namespace server {
namespace {

std::optional<int64_t> MicrosOrNull(absl::Time t) {
  if (t == absl::InfiniteFuture()) return std::nullopt;
  return absl::ToUnixMicros(t);
}

void BindOptional(Stmt& stmt, int i, std::optional<int64_t> v) {
  if (v.has_value()) {
    stmt.Bind(i, *v);
  } else {
    stmt.BindNull(i);
  }
}

}  // namespace

absl::Status SqliteTaskStore::Insert(const auth::TokenRecord& token) {
  absl::MutexLock lock(&write_mu_);
  Stmt insert(write_db_,
              "INSERT INTO api_tokens (id, name, tenant, role, secret_sha256, "
              "created_by, create_time_us, expire_time_us) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  insert.Bind(1, token.id)
      .Bind(2, token.name)
      .Bind(3, token.tenant)
      .Bind(4, static_cast<int64_t>(token.role))
      .BindBlob(5, token.secret_sha256)
      .Bind(6, token.created_by)
      .Bind(7, absl::ToUnixMicros(token.create_time));
  BindOptional(insert, 8, MicrosOrNull(token.expire_time));
  absl::Status s = insert.Run();
  if (!s.ok() &&
      sqlite3_extended_errcode(write_db_) == SQLITE_CONSTRAINT_PRIMARYKEY) {
    return absl::AlreadyExistsError(
        absl::StrCat("token id ", token.id, " exists"));
  }
  return FullError(s);
}

absl::StatusOr<std::vector<auth::TokenRecord>> SqliteTaskStore::LoadAll() {
  sqlite3* db = AcquireRead();
  absl::Cleanup release = [this, db] { ReleaseRead(db); };
  Stmt list(db,
            "SELECT id, name, tenant, role, secret_sha256, created_by, "
            "create_time_us, expire_time_us, revoke_time_us FROM api_tokens "
            "ORDER BY create_time_us DESC, id");
  std::vector<auth::TokenRecord> tokens;
  while (list.Step()) {
    auth::TokenRecord& t = tokens.emplace_back();
    t.id = list.Blob(0);
    t.name = list.Blob(1);
    t.tenant = list.Blob(2);
    t.role = static_cast<crucible::v1::Role>(list.Int(3));
    t.secret_sha256 = list.Blob(4);
    t.created_by = list.Blob(5);
    t.create_time = absl::FromUnixMicros(list.Int(6));
    if (!list.IsNull(7)) t.expire_time = absl::FromUnixMicros(list.Int(7));
    if (!list.IsNull(8)) t.revoke_time = absl::FromUnixMicros(list.Int(8));
  }
  if (!list.status().ok()) return list.status();
  return tokens;
}

absl::Status SqliteTaskStore::Revoke(const std::string& id, absl::Time when) {
  absl::MutexLock lock(&write_mu_);
  Stmt revoke(write_db_,
              "UPDATE api_tokens SET revoke_time_us = ? "
              "WHERE id = ? AND revoke_time_us IS NULL");
  revoke.Bind(1, absl::ToUnixMicros(when)).Bind(2, id);
  RETURN_IF_ERROR(FullError(revoke.Run()));
  if (sqlite3_changes(write_db_) > 0) return absl::OkStatus();
  Stmt exists(write_db_, "SELECT 1 FROM api_tokens WHERE id = ?");
  exists.Bind(1, id);
  if (exists.Step()) return absl::OkStatus();  // already revoked
  RETURN_IF_ERROR(exists.status());
  return absl::NotFoundError(absl::StrCat("no token ", id));
}

}  // namespace server
