#ifndef CRUCIBLE_COMMON_STATUS_MACROS_H_
#define CRUCIBLE_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Abseil 20220623 has no public RETURN_IF_ERROR / ASSIGN_OR_RETURN.
#define RETURN_IF_ERROR(expr)                                        \
  do {                                                               \
    ::absl::Status crucible_status_macro_ = (expr);                  \
    if (!crucible_status_macro_.ok()) return crucible_status_macro_; \
  } while (0)

#define CRUCIBLE_CONCAT_INNER_(x, y) x##y
#define CRUCIBLE_CONCAT_(x, y) CRUCIBLE_CONCAT_INNER_(x, y)
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  CRUCIBLE_ASSIGN_OR_RETURN_(CRUCIBLE_CONCAT_(statusor_, __LINE__), lhs, rexpr)
#define CRUCIBLE_ASSIGN_OR_RETURN_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                               \
  if (!statusor.ok()) return statusor.status();          \
  lhs = *std::move(statusor)

#endif  // CRUCIBLE_COMMON_STATUS_MACROS_H_
