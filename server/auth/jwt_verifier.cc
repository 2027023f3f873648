#include "server/auth/jwt_verifier.h"

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"

namespace server::auth {
namespace {

using Json = nlohmann::json;

absl::Status Unauthenticated(absl::string_view why) {
  return absl::UnauthenticatedError(
      absl::StrCat("the JWT is not valid: ", why));
}

absl::StatusOr<std::string> Base64Url(const Json& key, const char* field) {
  std::string out;
  if (!key.contains(field) || !key[field].is_string() ||
      !absl::WebSafeBase64Unescape(key[field].get<std::string>(), &out) ||
      out.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("JWKS key: \"", field, "\" missing or not base64url"));
  }
  return out;
}

// Owns what OpenSSL hands out.
struct OsslFree {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
};
template <typename T>
using Ossl = std::unique_ptr<T, OsslFree>;

// The PEM (SubjectPublicKeyInfo) of a public key given as OpenSSL params.
absl::StatusOr<std::string> PemOf(const char* type, OSSL_PARAM_BLD* bld) {
  Ossl<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(bld));
  Ossl<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) !=
          1) {
    return absl::InvalidArgumentError(
        absl::StrCat("JWKS key: not a valid ", type, " public key"));
  }
  Ossl<EVP_PKEY> pkey(raw);
  Ossl<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), pkey.get()) != 1) {
    return absl::InternalError("cannot write a public key as PEM");
  }
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, size);
}

absl::StatusOr<JwtVerifier::Key> KeyOf(const Json& key) {
  const std::string kty = key.value("kty", "");
  JwtVerifier::Key out;
  Ossl<OSSL_PARAM_BLD> bld(OSSL_PARAM_BLD_new());
  if (kty == "RSA") {
    ASSIGN_OR_RETURN(std::string n, Base64Url(key, "n"));
    ASSIGN_OR_RETURN(std::string e, Base64Url(key, "e"));
    Ossl<BIGNUM> bn_n(BN_bin2bn(
        reinterpret_cast<const unsigned char*>(n.data()), n.size(), nullptr));
    Ossl<BIGNUM> bn_e(BN_bin2bn(
        reinterpret_cast<const unsigned char*>(e.data()), e.size(), nullptr));
    if (!bn_n || !bn_e ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) !=
            1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) !=
            1) {
      return absl::InternalError("cannot build an RSA key");
    }
    ASSIGN_OR_RETURN(out.pem, PemOf("RSA", bld.get()));
    out.rsa = true;
    return out;
  }
  // EC
  out.curve = key.value("crv", "");
  const char* group = out.curve == "P-256"   ? "prime256v1"
                      : out.curve == "P-384" ? "secp384r1"
                                             : nullptr;
  if (group == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "JWKS key: curve \"", out.curve, "\" not supported (P-256 or P-384)"));
  }
  ASSIGN_OR_RETURN(std::string x, Base64Url(key, "x"));
  ASSIGN_OR_RETURN(std::string y, Base64Url(key, "y"));
  std::string point = absl::StrCat("\x04", x, y);
  if (OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME,
                                      group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY,
                                       point.data(), point.size()) != 1) {
    return absl::InternalError("cannot build an EC key");
  }
  ASSIGN_OR_RETURN(out.pem, PemOf("EC", bld.get()));
  return out;
}

// The value at `path` ('/' descends into objects), or null.
const Json* ClaimAt(const Json& claims, absl::string_view path) {
  const Json* at = &claims;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (!at->is_object()) return nullptr;
    auto it = at->find(std::string(part));
    if (it == at->end()) return nullptr;
    at = &*it;
  }
  return at;
}

