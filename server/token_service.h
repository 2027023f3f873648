#ifndef CRUCIBLE_SERVER_TOKEN_SERVICE_H_
#define CRUCIBLE_SERVER_TOKEN_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "crucible/v1/token_service.grpc.pb.h"
#include "server/auth/api_tokens.h"
#include "server/auth/authenticator.h"
#include "server/blocking_pool.h"

namespace server {

// gRPC adapter of TokenService over ApiTokens: admins only; every call
// writes an audit line. Store writes run on `pool`. Thread-safe; the
// arguments must outlive it and the server serving it.
class TokenService final : public crucible::v1::TokenService::CallbackService {
 public:
  TokenService(auth::ApiTokens& tokens, BlockingPool& pool,
               const auth::Authenticator& authenticator)
      : tokens_(tokens), pool_(pool), authenticator_(authenticator) {}

  grpc::ServerUnaryReactor* CreateToken(
      grpc::CallbackServerContext* ctx,
      const crucible::v1::CreateTokenRequest* request,
      crucible::v1::CreateTokenResponse* response) override;
  grpc::ServerUnaryReactor* ListTokens(
      grpc::CallbackServerContext* ctx,
      const crucible::v1::ListTokensRequest* request,
      crucible::v1::ListTokensResponse* response) override;
  grpc::ServerUnaryReactor* RevokeToken(
      grpc::CallbackServerContext* ctx,
      const crucible::v1::RevokeTokenRequest* request,
      crucible::v1::RevokeTokenResponse* response) override;

 private:
  auth::ApiTokens& tokens_;
  BlockingPool& pool_;
  const auth::Authenticator& authenticator_;
};

// The listed form of a stored token.
crucible::v1::ApiToken ToProto(const auth::TokenRecord& record);

}  // namespace server

#endif  // CRUCIBLE_SERVER_TOKEN_SERVICE_H_
