#include "server/token_service.h"

#include <utility>

#include "common/grpc_status.h"
#include "common/proto_time.h"
#include "server/auth/audit.h"
#include "server/call_auth.h"

namespace server {
namespace {

using crucible::v1::ApiToken;

// Authenticates an admin and runs `fn(caller)` (returning the call's
// status) on the pool; audits it as `method` unless `audit` is false.
template <typename Fn>
grpc::ServerUnaryReactor* AdminCall(grpc::CallbackServerContext* ctx,
                                    const auth::Authenticator& authenticator,
                                    BlockingPool& pool, const char* method,
                                    bool audit, Fn fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::StatusOr<auth::Identity> caller =
      AuthenticateCall(authenticator, ctx, auth::Right::kAdmin);
  if (!caller.ok()) {
    if (audit) {
      auth::Audit({.method = method,
                   .subject = "",
                   .tenant = "",
                   .object = "",
                   .outcome = caller.status()});
    }
    reactor->Finish(common::ToGrpcStatus(caller.status()));
    return reactor;
  }
  pool.Schedule([reactor, caller = *std::move(caller), fn = std::move(fn)] {
    reactor->Finish(common::ToGrpcStatus(fn(caller)));
  });
  return reactor;
}

}  // namespace

ApiToken ToProto(const auth::TokenRecord& record) {
  ApiToken t;
  t.set_id(record.id);
  t.set_name(record.name);
  t.set_tenant(record.tenant);
  t.set_role(record.role);
  t.set_created_by(record.created_by);
  *t.mutable_create_time() = common::ToProtoTime(record.create_time);
  if (record.expire_time != absl::InfiniteFuture()) {
    *t.mutable_expire_time() = common::ToProtoTime(record.expire_time);
  }
  if (record.revoke_time != absl::InfiniteFuture()) {
    *t.mutable_revoke_time() = common::ToProtoTime(record.revoke_time);
  }
  return t;
}

grpc::ServerUnaryReactor* TokenService::CreateToken(
    grpc::CallbackServerContext* ctx,
    const crucible::v1::CreateTokenRequest* request,
    crucible::v1::CreateTokenResponse* response) {
  return AdminCall(ctx, authenticator_, pool_, "CreateToken", true,
                   [this, request, response](const auth::Identity& caller) {
                     auth::NewToken spec{.name = request->name(),
                                         .tenant = request->tenant(),
                                         .role = request->role(),
                                         .created_by = caller.subject};
                     if (request->has_ttl()) {
                       spec.ttl = common::FromProtoDuration(request->ttl());
                     }
                     auto issued = tokens_.Issue(std::move(spec));
                     auth::Audit({.method = "CreateToken",
                                  .subject = caller.subject,
                                  .tenant = request->tenant(),
                                  .object = issued.ok() ? issued->first.id : "",
                                  .outcome = issued.status()});
                     if (!issued.ok()) return issued.status();
                     *response->mutable_token() = ToProto(issued->first);
                     response->set_secret(std::move(issued->second));
                     return absl::OkStatus();
                   });
}

grpc::ServerUnaryReactor* TokenService::ListTokens(
    grpc::CallbackServerContext* ctx, const crucible::v1::ListTokensRequest*,
    crucible::v1::ListTokensResponse* response) {
  return AdminCall(ctx, authenticator_, pool_, "ListTokens", false,
                   [this, response](const auth::Identity&) {
                     // Another server may have changed them.
                     if (absl::Status s = tokens_.Refresh(); !s.ok()) {
                       return s;
                     }
                     for (const auth::TokenRecord& t : tokens_.List()) {
                       *response->add_tokens() = ToProto(t);
                     }
                     return absl::OkStatus();
                   });
}

grpc::ServerUnaryReactor* TokenService::RevokeToken(
    grpc::CallbackServerContext* ctx,
    const crucible::v1::RevokeTokenRequest* request,
    crucible::v1::RevokeTokenResponse* response) {
  return AdminCall(ctx, authenticator_, pool_, "RevokeToken", true,
                   [this, request, response](const auth::Identity& caller) {
                     absl::StatusOr<auth::TokenRecord> revoked =
                         tokens_.Revoke(request->id());
                     auth::Audit({.method = "RevokeToken",
                                  .subject = caller.subject,
                                  .tenant = revoked.ok() ? revoked->tenant : "",
                                  .object = request->id(),
                                  .outcome = revoked.status()});
                     if (!revoked.ok()) return revoked.status();
                     *response->mutable_token() = ToProto(*revoked);
                     return absl::OkStatus();
                   });
}

}  // namespace server
