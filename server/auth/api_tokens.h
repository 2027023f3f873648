#ifndef CRUCIBLE_SERVER_AUTH_API_TOKENS_H_
#define CRUCIBLE_SERVER_AUTH_API_TOKENS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "server/auth/identity.h"
#include "server/auth/token_store.h"

namespace server::auth {

// Every token starts with this, so a leaked one is easy to search for.
inline constexpr absl::string_view kApiTokenPrefix = "cru_";

// The SHA-256 of `data`, 32 raw bytes.
std::string Sha256(absl::string_view data);
// `n` bytes from OpenSSL's CSPRNG.
std::string RandomBytes(size_t n);

// What CreateToken asks for.
struct NewToken {
  std::string name;
  std::string tenant;
  crucible::v1::Role role = crucible::v1::ROLE_UNSPECIFIED;
  // Zero: never expires.
  absl::Duration ttl = absl::ZeroDuration();
  std::string created_by;
};

// API tokens: `cru_<id>_<secret>`, checked against the SHA-256 of the
// secret kept in a TokenStore. Checks run in memory, without I/O (they may
// run in a gRPC reaction): the tokens are loaded at start, changed here
// after each durable write, and loaded again by Refresh (for changes made
// by another server of the same store). Thread-safe.
class ApiTokens {
 public:
  // Loads the tokens; `store` and `clock` must outlive this.
  static absl::StatusOr<std::unique_ptr<ApiTokens>> Create(
      TokenStore& store, const common::Clock& clock);

  // Stores a new token and returns it with its full bearer string (shown
  // once). INVALID_ARGUMENT for a bad name, tenant, role or ttl.
  absl::StatusOr<std::pair<TokenRecord, std::string>> Issue(NewToken spec);
  // Every token, newest first.
  std::vector<TokenRecord> List() const;
  // NOT_FOUND for an unknown id. Returns the token as revoked.
  absl::StatusOr<TokenRecord> Revoke(const std::string& id);
  // Loads the tokens from the store again.
  absl::Status Refresh();

  // The identity of `bearer` if it is a live token: UNAUTHENTICATED if it
  // is malformed, unknown, revoked or expired (one message for all, so a
  // caller learns nothing about which ids exist).
  absl::StatusOr<Identity> Check(absl::string_view bearer) const;

 private:
  ApiTokens(TokenStore& store, const common::Clock& clock)
      : store_(store), clock_(clock) {}

  TokenStore& store_;
  const common::Clock& clock_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, TokenRecord> tokens_ ABSL_GUARDED_BY(mu_);
};

}  // namespace server::auth

#endif  // CRUCIBLE_SERVER_AUTH_API_TOKENS_H_
