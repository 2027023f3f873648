#ifndef CRUCIBLE_SERVER_AUTH_SETUP_H_
#define CRUCIBLE_SERVER_AUTH_SETUP_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/auth/api_tokens.h"
#include "server/auth/authenticator.h"
#include "server/auth/jwt_verifier.h"

namespace server::auth {

// The server's authentication settings, as its flags give them.
struct AuthSettings {
  bool allow_anonymous = false;
  std::string anonymous_tenant = "default";
  std::string admin_token_file;
  std::string admin_tenant = "admin";
  std::string jwks_file;
  std::string jwt_issuer;
  std::string jwt_audience;
  std::string jwt_tenant_claim = "crucible_tenant";
  std::string jwt_role_claim = "crucible_role";
  std::string jwt_default_role = "user";
};

// The authenticator and what it uses.
struct Auth {
  std::unique_ptr<JwtVerifier> jwt;  // null without a JWKS file
  std::unique_ptr<Authenticator> authenticator;
};

// Reads the admin token file and the JWKS file; INVALID_ARGUMENT, naming
// the flag, for settings that cannot work. `tokens` must outlive the
// result.
absl::StatusOr<std::unique_ptr<Auth>> SetUpAuth(const AuthSettings& settings,
                                                const ApiTokens* tokens);

}  // namespace server::auth

#endif  // CRUCIBLE_SERVER_AUTH_SETUP_H_
