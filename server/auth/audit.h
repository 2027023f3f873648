#ifndef CRUCIBLE_SERVER_AUTH_AUDIT_H_
#define CRUCIBLE_SERVER_AUTH_AUDIT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace server::auth {

// One mutating call as the audit log records it.
struct AuditRecord {
  absl::string_view method;  // "CreateTask", "CancelTask", "CreateToken", ...
  // Empty when the caller did not authenticate.
  absl::string_view subject;
  absl::string_view tenant;
  // The task or token the call acted on, if known.
  absl::string_view object;
  absl::Status outcome;
};

// The JSON line of `record`: {"audit":..., "subject":..., "tenant":...,
// "object":..., "code":"OK"|..., "message":...}.
std::string AuditLine(const AuditRecord& record);

// Writes AuditLine(record) to the log (INFO, prefixed "AUDIT "), once per
// call.
void Audit(const AuditRecord& record);

}  // namespace server::auth

#endif  // CRUCIBLE_SERVER_AUTH_AUDIT_H_