// What `alg` needs of a key; nullopt for algorithms we refuse (none, HS*,
// which would verify with a public key as an HMAC secret).
std::optional<std::pair<bool, std::string>> KeyKindFor(jwt_alg_t alg) {
  switch (alg) {
    case JWT_ALG_RS256:
    case JWT_ALG_RS384:
    case JWT_ALG_RS512:
      return std::make_pair(true, std::string());
    case JWT_ALG_ES256:
      return std::make_pair(false, std::string("P-256"));
    case JWT_ALG_ES384:
      return std::make_pair(false, std::string("P-384"));
    default:
      return std::nullopt;
  }
}

struct JwtFree {
  void operator()(jwt_t* j) const { jwt_free(j); }
};

}  // namespace

absl::StatusOr<absl::flat_hash_map<std::string, JwtVerifier::Key>> ParseJwks(
    absl::string_view json) {
  Json doc = Json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("keys") ||
      !doc["keys"].is_array()) {
    return absl::InvalidArgumentError(
        "JWKS: not a JSON object with a \"keys\" array");
  }
  absl::flat_hash_map<std::string, JwtVerifier::Key> keys;
  int n = 0;
  for (const Json& key : doc["keys"]) {
    ++n;
    if (!key.is_object()) continue;
    const std::string kty = key.value("kty", "");
    if ((kty != "RSA" && kty != "EC") || key.value("use", "sig") != "sig") {
      continue;
    }
    ASSIGN_OR_RETURN(JwtVerifier::Key k, KeyOf(key));
    std::string kid = key.value("kid", absl::StrCat("#", n));
    keys[kid] = std::move(k);
  }
  if (keys.empty()) {
    return absl::InvalidArgumentError("JWKS: no RSA or EC signing key");
  }
  return keys;
}

absl::StatusOr<std::unique_ptr<JwtVerifier>> JwtVerifier::Create(
    JwtOptions options, const common::Clock& clock) {
  if (options.issuer.empty() || options.audience.empty()) {
    return absl::InvalidArgumentError(
        "JWT verification needs an issuer and an audience");
  }
  if (options.tenant_claim.empty()) {
    return absl::InvalidArgumentError("JWT verification needs a tenant claim");
  }
  std::unique_ptr<JwtVerifier> v(new JwtVerifier(std::move(options), clock));
  RETURN_IF_ERROR(v->MaybeReload());
  return v;
}

absl::Status JwtVerifier::MaybeReload() const {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_.Now();
  if (!keys_.empty() && now < checked_ + options_.reload_interval) {
    return absl::OkStatus();
  }
  checked_ = now;
  std::error_code ec;
  auto mtime = std::filesystem::last_write_time(options_.jwks_file, ec);
  if (!ec && !keys_.empty() && mtime == mtime_) return absl::OkStatus();
  std::ifstream in(options_.jwks_file);
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<absl::flat_hash_map<std::string, Key>> keys =
      ec || !in ? absl::InvalidArgumentError(
                      absl::StrCat("cannot read ", options_.jwks_file))
                : ParseJwks(text.str());
  if (!keys.ok()) {
    if (keys_.empty()) return keys.status();
    LOG(WARNING) << "keeping the JWKS keys loaded before: " << keys.status();
    return absl::OkStatus();
  }
  if (!keys_.empty()) LOG(INFO) << "JWKS reloaded from " << options_.jwks_file;
  keys_ = *std::move(keys);
  mtime_ = mtime;
  return absl::OkStatus();
}

