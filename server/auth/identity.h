#ifndef CRUCIBLE_SERVER_AUTH_IDENTITY_H_
#define CRUCIBLE_SERVER_AUTH_IDENTITY_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crucible/v1/token_service.pb.h"

namespace server::auth {

// Who makes a TaskService or TokenService call, as its credentials say.
struct Identity {
  // For logs and audit lines: "token:<id>", "jwt:<issuer>:<subject>",
  // "admin-token" or "anonymous". Never a secret.
  std::string subject;
  // The tenant whose tasks it creates and sees.
  std::string tenant;
  crucible::v1::Role role = crucible::v1::ROLE_UNSPECIFIED;
};

// What a call needs of its caller.
enum class Right {
  kRead,   // get, list, watch, stream output of its tenant's tasks
  kWrite,  // create and cancel its tenant's tasks
  kAdmin,  // every tenant's tasks, token management
};

// OK if `identity` has `right`; PERMISSION_DENIED naming what is missing.
absl::Status Authorize(const Identity& identity, Right right);

// "reader", "user", "admin" -> the role; INVALID_ARGUMENT otherwise.
absl::StatusOr<crucible::v1::Role> ParseRole(absl::string_view name);

// A tenant name: 1 to 64 bytes of letters, digits, '.', '_' and '-'.
absl::Status ValidateTenant(const std::string& tenant);

}  // namespace server::auth

#endif  // CRUCIBLE_SERVER_AUTH_IDENTITY_H_
