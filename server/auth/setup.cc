#include "server/auth/setup.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "glog/logging.h"

namespace server::auth {

absl::StatusOr<std::unique_ptr<Auth>> SetUpAuth(const AuthSettings& settings,
                                                const ApiTokens* tokens) {
  auto auth = std::make_unique<Auth>();
  AuthenticatorOptions options{.allow_anonymous = settings.allow_anonymous,
                               .anonymous_tenant = settings.anonymous_tenant,
                               .admin_tenant = settings.admin_tenant};
  if (settings.allow_anonymous) {
    RETURN_IF_ERROR(ValidateTenant(settings.anonymous_tenant));
    LOG(WARNING) << "--allow_anonymous: calls without credentials act as "
                    "tenant "
                 << settings.anonymous_tenant;
  }
  if (!settings.admin_token_file.empty()) {
    RETURN_IF_ERROR(ValidateTenant(settings.admin_tenant));
    std::ifstream in(settings.admin_token_file);
    std::stringstream text;
    text << in.rdbuf();
    std::string token(absl::StripAsciiWhitespace(text.str()));
    if (!in || token.size() < 16) {
      return absl::InvalidArgumentError(
          absl::StrCat("--admin_token_file ", settings.admin_token_file,
                       ": unreadable, or holds fewer than 16 characters"));
    }
    struct stat st;
    if (stat(settings.admin_token_file.c_str(), &st) == 0 &&
        (st.st_mode & 0007) != 0) {
      LOG(WARNING) << "--admin_token_file " << settings.admin_token_file
                   << " can be read by every user: chmod o-rwx it";
    }
    options.admin_token = std::move(token);
  }
  if (!settings.jwks_file.empty()) {
    JwtOptions jwt{.jwks_file = settings.jwks_file,
                   .issuer = settings.jwt_issuer,
                   .audience = settings.jwt_audience,
                   .tenant_claim = settings.jwt_tenant_claim,
                   .role_claim = settings.jwt_role_claim};
    absl::StatusOr<crucible::v1::Role> role =
        ParseRole(settings.jwt_default_role);
    if (!role.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--jwt_default_role: ", role.status().message()));
    }
    jwt.default_role = *role;
    absl::StatusOr<std::unique_ptr<JwtVerifier>> verifier =
        JwtVerifier::Create(std::move(jwt), common::Clock::Real());
    if (!verifier.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--jwks_file, --jwt_issuer, --jwt_audience: ",
                       verifier.status().message()));
    }
    auth->jwt = *std::move(verifier);
  }
  auth->authenticator = std::make_unique<Authenticator>(
      std::move(options), tokens, auth->jwt.get());
  return auth;
}

}  // namespace server::auth