absl::StatusOr<Identity> JwtVerifier::Verify(absl::string_view token) const {
  MaybeReload().IgnoreError();  // keeps the keys it had
  const std::string text(token);
  // Unverified, only to choose the key: libjwt checks the signature below.
  jwt_t* raw = nullptr;
  if (jwt_decode(&raw, text.c_str(), nullptr, 0) != 0) {
    return Unauthenticated("malformed");
  }
  std::unique_ptr<jwt_t, JwtFree> unverified(raw);
  // Decoded without a key, libjwt reports the algorithm as none: read the
  // header's.
  const char* alg_name = jwt_get_header(unverified.get(), "alg");
  const jwt_alg_t alg =
      alg_name != nullptr ? jwt_str_alg(alg_name) : JWT_ALG_INVAL;
  const auto kind = KeyKindFor(alg);
  if (!kind.has_value()) {
    return Unauthenticated(
        absl::StrCat("algorithm ", alg_name != nullptr ? alg_name : "(none)",
                     " not accepted (RS256, RS384, RS512, ES256, ES384)"));
  }
  const char* kid_header = jwt_get_header(unverified.get(), "kid");
  Key key;
  {
    absl::MutexLock lock(&mu_);
    if (kid_header != nullptr) {
      auto it = keys_.find(kid_header);
      if (it == keys_.end()) {
        return Unauthenticated(absl::StrCat("no key with kid ", kid_header));
      }
      key = it->second;
    } else {
      int found = 0;
      for (const auto& [kid, k] : keys_) {
        if (k.rsa == kind->first && k.curve == kind->second) {
          key = k;
          ++found;
        }
      }
      if (found != 1) {
        return Unauthenticated("no kid, and not exactly one key of its type");
      }
    }
  }
  if (key.rsa != kind->first || key.curve != kind->second) {
    return Unauthenticated("its algorithm does not match its key");
  }
  raw = nullptr;
  if (jwt_decode(&raw, text.c_str(),
                 reinterpret_cast<const unsigned char*>(key.pem.data()),
                 static_cast<int>(key.pem.size())) != 0) {
    return Unauthenticated("bad signature");
  }
  std::unique_ptr<jwt_t, JwtFree> jwt(raw);
  if (jwt_get_alg(jwt.get()) != alg) return Unauthenticated("algorithm");
  char* grants = jwt_get_grants_json(jwt.get(), nullptr);
  Json claims = Json::parse(grants ? grants : "", nullptr, false);
  free(grants);
  if (claims.is_discarded() || !claims.is_object()) {
    return Unauthenticated("claims are not a JSON object");
  }
  if (claims.value("iss", "") != options_.issuer) {
    return Unauthenticated("wrong issuer");
  }
  const Json aud = claims.value("aud", Json());
  bool aud_ok = aud.is_string() && aud.get<std::string>() == options_.audience;
  if (aud.is_array()) {
    for (const Json& a : aud) {
      aud_ok |= a.is_string() && a.get<std::string>() == options_.audience;
    }
  }
  if (!aud_ok) return Unauthenticated("wrong audience");
  const absl::Time now = clock_.Now();
  if (!claims.contains("exp") || !claims["exp"].is_number()) {
    return Unauthenticated("no exp");
  }
  if (absl::FromUnixSeconds(claims["exp"].get<int64_t>()) + options_.leeway <=
      now) {
    return Unauthenticated("expired");
  }
  if (claims.contains("nbf") && claims["nbf"].is_number() &&
      absl::FromUnixSeconds(claims["nbf"].get<int64_t>()) - options_.leeway >
          now) {
    return Unauthenticated("not valid yet (nbf)");
  }
  const Json* tenant = ClaimAt(claims, options_.tenant_claim);
  if (tenant == nullptr || !tenant->is_string() ||
      !ValidateTenant(tenant->get<std::string>()).ok()) {
    return Unauthenticated(
        absl::StrCat("no valid tenant in claim ", options_.tenant_claim));
  }
  Identity id;
  id.tenant = tenant->get<std::string>();
  id.role = options_.default_role;
  if (const Json* role = ClaimAt(claims, options_.role_claim);
      role != nullptr) {
    absl::StatusOr<crucible::v1::Role> parsed =
        ParseRole(role->is_string() ? role->get<std::string>() : "");
    if (!parsed.ok()) {
      return Unauthenticated(absl::StrCat("claim ", options_.role_claim,
                                          ": reader, user or admin"));
    }
    id.role = *parsed;
  }
  id.subject = absl::StrCat("jwt:", options_.issuer, ":",
                            claims.value("sub", std::string("?")));
  return id;
}

}  // namespace server::auth
