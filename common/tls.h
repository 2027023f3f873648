#ifndef CRUCIBLE_COMMON_TLS_H_
#define CRUCIBLE_COMMON_TLS_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/auth_context.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

// Transport security of every Crucible process, from its flags to gRPC's own
// TLS credentials (OpenSSL underneath; nothing hand-written). Certificate,
// key and CA files are watched: a rotation on disk (cert-manager, a
// Kubernetes Secret update) reaches new connections without a restart.
namespace common {

// What a process was told about transport security (--tls_cert, --tls_key,
// --tls_ca, --tls_reload_interval, --insecure, --insecure_listen_any).
struct TlsOptions {
  // PEM certificate chain presented to peers (the leaf first).
  std::string cert_file;
  // PEM private key of cert_file.
  std::string key_file;
  // PEM bundle of the CAs that peers' certificates must chain to.
  std::string ca_file;
  // How often the three files are looked at for changes.
  absl::Duration reload_interval = absl::Seconds(60);
  // Plaintext, asked for explicitly; excludes the three files.
  bool insecure = false;
  // Plaintext also on a listen address that is not loopback.
  bool insecure_listen_any = false;
};

// Whether a server asks its clients for a certificate.
enum class ClientCertificates {
  // Asked for and verified against ca_file when sent; a client may come
  // without one (the server: API clients authenticate with tokens).
  kRequestAndVerify,
  // The handshake fails without a certificate that chains to ca_file (the
  // executor: only workers talk to it).
  kRequireAndVerify,
};

// INVALID_ARGUMENT, saying what to pass, unless `options` asks for either
// TLS (cert, key and CA files, all readable PEM) or plaintext, not both.
// `listen_address` (empty for a process that only dials) must be loopback
// for plaintext unless insecure_listen_any.
absl::Status ValidateTlsOptions(const TlsOptions& options,
                                absl::string_view listen_address);

// Credentials for a server listening on `listen_address`: TLS with
// `client_certificates`, or plaintext if options.insecure. Validates first.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsOptions& options, absl::string_view listen_address,
    ClientCertificates client_certificates);

// Credentials for a client of other Crucible processes: presents cert_file,
// verifies the server against ca_file and its host name (see
// TlsTargetNameArg); plaintext if options.insecure. Validates first.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const TlsOptions& options);

// Sets, in `args`, the name the server's certificate must carry instead of
// the host of the channel's target (gRPC's ssl_target_name_override): for
// targets that are IP addresses, such as the pods behind a headless
// Service. No effect if `name` is empty.
void SetTlsTargetName(grpc::ChannelArguments& args, const std::string& name);

// For a target naming several servers of one PostgreSQL store
// ("ipv4:10.0.0.1:8080,10.0.0.2:8080", one leader, the others standbys):
// round robin over the servers whose gRPC health ("") is SERVING, which is
// only the leader, so calls follow it through a failover. Other targets (a
// single address, a DNS name behind a Service) are left as they are.
void RouteToServingServer(const std::string& target,
                          grpc::ChannelArguments& args);

// True for 127.0.0.0/8, ::1, "localhost" and unix: addresses.
bool IsLoopbackAddress(absl::string_view listen_address);

// The identities of a TLS peer, from its verified certificate: subject
// alternative names (DNS, URI, e-mail, IP), then the subject's common name.
// Empty if the peer sent no certificate or the transport is plaintext.
std::vector<std::string> PeerIdentities(const grpc::AuthContext& context);

// Admits callers by the certificate they presented. Thread-safe, immutable.
class PeerAuthorizer {
 public:
  // `allowed`: identities matched exactly against PeerIdentities; an entry
  // ending in '*' matches by prefix, and "*" alone admits any certificate
  // the CA signed. Empty admits nothing.
  explicit PeerAuthorizer(std::vector<std::string> allowed);

  // OK if the peer presented a verified certificate naming an allowed
  // identity; UNAUTHENTICATED without a certificate (or over plaintext);
  // PERMISSION_DENIED for a certificate with no allowed identity.
  absl::Status Check(const grpc::AuthContext& context) const;
  // Check() on a server call's context.
  grpc::Status CheckCall(const grpc::ServerContextBase& context) const;

  const std::vector<std::string>& allowed() const { return allowed_; }

 private:
  bool Allows(absl::string_view identity) const;
  const std::vector<std::string> allowed_;
};

// A server reactor (ServerWriteReactor, ServerBidiReactor, ...) that
// finishes its call at once with `status`, for a call refused before its
// handler starts. Deletes itself.
template <typename Reactor>
class RefusedCall final : public Reactor {
 public:
  explicit RefusedCall(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace common

#endif  // CRUCIBLE_COMMON_TLS_H_
