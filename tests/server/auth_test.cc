// server/auth: API tokens over a real SQLite store, JWTs signed with real
// keys (OpenSSL, libjwt), the authenticator, roles and the audit line.
#include <jwt.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/auth/api_tokens.h"
#include "server/auth/audit.h"
#include "server/auth/authenticator.h"
#include "server/auth/jwt_verifier.h"
#include "server/store/sqlite_task_store.h"
#include "tests/server/test_util.h"

namespace server::auth {
namespace {

using crucible::v1::ROLE_ADMIN;
using crucible::v1::ROLE_READER;
using crucible::v1::ROLE_USER;

// --- API tokens ---

class ApiTokensTest : public testing::Test {
 protected:
  void SetUp() override {
    path_ = testing_util::FreshDir() + "/tasks.db";
    auto store = SqliteTaskStore::Open({.path = path_});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    auto tokens = ApiTokens::Create(*store_, clock_);
    ASSERT_TRUE(tokens.ok()) << tokens.status();
    tokens_ = *std::move(tokens);
  }
  std::pair<TokenRecord, std::string> Issue(NewToken spec) {
    auto issued = tokens_->Issue(std::move(spec));
    EXPECT_TRUE(issued.ok()) << issued.status();
    return issued.ok() ? *std::move(issued)
                       : std::pair<TokenRecord, std::string>();
  }

