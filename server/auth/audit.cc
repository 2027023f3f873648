#include "server/auth/audit.h"

#include "absl/status/status.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"

namespace server::auth {

std::string AuditLine(const AuditRecord& record) {
  nlohmann::ordered_json line;
  line["audit"] = std::string(record.method);
  line["subject"] = std::string(record.subject);
  line["tenant"] = std::string(record.tenant);
  line["object"] = std::string(record.object);
  line["code"] = absl::StatusCodeToString(record.outcome.code());
  if (!record.outcome.ok())
    line["message"] = std::string(record.outcome.message());
  // Replace, not throw, on invalid UTF-8 from a client.
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void Audit(const AuditRecord& record) {
  LOG(INFO) << "AUDIT " << AuditLine(record);
}

}  // namespace server::auth
