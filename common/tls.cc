#include "common/tls.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace common {
namespace {

constexpr char kWhatToPass[] =
    "pass --tls_cert, --tls_key and --tls_ca (mutual TLS), or --insecure for "
    "plaintext";

// INVALID_ARGUMENT unless `path` is a readable file holding a PEM block.
// The file watcher would only log and retry, so a typo would otherwise show
// up as failed handshakes instead of a refused start.
absl::Status CheckPemFile(absl::string_view flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": cannot read ", path));
  }
  std::stringstream text;
  text << in.rdbuf();
  if (!absl::StrContains(text.str(), "-----BEGIN ")) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", path, " holds no PEM data"));
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::experimental::FileWatcherCertificateProvider> Provider(
    const TlsOptions& options) {
  const int64_t seconds =
      std::max<int64_t>(1, absl::ToInt64Seconds(options.reload_interval));
  return std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      options.key_file, options.cert_file, options.ca_file,
      static_cast<unsigned int>(seconds));
}

// The host part of host:port, [v6]:port, or a bare host.
absl::string_view HostOf(absl::string_view address) {
  if (absl::StartsWith(address, "[")) {
    size_t end = address.find(']');
    return end == absl::string_view::npos ? address.substr(1)
                                          : address.substr(1, end - 1);
  }
  size_t colon = address.rfind(':');
  if (colon != absl::string_view::npos &&
      address.find(':') == colon) {  // one colon: host:port
    return address.substr(0, colon);
  }
  return address;  // no port, or a bare IPv6 address
}

}  // namespace

bool IsLoopbackAddress(absl::string_view listen_address) {
  if (absl::StartsWith(listen_address, "unix:")) return true;
  for (absl::string_view scheme : {"ipv4:", "ipv6:", "dns:///"}) {
    if (absl::StartsWith(listen_address, scheme)) {
      listen_address.remove_prefix(scheme.size());
    }
  }
  const std::string host = absl::AsciiStrToLower(HostOf(listen_address));
  if (host == "localhost" || host == "::1") return true;
  if (absl::StartsWith(host, "127.")) {
    int parts = 0;
    for (absl::string_view part : absl::StrSplit(host, '.')) {
      int n = 0;
      if (!absl::SimpleAtoi(part, &n) || n < 0 || n > 255) return false;
      ++parts;
    }
    return parts == 4;
  }
  return false;
}