  common::FakeClock clock_;
  std::string path_;
  std::unique_ptr<SqliteTaskStore> store_;
  std::unique_ptr<ApiTokens> tokens_;
};

TEST_F(ApiTokensTest, AnIssuedTokenActsForItsTenantWithItsRole) {
  auto [record, bearer] = Issue(
      {.name = "ci", .tenant = "team-a", .role = ROLE_USER, .created_by = "t"});
  EXPECT_TRUE(absl::StartsWith(bearer, "cru_" + record.id + "_"));
  auto id = tokens_->Check(bearer);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->tenant, "team-a");
  EXPECT_EQ(id->role, ROLE_USER);
  EXPECT_TRUE(absl::StrContains(id->subject, record.id));
}

TEST_F(ApiTokensTest, AWrongSecretAnUnknownIdOrGarbageIsUnauthenticated) {
  auto [record, bearer] =
      Issue({.name = "ci", .tenant = "a", .role = ROLE_USER});
  std::string wrong = bearer;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  for (const std::string& b :
       {wrong, "cru_000000000000_" + bearer.substr(bearer.find('_', 4) + 1),
        std::string("cru_"), std::string("cru_x"), std::string("hello")}) {
    EXPECT_EQ(tokens_->Check(b).status().code(),
              absl::StatusCode::kUnauthenticated)
        << b;
  }
}

TEST_F(ApiTokensTest, ARevokedTokenStopsWorkingAndStaysRevokedAfterReopen) {
  auto [record, bearer] =
      Issue({.name = "ci", .tenant = "a", .role = ROLE_USER});
  auto revoked = tokens_->Revoke(record.id);
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_NE(revoked->revoke_time, absl::InfiniteFuture());
  EXPECT_EQ(tokens_->Check(bearer).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(tokens_->Revoke("nope").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(tokens_->Revoke(record.id).ok());  // again: no change
  tokens_.reset();
  store_.reset();
  auto store = SqliteTaskStore::Open({.path = path_});
  ASSERT_TRUE(store.ok());
  auto tokens = ApiTokens::Create(**store, clock_);
  ASSERT_TRUE(tokens.ok());
  EXPECT_EQ((*tokens)->Check(bearer).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(ApiTokensTest, ATokenExpiresAfterItsTtl) {
  auto [record, bearer] = Issue(
      {.name = "ci", .tenant = "a", .role = ROLE_USER, .ttl = absl::Hours(1)});
  EXPECT_TRUE(tokens_->Check(bearer).ok());
  clock_.Advance(absl::Minutes(59));
  EXPECT_TRUE(tokens_->Check(bearer).ok());
  clock_.Advance(absl::Minutes(1));
  EXPECT_EQ(tokens_->Check(bearer).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(ApiTokensTest, OnlyTheSecretsHashIsStored) {
  auto [record, bearer] =
      Issue({.name = "ci", .tenant = "a", .role = ROLE_USER});
  // All of cru_<hex id>_<secret> after the id: the secret is web-safe
  // base64 and may hold '_' itself.
  const std::string secret = bearer.substr(bearer.find('_', 4) + 1);
  ASSERT_GE(secret.size(), 40u) << bearer;
  tokens_.reset();
  store_.reset();  // everything on disk
  for (const char* suffix : {"", "-wal"}) {
    std::ifstream in(path_ + suffix, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    EXPECT_FALSE(absl::StrContains(bytes.str(), secret)) << suffix;
    EXPECT_FALSE(absl::StrContains(bytes.str(), bearer)) << suffix;
  }
}

TEST_F(ApiTokensTest, RefreshSeesTokensAnotherServerMadeOrRevoked) {
  auto other = ApiTokens::Create(*store_, clock_);  // a second server
  ASSERT_TRUE(other.ok());
  auto issued =
      (*other)->Issue({.name = "x", .tenant = "a", .role = ROLE_USER});
  ASSERT_TRUE(issued.ok());
  EXPECT_FALSE(tokens_->Check(issued->second).ok());
  ASSERT_TRUE(tokens_->Refresh().ok());
  EXPECT_TRUE(tokens_->Check(issued->second).ok());
  ASSERT_TRUE((*other)->Revoke(issued->first.id).ok());
  ASSERT_TRUE(tokens_->Refresh().ok());
  EXPECT_FALSE(tokens_->Check(issued->second).ok());
}

TEST_F(ApiTokensTest, BadRequestsAreRefusedAndNothingIsStored) {
  for (NewToken spec :
       {NewToken{.name = "", .tenant = "a", .role = ROLE_USER},
        NewToken{.name = "n", .tenant = "", .role = ROLE_USER},
        NewToken{.name = "n", .tenant = "a b", .role = ROLE_USER},
        NewToken{.name = "n", .tenant = "a"},
        NewToken{.name = "n",
        .tenant = "a",
        .role = ROLE_USER,
        .ttl = absl::Seconds(-1)}}) {
    EXPECT_EQ(tokens_->Issue(spec).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(tokens_->List().empty());
  ASSERT_TRUE(tokens_->Refresh().ok());
  EXPECT_TRUE(tokens_->List().empty());
}

// --- JWTs ---

struct OsslKey {
  EVP_PKEY* pkey = nullptr;
  ~OsslKey() { EVP_PKEY_free(pkey); }
};

std::string PrivatePem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, n);
  BIO_free(bio);
  return pem;
}

std::string PublicPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, n);
  BIO_free(bio);
  return pem;
}

std::string B64(const std::string& raw) {
  return absl::WebSafeBase64Escape(raw);
}

std::string BnParam(EVP_PKEY* key, const char* name) {
  BIGNUM* bn = nullptr;
  EVP_PKEY_get_bn_param(key, name, &bn);
  std::string out(BN_num_bytes(bn), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  BN_free(bn);
  return out;
}

nlohmann::json RsaJwk(EVP_PKEY* key, const std::string& kid) {
  return {{"kty", "RSA"},
          {"kid", kid},
          {"use", "sig"},
          {"n", B64(BnParam(key, OSSL_PKEY_PARAM_RSA_N))},
          {"e", B64(BnParam(key, OSSL_PKEY_PARAM_RSA_E))}};
}

nlohmann::json EcJwk(EVP_PKEY* key, const std::string& kid) {
  unsigned char point[133];
  size_t n = 0;
  EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point,
                                  sizeof(point), &n);
  const size_t half = (n - 1) / 2;
  return {
      {"kty", "EC"},
      {"kid", kid},
      {"crv", "P-256"},
      {"x", B64(std::string(reinterpret_cast<char*>(point + 1), half))},
      {"y", B64(std::string(reinterpret_cast<char*>(point + 1 + half), half))}};
}

class JwtTest : public testing::Test {
 protected:
  void SetUp() override {
    rsa_.pkey = EVP_RSA_gen(2048);
    other_.pkey = EVP_RSA_gen(2048);
    ec_.pkey = EVP_EC_gen("P-256");
    ASSERT_TRUE(rsa_.pkey && other_.pkey && ec_.pkey);
    jwks_ = testing_util::FreshDir() + "/jwks.json";
    WriteJwks({RsaJwk(rsa_.pkey, "rsa-1"), EcJwk(ec_.pkey, "ec-1")});
    auto v = JwtVerifier::Create({.jwks_file = jwks_,
                                  .issuer = "https://issuer.example",
                                  .audience = "crucible",
                                  .tenant_claim = "kubernetes.io/namespace"},
                                 clock_);
    ASSERT_TRUE(v.ok()) << v.status();
    verifier_ = *std::move(v);
  }
  void WriteJwks(const std::vector<nlohmann::json>& keys) {
    nlohmann::json doc = nlohmann::json::object();
    doc["keys"] = keys;
    std::ofstream(jwks_) << doc.dump();
  }
  // Claims valid for the verifier, to be changed per test.
  nlohmann::json Claims() {
    const int64_t now = absl::ToUnixSeconds(clock_.Now());
    return {{"iss", "https://issuer.example"},
            {"aud", {"other", "crucible"}},
            {"sub", "system:serviceaccount:team-a:ci"},
            {"exp", now + 600},
            {"kubernetes.io", {{"namespace", "team-a"}}}};
  }
  std::string Sign(const nlohmann::json& claims, jwt_alg_t alg,
                   const std::string& key, const char* kid) {
    jwt_t* jwt = nullptr;
    jwt_new(&jwt);
    jwt_add_grants_json(jwt, claims.dump().c_str());
    if (kid != nullptr) jwt_add_header(jwt, "kid", kid);
    jwt_set_alg(jwt, alg,
                key.empty()
                    ? nullptr
                    : reinterpret_cast<const unsigned char*>(key.data()),
                static_cast<int>(key.size()));
    char* out = jwt_encode_str(jwt);
    std::string token = out != nullptr ? out : "";
    free(out);
    jwt_free(jwt);
    return token;
  }
  std::string Rs256(const nlohmann::json& claims, const char* kid = "rsa-1") {
    return Sign(claims, JWT_ALG_RS256, PrivatePem(rsa_.pkey), kid);
  }
  absl::StatusCode CodeOf(const std::string& token) {
    return verifier_->Verify(token).status().code();
  }

  common::FakeClock clock_{absl::FromUnixSeconds(1'800'000'000)};
  OsslKey rsa_, other_, ec_;
  std::string jwks_;
  std::unique_ptr<JwtVerifier> verifier_;
};

TEST_F(JwtTest, AValidTokenGivesTheTenantFromANestedClaim) {
  auto id = verifier_->Verify(Rs256(Claims()));
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->tenant, "team-a");
  EXPECT_EQ(id->role, ROLE_USER);  // the default role
  EXPECT_EQ(id->subject,
            "jwt:https://issuer.example:system:serviceaccount:team-a:ci");
  // EC keys, and a role claim.
  nlohmann::json claims = Claims();
  claims["crucible_role"] = "reader";
  id = verifier_->Verify(
      Sign(claims, JWT_ALG_ES256, PrivatePem(ec_.pkey), "ec-1"));
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->role, ROLE_READER);
}

TEST_F(JwtTest, IssuerAudienceExpiryNotBeforeAndTenantAreChecked) {
  const int64_t now = absl::ToUnixSeconds(clock_.Now());
  auto with = [&](const char* key, nlohmann::json value) {
    nlohmann::json c = Claims();
    if (value.is_null()) {
      c.erase(key);
    } else {
      c[key] = value;
    }
    return Rs256(c);
  };
  const absl::StatusCode kUnauth = absl::StatusCode::kUnauthenticated;
  EXPECT_EQ(CodeOf(with("iss", "https://evil.example")), kUnauth);
  EXPECT_EQ(CodeOf(with("aud", "other")), kUnauth);
  EXPECT_EQ(CodeOf(with("aud", nullptr)), kUnauth);
  EXPECT_EQ(CodeOf(with("exp", now - 60)), kUnauth);
  EXPECT_EQ(CodeOf(with("exp", nullptr)), kUnauth);
  EXPECT_EQ(CodeOf(with("nbf", now + 600)), kUnauth);
  EXPECT_EQ(CodeOf(with("kubernetes.io", nullptr)), kUnauth);
  EXPECT_EQ(CodeOf(with("kubernetes.io", {{"namespace", "bad tenant"}})),
            kUnauth);
  EXPECT_EQ(CodeOf(with("crucible_role", "root")), kUnauth);
  // Within the leeway: still valid.
  EXPECT_TRUE(verifier_->Verify(with("exp", now + 5)).ok());
  clock_.Advance(absl::Seconds(20));
  EXPECT_TRUE(verifier_->Verify(with("exp", now + 5)).ok());
  clock_.Advance(absl::Seconds(20));
  EXPECT_EQ(CodeOf(with("exp", now + 5)), kUnauth);
}

TEST_F(JwtTest, ForeignKeysUnknownKidsAndSymmetricOrNoAlgorithmsAreRefused) {
  const absl::StatusCode kUnauth = absl::StatusCode::kUnauthenticated;
  EXPECT_EQ(
      CodeOf(Sign(Claims(), JWT_ALG_RS256, PrivatePem(other_.pkey), "rsa-1")),
      kUnauth);
  EXPECT_EQ(CodeOf(Rs256(Claims(), "rsa-9")), kUnauth);
  // HS256 keyed with the public key (the classic confusion attack).
  EXPECT_EQ(
      CodeOf(Sign(Claims(), JWT_ALG_HS256, PublicPem(rsa_.pkey), "rsa-1")),
      kUnauth);
  EXPECT_EQ(CodeOf(Sign(Claims(), JWT_ALG_NONE, "", "rsa-1")), kUnauth);
  // An RSA token pointed at the EC key.
  EXPECT_EQ(CodeOf(Rs256(Claims(), "ec-1")), kUnauth);
  EXPECT_EQ(CodeOf("not.a.jwt"), kUnauth);
  // A tampered payload.
  std::string token = Rs256(Claims());
  const size_t dot = token.find('.');
  nlohmann::json evil = Claims();
  evil["kubernetes.io"]["namespace"] = "team-b";
  std::string payload;
  absl::WebSafeBase64Escape(evil.dump(), &payload);
  token = token.substr(0, dot + 1) + payload +
          token.substr(token.find('.', dot + 1));
  EXPECT_EQ(CodeOf(token), kUnauth);
}

TEST_F(JwtTest, ARotatedJwksIsPickedUpWithoutARestart) {
  WriteJwks({RsaJwk(other_.pkey, "rsa-2")});
  // Same second as the last load: an mtime granularity of 1 s must not
  // hide the change.
  std::filesystem::last_write_time(
      jwks_, std::filesystem::last_write_time(jwks_) + std::chrono::seconds(2));
  clock_.Advance(absl::Seconds(2));
  auto id = verifier_->Verify(
      Sign(Claims(), JWT_ALG_RS256, PrivatePem(other_.pkey), "rsa-2"));
  EXPECT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(CodeOf(Rs256(Claims())), absl::StatusCode::kUnauthenticated);
  // A broken file keeps the keys in force.
  std::ofstream(jwks_) << "{not json";
  std::filesystem::last_write_time(
      jwks_, std::filesystem::last_write_time(jwks_) + std::chrono::seconds(4));
  clock_.Advance(absl::Seconds(2));
  EXPECT_TRUE(verifier_
                  ->Verify(Sign(Claims(), JWT_ALG_RS256,
                                PrivatePem(other_.pkey), "rsa-2"))
                  .ok());
}

TEST(JwksTest, AFileWithoutUsableKeysIsRefusedAtStart) {
  EXPECT_FALSE(ParseJwks("{}").ok());
  EXPECT_FALSE(
      ParseJwks(R"({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})").ok());
  EXPECT_FALSE(ParseJwks(R"({"keys": [{"kty": "RSA", "n": "!!"}]})").ok());
  common::FakeClock clock;
  EXPECT_FALSE(
      JwtVerifier::Create(
          {.jwks_file = "/nonexistent", .issuer = "i", .audience = "a"}, clock)
          .ok());
}

// --- The authenticator and roles ---

TEST(AuthenticatorTest, MissingOrMalformedCredentialsAreUnauthenticated) {
  Authenticator strict({}, nullptr, nullptr);
  for (std::optional<absl::string_view> header :
       {std::optional<absl::string_view>(),
        std::optional<absl::string_view>("Basic dXNlcjpwYXNz"),
        std::optional<absl::string_view>("Bearer "),
        std::optional<absl::string_view>("Bearer cru_abc_def")}) {
    EXPECT_EQ(strict.Authenticate(header).status().code(),
              absl::StatusCode::kUnauthenticated);
  }
  Authenticator open({.allow_anonymous = true, .anonymous_tenant = "dev"},
                     nullptr, nullptr);
  auto anonymous = open.Authenticate(std::nullopt);
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(anonymous->tenant, "dev");
  EXPECT_EQ(anonymous->role, ROLE_USER);
  // Credentials that are present must be valid, anonymous or not.
  EXPECT_FALSE(open.Authenticate("Bearer nonsense").ok());
}

TEST(AuthenticatorTest, TheAdminTokenIsAnAdminOfItsTenant) {
  Authenticator auth(
      {.admin_token = "0123456789abcdef-admin", .admin_tenant = "ops"}, nullptr,
      nullptr);
  auto id = auth.Authenticate("bearer 0123456789abcdef-admin");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->role, ROLE_ADMIN);
  EXPECT_EQ(id->tenant, "ops");
  EXPECT_FALSE(auth.Authenticate("Bearer 0123456789abcdef-admiN").ok());
}

TEST(AuthorizeTest, EachRoleHasItsRightsAndNoMore) {
  auto allowed = [](crucible::v1::Role role, Right right) {
    absl::Status s =
        Authorize({.subject = "s", .tenant = "t", .role = role}, right);
    EXPECT_TRUE(s.ok() || absl::IsPermissionDenied(s)) << s;
    return s.ok();
  };
  EXPECT_TRUE(allowed(ROLE_READER, Right::kRead));
  EXPECT_FALSE(allowed(ROLE_READER, Right::kWrite));
  EXPECT_TRUE(allowed(ROLE_USER, Right::kWrite));
  EXPECT_FALSE(allowed(ROLE_USER, Right::kAdmin));
  EXPECT_TRUE(allowed(ROLE_ADMIN, Right::kAdmin));
  EXPECT_FALSE(allowed(crucible::v1::ROLE_UNSPECIFIED, Right::kRead));
}

TEST(AuditTest, OneJsonLinePerCallWithIdentityTenantObjectAndOutcome) {
  nlohmann::json line = nlohmann::json::parse(
      AuditLine({.method = "CancelTask",
                 .subject = "token:abc (ci)",
                 .tenant = "team-a",
                 .object = "t-1",
                 .outcome = absl::NotFoundError("task t-1 not found")}));
  EXPECT_EQ(line["audit"], "CancelTask");
  EXPECT_EQ(line["subject"], "token:abc (ci)");
  EXPECT_EQ(line["tenant"], "team-a");
  EXPECT_EQ(line["object"], "t-1");
  EXPECT_EQ(line["code"], "NOT_FOUND");
  EXPECT_EQ(line["message"], "task t-1 not found");
  EXPECT_EQ(AuditLine({.method = "CreateTask", .outcome = absl::OkStatus()})
                .find('\n'),
            std::string::npos);
}

}  // namespace
}  // namespace server::auth
