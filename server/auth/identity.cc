#include "server/auth/identity.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace server::auth {

absl::Status Authorize(const Identity& identity, Right right) {
  using crucible::v1::Role;
  const Role needed = right == Right::kRead    ? crucible::v1::ROLE_READER
                      : right == Right::kWrite ? crucible::v1::ROLE_USER
                                               : crucible::v1::ROLE_ADMIN;
  if (identity.role >= needed) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      identity.subject, " (role ", crucible::v1::Role_Name(identity.role),
      ") may not do this: it needs ", crucible::v1::Role_Name(needed)));
}

absl::StatusOr<crucible::v1::Role> ParseRole(absl::string_view name) {
  if (name == "reader") return crucible::v1::ROLE_READER;
  if (name == "user") return crucible::v1::ROLE_USER;
  if (name == "admin") return crucible::v1::ROLE_ADMIN;
  return absl::InvalidArgumentError(
      absl::StrCat("role \"", name, "\": reader, user or admin"));
}

absl::Status ValidateTenant(const std::string& tenant) {
  if (tenant.empty() || tenant.size() > 64) {
    return absl::InvalidArgumentError("tenant: 1 to 64 bytes");
  }
  for (char c : tenant) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '-') {
      return absl::InvalidArgumentError(
          "tenant: only letters, digits, '.', '_' and '-'");
    }
  }
  return absl::OkStatus();
}

}  // namespace server::auth
