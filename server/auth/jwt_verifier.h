#ifndef CRUCIBLE_SERVER_AUTH_JWT_VERIFIER_H_
#define CRUCIBLE_SERVER_AUTH_JWT_VERIFIER_H_

#include <filesystem>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "server/auth/identity.h"

namespace server::auth {

struct JwtOptions {
  // A JWKS document (RFC 7517: {"keys": [...]}) of the issuer's public
  // keys: RSA (RS256/384/512) and EC (ES256/384) keys. Read again when the
  // file changes (at most once per reload_interval), so a key rotation
  // needs no restart.
  std::string jwks_file;
  // `iss` must equal this.
  std::string issuer;
  // `aud` (a string or an array) must contain this.
  std::string audience;
  // The claim naming the tenant. A '/' descends into objects: Kubernetes
  // service-account tokens carry "kubernetes.io/namespace".
  std::string tenant_claim = "crucible_tenant";
  // The claim naming the role ("reader", "user" or "admin"); absent: the
  // default_role.
  std::string role_claim = "crucible_role";
  crucible::v1::Role default_role = crucible::v1::ROLE_USER;
  // Allowed clock skew for exp and nbf.
  absl::Duration leeway = absl::Seconds(30);
  absl::Duration reload_interval = absl::Seconds(1);
};

// Verifies JWTs against a JWKS file with libjwt: the signature with the key
// the token's `kid` names (or the only key of its type), an asymmetric `alg`
// only, then issuer, audience, exp (required) and nbf. Thread-safe.
class JwtVerifier {
 public:
  // INVALID_ARGUMENT if the options or the JWKS file are unusable.
  static absl::StatusOr<std::unique_ptr<JwtVerifier>> Create(
      JwtOptions options, const common::Clock& clock);

  // UNAUTHENTICATED, with the reason, unless `token` is valid.
  absl::StatusOr<Identity> Verify(absl::string_view token) const;

  // A key usable by libjwt: its PEM and kind.
  struct Key {
    std::string pem;
    bool rsa = false;   // else EC
    std::string curve;  // EC: "P-256", "P-384"
  };

 private:
  JwtVerifier(JwtOptions options, const common::Clock& clock)
      : options_(std::move(options)), clock_(clock) {}
  // Reads the JWKS file again if it changed and the interval passed. A file
  // that cannot be read keeps the keys already loaded (logged).
  absl::Status MaybeReload() const;

  const JwtOptions options_;
  const common::Clock& clock_;
  mutable absl::Mutex mu_;
  mutable absl::flat_hash_map<std::string, Key> keys_ ABSL_GUARDED_BY(mu_);
  mutable std::filesystem::file_time_type mtime_ ABSL_GUARDED_BY(mu_);
  mutable absl::Time checked_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// Parses a JWKS document into keys by kid (a key without kid gets "#<n>").
// Keys of other types or uses ("use": "enc") are skipped.
absl::StatusOr<absl::flat_hash_map<std::string, JwtVerifier::Key>> ParseJwks(
    absl::string_view json);

}  // namespace server::auth

#endif  // CRUCIBLE_SERVER_AUTH_JWT_VERIFIER_H_
