#ifndef CRUCIBLE_SERVER_AUTH_TOKEN_STORE_H_
#define CRUCIBLE_SERVER_AUTH_TOKEN_STORE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crucible/v1/token_service.pb.h"

namespace server::auth {

// An API token as stored: never its secret, only the secret's SHA-256.
struct TokenRecord {
  std::string id;
  std::string name;
  std::string tenant;
  crucible::v1::Role role = crucible::v1::ROLE_UNSPECIFIED;
  // SHA-256 of the secret, 32 raw bytes.
  std::string secret_sha256;
  std::string created_by;
  absl::Time create_time = absl::InfinitePast();
  // InfiniteFuture: never.
  absl::Time expire_time = absl::InfiniteFuture();
  absl::Time revoke_time = absl::InfiniteFuture();
};

// Durable storage of API tokens, shared by every server of one store.
class TokenStore {
 public:
  virtual ~TokenStore() = default;
  // ALREADY_EXISTS if the id is taken.
  virtual absl::Status Insert(const TokenRecord& token) = 0;
  // Every token, revoked ones too, newest first.
  virtual absl::StatusOr<std::vector<TokenRecord>> LoadAll() = 0;
  // Sets revoke_time if unset; NOT_FOUND for an unknown id.
  virtual absl::Status Revoke(const std::string& id, absl::Time when) = 0;
};

}  // namespace server::auth

#endif  // CRUCIBLE_SERVER_AUTH_TOKEN_STORE_H_
