// `crucible health`: grpc.health.v1.Health/Check against any Crucible process.
#include <string>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "common/grpc_status.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace cli {

int Commands::Health(const Args& args) {
  std::unique_ptr<grpc::health::v1::Health::Stub> health =
      grpc::health::v1::Health::NewStub(connection_.channel());
  std::unique_ptr<grpc::ClientContext> ctx = connection_.UnaryContext();
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(args.health.service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = health->Check(ctx.get(), request, &response);
  if (!status.ok()) return Fail(common::FromGrpcStatus(status));
  if (args.output == OutputFormat::kJson) {
    output_.Out(ToJson(response) + "\n");
  } else {
    output_.Out(grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
                    response.status()) +
                "\n");
  }
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING
             ? kExitOk
             : kExitError;
}

}  // namespace cli
