#ifndef CRUCIBLE_SERVER_CALL_AUTH_H_
#define CRUCIBLE_SERVER_CALL_AUTH_H_

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "server/auth/authenticator.h"
#include "server/scheduler/scheduler.h"

namespace server {

// The caller of `ctx` (from its `authorization` metadata), if it has
// `right`: UNAUTHENTICATED or PERMISSION_DENIED otherwise. No I/O.
absl::StatusOr<auth::Identity> AuthenticateCall(
    const auth::Authenticator& authenticator,
    const grpc::CallbackServerContext* ctx, auth::Right right);

// Whose tasks `identity` may touch: its tenant's; an admin's, every
// tenant's.
TenantScope ScopeOf(const auth::Identity& identity);

}  // namespace server

#endif  // CRUCIBLE_SERVER_CALL_AUTH_H_
