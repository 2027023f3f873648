#include "cli/connection.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/tls.h"

namespace cli {

namespace {

// The bytes of a PEM file named by `flag`; INVALID_ARGUMENT if unreadable
// or empty.
absl::StatusOr<std::string> ReadPem(const char* flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream pem;
  pem << in.rdbuf();
  if (!in.good() && !in.eof()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", flag, " ", path));
  }
  if (pem.str().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " ", path, " is missing or empty"));
  }
  return pem.str();
}

}  // namespace

absl::StatusOr<Connection> Connection::Open(const ConnectionArgs& args) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (args.tls) {
    grpc::SslCredentialsOptions options;
    if (!args.ca_cert.empty()) {
      ASSIGN_OR_RETURN(options.pem_root_certs,
                       ReadPem("--tls-ca", args.ca_cert));
    }
    if (!args.tls_cert.empty() || !args.tls_key.empty()) {
      ASSIGN_OR_RETURN(options.pem_cert_chain,
                       ReadPem("--tls-cert", args.tls_cert));
      ASSIGN_OR_RETURN(options.pem_private_key,
                       ReadPem("--tls-key", args.tls_key));
    }
    credentials = grpc::SslCredentials(options);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  // The token goes into each call's metadata rather than call credentials:
  // gRPC refuses call credentials on plaintext channels, and the token must
  // reach a server behind a TLS-terminating proxy all the same.
  grpc::ChannelArguments channel_args;
  if (args.tls && !args.tls_server_name.empty()) {
    channel_args.SetSslTargetNameOverride(args.tls_server_name);
  }
  common::RouteToServingServer(args.server, channel_args);
  return Connection(
      grpc::CreateCustomChannel(args.server, credentials, channel_args),
      args.token);
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
