#include "server/auth/authenticator.h"

#include <openssl/crypto.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace server::auth {

Authenticator::Authenticator(AuthenticatorOptions options,
                             const ApiTokens* tokens, const JwtVerifier* jwt)
    : options_(std::move(options)),
      admin_sha256_(options_.admin_token.empty()
                        ? std::string()
                        : Sha256(options_.admin_token)),
      tokens_(tokens),
      jwt_(jwt) {}

absl::StatusOr<Identity> Authenticator::Authenticate(
    std::optional<absl::string_view> authorization) const {
  if (!authorization.has_value()) {
    if (options_.allow_anonymous) {
      return Identity{.subject = "anonymous",
                      .tenant = options_.anonymous_tenant,
                      .role = crucible::v1::ROLE_USER};
    }
    return absl::UnauthenticatedError(
        "no credentials: send the metadata `authorization: Bearer <token>` "
        "(crucible --token or CRUCIBLE_TOKEN)");
  }
  absl::string_view value = *authorization;
  if (value.size() < 7 ||
      !absl::EqualsIgnoreCase(value.substr(0, 7), "Bearer ")) {
    return absl::UnauthenticatedError(
        "the authorization metadata must be `Bearer <token>`");
  }
  absl::string_view bearer = value.substr(7);
  if (bearer.empty()) return absl::UnauthenticatedError("empty bearer token");
  if (!admin_sha256_.empty()) {
    const std::string hash = Sha256(bearer);
    if (CRYPTO_memcmp(hash.data(), admin_sha256_.data(), hash.size()) == 0) {
      return Identity{.subject = "admin-token",
                      .tenant = options_.admin_tenant,
                      .role = crucible::v1::ROLE_ADMIN};
    }
  }
  if (absl::StartsWith(bearer, kApiTokenPrefix)) {
    if (tokens_ == nullptr) {
      return absl::UnauthenticatedError("API tokens are not accepted here");
    }
    return tokens_->Check(bearer);
  }
  if (jwt_ != nullptr && std::count(bearer.begin(), bearer.end(), '.') == 2) {
    return jwt_->Verify(bearer);
  }
  return absl::UnauthenticatedError(
      jwt_ != nullptr ? "the bearer token is neither an API token nor a JWT"
                      : "the bearer token is not a valid API token");
}

}  // namespace server::auth
