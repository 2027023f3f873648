#include "server/auth/api_tokens.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "glog/logging.h"

namespace server::auth {
namespace {

constexpr size_t kIdBytes = 6;       // 12 hex digits
constexpr size_t kSecretBytes = 32;  // 256 bits

absl::Status Unauthenticated() {
  return absl::UnauthenticatedError(
      "the API token is not valid (unknown, revoked, expired or malformed)");
}

absl::Status ValidateNewToken(const NewToken& spec) {
  if (spec.name.empty() || spec.name.size() > 128) {
    return absl::InvalidArgumentError("name: 1 to 128 bytes");
  }
  for (unsigned char c : spec.name) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError("name: no control characters");
    }
  }
  RETURN_IF_ERROR(ValidateTenant(spec.tenant));
  if (spec.role == crucible::v1::ROLE_UNSPECIFIED ||
      !crucible::v1::Role_IsValid(spec.role)) {
    return absl::InvalidArgumentError(
        "role: one of ROLE_READER, ROLE_USER, ROLE_ADMIN");
  }
  if (spec.ttl < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("ttl: must not be negative");
  }
  return absl::OkStatus();
}

}  // namespace

std::string Sha256(absl::string_view data) {
  // Fetched once: EVP_sha256() would make OpenSSL 3 look the algorithm up
  // in its provider store (under a lock) on every call, every API call.
  static EVP_MD* const kSha256 = [] {
    EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    CHECK(md != nullptr) << "OpenSSL has no SHA256";
    return md;
  }();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  CHECK_EQ(
      EVP_Digest(data.data(), data.size(), digest, &size, kSha256, nullptr), 1);
  return std::string(reinterpret_cast<char*>(digest), size);
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  CHECK_EQ(RAND_bytes(reinterpret_cast<unsigned char*>(out.data()),
                      static_cast<int>(n)),
           1)
      << "OpenSSL's random generator failed";
  return out;
}

absl::StatusOr<std::unique_ptr<ApiTokens>> ApiTokens::Create(
    TokenStore& store, const common::Clock& clock) {
  std::unique_ptr<ApiTokens> tokens(new ApiTokens(store, clock));
  RETURN_IF_ERROR(tokens->Refresh());
  return tokens;
}

absl::Status ApiTokens::Refresh() {
  ASSIGN_OR_RETURN(std::vector<TokenRecord> all, store_.LoadAll());
  absl::flat_hash_map<std::string, TokenRecord> by_id;
  for (TokenRecord& t : all) {
    std::string id = t.id;
    by_id.emplace(std::move(id), std::move(t));
  }
  absl::MutexLock lock(&mu_);
  tokens_ = std::move(by_id);
  return absl::OkStatus();
}

absl::StatusOr<std::pair<TokenRecord, std::string>> ApiTokens::Issue(
    NewToken spec) {
  RETURN_IF_ERROR(ValidateNewToken(spec));
  TokenRecord record;
  record.id = absl::BytesToHexString(RandomBytes(kIdBytes));
  const std::string secret =
      absl::WebSafeBase64Escape(RandomBytes(kSecretBytes));
  record.name = std::move(spec.name);
  record.tenant = std::move(spec.tenant);
  record.role = spec.role;
  record.secret_sha256 = Sha256(secret);
  record.created_by = std::move(spec.created_by);
  record.create_time = clock_.Now();
  if (spec.ttl > absl::ZeroDuration()) {
    record.expire_time = record.create_time + spec.ttl;
  }
  RETURN_IF_ERROR(store_.Insert(record));
  {
    absl::MutexLock lock(&mu_);
    tokens_[record.id] = record;
  }
  std::string bearer = absl::StrCat(kApiTokenPrefix, record.id, "_", secret);
  return std::make_pair(std::move(record), std::move(bearer));
}

std::vector<TokenRecord> ApiTokens::List() const {
  std::vector<TokenRecord> out;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, t] : tokens_) out.push_back(t);
  }
  std::sort(
      out.begin(), out.end(), [](const TokenRecord& a, const TokenRecord& b) {
        return a.create_time != b.create_time ? a.create_time > b.create_time
                                              : a.id < b.id;
      });
  return out;
}

absl::StatusOr<TokenRecord> ApiTokens::Revoke(const std::string& id) {
  const absl::Time now = clock_.Now();
  RETURN_IF_ERROR(store_.Revoke(id, now));
  absl::MutexLock lock(&mu_);
  auto it = tokens_.find(id);
  if (it == tokens_.end()) {
    // Made by another server since our last refresh: shown as revoked now.
    TokenRecord t;
    t.id = id;
    t.revoke_time = now;
    it = tokens_.emplace(id, std::move(t)).first;
  }
  if (it->second.revoke_time == absl::InfiniteFuture()) {
    it->second.revoke_time = now;
  }
  return it->second;
}

absl::StatusOr<Identity> ApiTokens::Check(absl::string_view bearer) const {
  if (!absl::ConsumePrefix(&bearer, kApiTokenPrefix)) return Unauthenticated();
  const size_t sep = bearer.find('_');
  if (sep == absl::string_view::npos) return Unauthenticated();
  const absl::string_view id = bearer.substr(0, sep);
  const std::string hash = Sha256(bearer.substr(sep + 1));
  absl::MutexLock lock(&mu_);
  auto it = tokens_.find(id);
  if (it == tokens_.end()) return Unauthenticated();
  const TokenRecord& t = it->second;
  if (t.secret_sha256.size() != hash.size() ||
      CRYPTO_memcmp(t.secret_sha256.data(), hash.data(), hash.size()) != 0) {
    return Unauthenticated();
  }
  const absl::Time now = clock_.Now();
  if (now >= t.revoke_time || now >= t.expire_time) return Unauthenticated();
  return Identity{.subject = absl::StrCat("token:", t.id, " (", t.name, ")"),
                  .tenant = t.tenant,
                  .role = t.role};
}

}  // namespace server::auth