absl::Status ValidateTlsOptions(const TlsOptions& options,
                                absl::string_view listen_address) {
  const bool any_file = !options.cert_file.empty() ||
                        !options.key_file.empty() || !options.ca_file.empty();
  if (options.insecure) {
    if (any_file) {
      return absl::InvalidArgumentError(
          "--insecure excludes --tls_cert, --tls_key and --tls_ca: pass "
          "either");
    }
    if (!listen_address.empty() && !options.insecure_listen_any &&
        !IsLoopbackAddress(listen_address)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "refusing plaintext on ", listen_address,
          ", which is not a loopback address: serve TLS (--tls_cert, "
          "--tls_key, --tls_ca), listen on 127.0.0.1, or add "
          "--insecure_listen_any if something else encrypts this network"));
    }
    return absl::OkStatus();
  }
  if (options.insecure_listen_any) {
    return absl::InvalidArgumentError(
        "--insecure_listen_any only goes with --insecure");
  }
  if (!any_file) {
    return absl::InvalidArgumentError(
        absl::StrCat("no transport security configured: ", kWhatToPass));
  }
  const std::pair<const char*, const std::string*> files[] = {
      {"--tls_cert", &options.cert_file},
      {"--tls_key", &options.key_file},
      {"--tls_ca", &options.ca_file}};
  for (const auto& [flag, path] : files) {
    if (path->empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag,
                       " is missing: TLS needs --tls_cert, --tls_key "
                       "and --tls_ca (or --insecure for plaintext)"));
    }
  }
  for (const auto& [flag, path] : files)
    RETURN_IF_ERROR(CheckPemFile(flag, *path));
  if (options.reload_interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError(
        "--tls_reload_interval: must be at least 1s");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsOptions& options, absl::string_view listen_address,
    ClientCertificates client_certificates) {
  RETURN_IF_ERROR(ValidateTlsOptions(options, listen_address));
  if (options.insecure) return grpc::InsecureServerCredentials();
  grpc::experimental::TlsServerCredentialsOptions tls(Provider(options));
  tls.watch_root_certs();
  tls.watch_identity_key_cert_pairs();
  tls.set_cert_request_type(
      client_certificates == ClientCertificates::kRequireAndVerify
          ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
          : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  return grpc::experimental::TlsServerCredentials(tls);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const TlsOptions& options) {
  RETURN_IF_ERROR(ValidateTlsOptions(options, ""));
  if (options.insecure) return grpc::InsecureChannelCredentials();
  grpc::experimental::TlsChannelCredentialsOptions tls;
  tls.set_certificate_provider(Provider(options));
  tls.watch_root_certs();
  tls.watch_identity_key_cert_pairs();
  // Verify the chain and the host name (gRPC's default verifier).
  tls.set_verify_server_certs(true);
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc::experimental::TlsCredentials(tls);
  if (credentials == nullptr) {
    return absl::InvalidArgumentError("gRPC refused the TLS options");
  }
  return credentials;
}

void RouteToServingServer(const std::string& target,
                          grpc::ChannelArguments& args) {
  const bool listed = (absl::StartsWith(target, "ipv4:") ||
                       absl::StartsWith(target, "ipv6:")) &&
                      absl::StrContains(target, ',');
  if (!listed) return;
  args.SetServiceConfigJSON(R"({"loadBalancingConfig": [{"round_robin": {}}],)"
                            R"( "healthCheckConfig": {"serviceName": ""}})");
}

void SetTlsTargetName(grpc::ChannelArguments& args, const std::string& name) {
  if (!name.empty()) args.SetSslTargetNameOverride(name);
}

std::vector<std::string> PeerIdentities(const grpc::AuthContext& context) {
  std::vector<std::string> identities;
  if (!context.IsPeerAuthenticated()) return identities;
  for (const char* property :
       {GRPC_X509_SAN_PROPERTY_NAME, GRPC_PEER_URI_PROPERTY_NAME,
        GRPC_X509_CN_PROPERTY_NAME}) {
    for (const grpc::string_ref& value : context.FindPropertyValues(property)) {
      std::string identity(value.data(), value.size());
      if (std::find(identities.begin(), identities.end(), identity) ==
          identities.end()) {
        identities.push_back(std::move(identity));
      }
    }
  }
  return identities;
}

PeerAuthorizer::PeerAuthorizer(std::vector<std::string> allowed)
    : allowed_(std::move(allowed)) {}

bool PeerAuthorizer::Allows(absl::string_view identity) const {
  for (const std::string& entry : allowed_) {
    if (absl::EndsWith(entry, "*")) {
      if (absl::StartsWith(
              identity, absl::string_view(entry).substr(0, entry.size() - 1)))
        return true;
    } else if (identity == entry) {
      return true;
    }
  }
  return false;
}

absl::Status PeerAuthorizer::Check(const grpc::AuthContext& context) const {
  std::vector<std::string> identities = PeerIdentities(context);
  if (identities.empty()) {
    return absl::UnauthenticatedError(
        "this service needs a client certificate signed by the configured CA");
  }
  for (const std::string& identity : identities) {
    if (Allows(identity)) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      absl::StrCat("certificate identity ", absl::StrJoin(identities, ", "),
                   " is not allowed"));
}

grpc::Status PeerAuthorizer::CheckCall(
    const grpc::ServerContextBase& context) const {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  absl::Status s =
      auth == nullptr
          ? absl::UnauthenticatedError("no transport security context")
          : Check(*auth);
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      std::string(s.message()));
}

}  // namespace common
