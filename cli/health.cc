// `crucible health`: grpc.health.v1.Health/Check against any Crucible process.
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "common/grpc_server.h"
#include "common/grpc_status.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace cli {
namespace {

// Why the process is NOT_SERVING, if it said (common::kHealthReasonKey, in
// the trailing metadata, or the initial one of other servers); "" if not.
std::string HealthReason(const grpc::ClientContext& ctx) {
  for (const auto* metadata :
       {&ctx.GetServerTrailingMetadata(), &ctx.GetServerInitialMetadata()}) {
    auto it = metadata->find(common::kHealthReasonKey);
    if (it != metadata->end()) {
      return std::string(it->second.data(), it->second.size());
    }
  }
  return "";
}

}  // namespace

int Commands::Health(const Args& args) {
  std::unique_ptr<grpc::health::v1::Health::Stub> health =
      grpc::health::v1::Health::NewStub(connection_.channel());
  std::unique_ptr<grpc::ClientContext> ctx = connection_.UnaryContext();
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(args.health.service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = health->Check(ctx.get(), request, &response);
  if (!status.ok()) return Fail(common::FromGrpcStatus(status));
  const std::string reason = HealthReason(*ctx);
  if (args.output == OutputFormat::kJson) {
    nlohmann::ordered_json json = nlohmann::ordered_json::parse(
        ToJson(response), nullptr, /*allow_exceptions=*/false);
    if (!reason.empty()) json["reason"] = reason;
    output_.Out(json.dump() + "\n");
  } else {
    output_.Out(
        absl::StrCat(grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
                         response.status()),
                     reason.empty() ? "" : ": ", reason, "\n"));
  }
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING
             ? kExitOk
             : kExitError;
}

}  // namespace cli
