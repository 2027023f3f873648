#include "cli/connection.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace cli {

absl::StatusOr<Connection> Connection::Open(const ConnectionArgs& args) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (args.tls) {
    grpc::SslCredentialsOptions options;
    if (!args.ca_cert.empty()) {
      std::ifstream in(args.ca_cert, std::ios::binary);
      std::stringstream pem;
      pem << in.rdbuf();
      if (!in.good() && !in.eof()) {
        return absl::InvalidArgumentError(
            absl::StrCat("cannot read --ca-cert ", args.ca_cert));
      }
      if (pem.str().empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--ca-cert ", args.ca_cert, " is missing or empty"));
      }
      options.pem_root_certs = pem.str();
    }
    credentials = grpc::SslCredentials(options);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  // The token goes into each call's metadata rather than call credentials:
  // gRPC refuses call credentials on plaintext channels, and the token must
  // reach a server behind a TLS-terminating proxy all the same.
  return Connection(grpc::CreateChannel(args.server, credentials), args.token);
}

std::unique_ptr<grpc::ClientContext> Connection::UnaryContext() const {
  std::unique_ptr<grpc::ClientContext> ctx = StreamContext();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + kUnaryDeadline));
  return ctx;
}

std::unique_ptr<grpc::ClientContext> Connection::StreamContext() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!token_.empty())
    ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token_));
  return ctx;
}

}  // namespace cli
