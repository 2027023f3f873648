#ifndef CRUCIBLE_SERVER_AUTH_AUTHENTICATOR_H_
#define CRUCIBLE_SERVER_AUTH_AUTHENTICATOR_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/auth/api_tokens.h"
#include "server/auth/identity.h"
#include "server/auth/jwt_verifier.h"

namespace server::auth {

struct AuthenticatorOptions {
  // Calls without credentials act as `anonymous_tenant` with ROLE_USER.
  // Off by default: every call must then authenticate.
  bool allow_anonymous = false;
  std::string anonymous_tenant = "default";
  // If set, this bearer string is an admin (the first one, which creates
  // the API tokens), acting for `admin_tenant`. Only its SHA-256 is kept.
  std::string admin_token;
  std::string admin_tenant = "admin";
};

// Turns a call's `authorization` metadata into an Identity: "Bearer " and
// an API token (cru_...), the admin token, or a JWT. No I/O: it may run in
// a gRPC reaction. Thread-safe.
class Authenticator {
 public:
  // `tokens` and `jwt` (either may be null: that kind is not accepted) must
  // outlive this.
  Authenticator(AuthenticatorOptions options, const ApiTokens* tokens,
                const JwtVerifier* jwt);

  // `authorization` is the metadata's value; nullopt when the call has
  // none. UNAUTHENTICATED, saying what is wrong, for missing or bad
  // credentials.
  absl::StatusOr<Identity> Authenticate(
      std::optional<absl::string_view> authorization) const;

 private:
  const AuthenticatorOptions options_;
  const std::string admin_sha256_;
  const ApiTokens* const tokens_;
  const JwtVerifier* const jwt_;
};

}  // namespace server::auth

#endif  // CRUCIBLE_SERVER_AUTH_AUTHENTICATOR_H_
