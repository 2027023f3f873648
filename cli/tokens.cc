// `crucible token create|list|revoke`: TokenService, for admins.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "common/grpc_status.h"
#include "common/proto_time.h"
#include "crucible/v1/token_service.grpc.pb.h"

namespace cli {
namespace {

std::string RoleName(crucible::v1::Role role) {
  switch (role) {
    case crucible::v1::ROLE_READER:
      return "reader";
    case crucible::v1::ROLE_USER:
      return "user";
    case crucible::v1::ROLE_ADMIN:
      return "admin";
    default:
      return absl::StrCat("ROLE_", static_cast<int>(role));
  }
}

std::string TokenTable(const std::vector<crucible::v1::ApiToken>& tokens) {
  std::vector<std::vector<std::string>> rows = {
      {"ID", "NAME", "TENANT", "ROLE", "CREATED", "EXPIRES", "REVOKED"}};
  auto time_or_dash = [](bool set, const google::protobuf::Timestamp& t) {
    return set ? FormatTimestamp(common::FromProtoTime(t)) : std::string("-");
  };
  for (const crucible::v1::ApiToken& t : tokens) {
    rows.push_back({t.id(), t.name(), t.tenant(), RoleName(t.role()),
                    time_or_dash(t.has_create_time(), t.create_time()),
                    time_or_dash(t.has_expire_time(), t.expire_time()),
                    time_or_dash(t.has_revoke_time(), t.revoke_time())});
  }
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  std::string out;
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&out, row[i]);
      if (i + 1 < row.size())
        out += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    out += "\n";
  }
  return out;
}

}  // namespace

int Commands::Token(const Args& args) {
  auto stub = crucible::v1::TokenService::NewStub(connection_.channel());
  std::unique_ptr<grpc::ClientContext> ctx = connection_.UnaryContext();
  const TokenArgs& t = args.token;
  const bool json = args.output == OutputFormat::kJson;
  grpc::Status status;
  switch (t.action) {
    case TokenArgs::Action::kCreate: {
      crucible::v1::CreateTokenRequest request;
      request.set_name(t.name);
      request.set_tenant(t.tenant);
      request.set_role(t.role);
      if (t.ttl.has_value()) {
        *request.mutable_ttl() = common::ToProtoDuration(*t.ttl);
      }
      crucible::v1::CreateTokenResponse response;
      status = stub->CreateToken(ctx.get(), request, &response);
      if (!status.ok()) break;
      if (json) {
        output_.Out(ToJson(response) + "\n");
      } else {
        // The secret alone on stdout, so `$(crucible token create ...)`
        // captures it; the rest on stderr.
        output_.Err(absl::StrCat("token ", response.token().id(),
                                 " for tenant ", response.token().tenant(),
                                 " (", RoleName(response.token().role()),
                                 "); its secret is shown only now:\n"));
        output_.Out(response.secret() + "\n");
      }
      return kExitOk;
    }
    case TokenArgs::Action::kList: {
      crucible::v1::ListTokensResponse response;
      status = stub->ListTokens(ctx.get(), {}, &response);
      if (!status.ok()) break;
      if (json) {
        for (const crucible::v1::ApiToken& token : response.tokens()) {
          output_.Out(ToJson(token) + "\n");
        }
      } else {
        output_.Out(
            TokenTable({response.tokens().begin(), response.tokens().end()}));
      }
      return kExitOk;
    }
    case TokenArgs::Action::kRevoke: {
      crucible::v1::RevokeTokenRequest request;
      request.set_id(t.id);
      crucible::v1::RevokeTokenResponse response;
      status = stub->RevokeToken(ctx.get(), request, &response);
      if (!status.ok()) break;
      output_.Out(json ? ToJson(response.token()) + "\n"
                       : absl::StrCat("revoked ", t.id, "\n"));
      return kExitOk;
    }
  }
  return Fail(common::FromGrpcStatus(status));
}

}  // namespace cli
