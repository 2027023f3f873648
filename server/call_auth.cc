#include "server/call_auth.h"

#include <optional>

#include "common/status_macros.h"

namespace server {

absl::StatusOr<auth::Identity> AuthenticateCall(
    const auth::Authenticator& authenticator,
    const grpc::CallbackServerContext* ctx, auth::Right right) {
  const auto& metadata = ctx->client_metadata();
  auto [first, last] = metadata.equal_range("authorization");
  std::optional<absl::string_view> authorization;
  if (first != last) {
    if (std::next(first) != last) {
      return absl::UnauthenticatedError(
          "more than one authorization metadata entry");
    }
    authorization =
        absl::string_view(first->second.data(), first->second.size());
  }
  ASSIGN_OR_RETURN(auth::Identity identity,
                   authenticator.Authenticate(authorization));
  RETURN_IF_ERROR(auth::Authorize(identity, right));
  return identity;
}

TenantScope ScopeOf(const auth::Identity& identity) {
  return {.tenant = identity.tenant,
          .all_tenants = identity.role == crucible::v1::ROLE_ADMIN};
}

}  // namespace server
