// common/tls without a network: which listen addresses are loopback, which
// flag combinations a process refuses, and who a PeerAuthorizer admits
// (over a fake AuthContext holding what gRPC puts there for a verified
// certificate). The real handshakes are tests/tls.
#include "common/tls.h"

#include <grpc/grpc_security_constants.h>

#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"

namespace common {
namespace {

// Properties as gRPC's TLS stack sets them; authenticated when it has a
// peer identity property name.
class FakeAuthContext final : public grpc::AuthContext {
 public:
  bool IsPeerAuthenticated() const override { return !identity_.empty(); }
  std::vector<grpc::string_ref> GetPeerIdentity() const override {
    return FindPropertyValues(identity_);
  }
  std::string GetPeerIdentityPropertyName() const override { return identity_; }
  std::vector<grpc::string_ref> FindPropertyValues(
      const std::string& name) const override {
    std::vector<grpc::string_ref> out;
    auto [begin, end] = properties_.equal_range(name);
    for (auto it = begin; it != end; ++it) out.emplace_back(it->second);
    return out;
  }
  grpc::AuthPropertyIterator begin() const override { return Iterator(); }
  grpc::AuthPropertyIterator end() const override { return Iterator(); }
  void AddProperty(const std::string& key,
                   const grpc::string_ref& value) override {
    properties_.emplace(key, std::string(value.data(), value.size()));
  }
  bool SetPeerIdentityPropertyName(const std::string& name) override {
    identity_ = name;
    return true;
  }

 private:
  struct Iterator : grpc::AuthPropertyIterator {};
  std::multimap<std::string, std::string> properties_;
  std::string identity_;
};

// A context as for a verified certificate with these SANs and CN.
FakeAuthContext Certificate(const std::vector<std::string>& sans,
                            const std::string& cn) {
  FakeAuthContext c;
  for (const std::string& san : sans) {
    c.AddProperty(GRPC_X509_SAN_PROPERTY_NAME, san);
  }
  c.AddProperty(GRPC_X509_CN_PROPERTY_NAME, cn);
  c.SetPeerIdentityPropertyName(sans.empty() ? GRPC_X509_CN_PROPERTY_NAME
                                             : GRPC_X509_SAN_PROPERTY_NAME);
  return c;
}

TEST(TlsTest, LoopbackAddresses) {
  for (const char* a :
       {"127.0.0.1:8080", "127.1.2.3:0", "localhost:1", "[::1]:8080",
        "LOCALHOST:1", "unix:///tmp/s.sock", "ipv4:127.0.0.1:1"}) {
    EXPECT_TRUE(IsLoopbackAddress(a)) << a;
  }
  for (const char* a : {"0.0.0.0:8080", "[::]:8080", ":8080", "10.0.0.1:1",
                        "crucible-server:8080", "127.0.0.1.example.com:1",
                        "128.0.0.1:1", "127.0.0.256:1"}) {
    EXPECT_FALSE(IsLoopbackAddress(a)) << a;
  }
}

class ValidateTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing_util::MakeTempDir("tls-unit");
    pem_ = Write("a.pem", "-----BEGIN CERTIFICATE-----\nx\n");
  }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    FILE* f = fopen(path.c_str(), "w");
    fputs(text.c_str(), f);
    fclose(f);
    return path;
  }
  TlsOptions Tls() const {
    return {.cert_file = pem_, .key_file = pem_, .ca_file = pem_};
  }
  std::string dir_, pem_;
};

TEST_F(ValidateTest, TlsOrPlaintextMustBeChosen) {
  absl::Status neither = ValidateTlsOptions({}, "127.0.0.1:0");
  EXPECT_EQ(neither.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(neither.message(), "--insecure"));
  EXPECT_TRUE(ValidateTlsOptions(Tls(), "0.0.0.0:8080").ok());
  EXPECT_TRUE(ValidateTlsOptions({.insecure = true}, "127.0.0.1:0").ok());
  EXPECT_TRUE(ValidateTlsOptions({.insecure = true}, "").ok());  // dials only
  TlsOptions both = Tls();
  both.insecure = true;
  EXPECT_EQ(ValidateTlsOptions(both, "127.0.0.1:0").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ValidateTest, PlaintextOffLoopbackOnlyWhenForced) {
  absl::Status s = ValidateTlsOptions({.insecure = true}, "0.0.0.0:8080");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "--insecure_listen_any"));
  EXPECT_TRUE(ValidateTlsOptions(
                  {.insecure = true, .insecure_listen_any = true}, "[::]:1")
                  .ok());
  EXPECT_EQ(ValidateTlsOptions({.insecure_listen_any = true}, "[::]:1").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ValidateTest, EveryFileIsNeededReadableAndPem) {
  TlsOptions no_key = Tls();
  no_key.key_file = "";
  absl::Status s = ValidateTlsOptions(no_key, "127.0.0.1:0");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "--tls_key"));
  TlsOptions missing = Tls();
  missing.ca_file = dir_ + "/missing.pem";
  EXPECT_EQ(ValidateTlsOptions(missing, "127.0.0.1:0").code(),
            absl::StatusCode::kInvalidArgument);
  TlsOptions not_pem = Tls();
  not_pem.cert_file = Write("der.crt", "0\x82\x01");
  EXPECT_EQ(ValidateTlsOptions(not_pem, "127.0.0.1:0").code(),
            absl::StatusCode::kInvalidArgument);
  TlsOptions fast = Tls();
  fast.reload_interval = absl::Milliseconds(10);
  EXPECT_EQ(ValidateTlsOptions(fast, "127.0.0.1:0").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PeerIdentitiesTest, SansThenCommonNameOfAVerifiedCertificate) {
  FakeAuthContext plaintext;
  EXPECT_TRUE(PeerIdentities(plaintext).empty());
  FakeAuthContext cert = Certificate(
      {"crucible-worker", "spiffe://example.org/worker"}, "crucible-worker");
  cert.AddProperty(GRPC_PEER_URI_PROPERTY_NAME, "spiffe://example.org/worker");
  EXPECT_EQ(PeerIdentities(cert),
            (std::vector<std::string>{"crucible-worker",
                                      "spiffe://example.org/worker"}));
}

TEST(PeerAuthorizerTest, ExactPrefixAndAny) {
  const FakeAuthContext worker = Certificate({"crucible-worker"}, "w");
  const FakeAuthContext spiffe =
      Certificate({"spiffe://example.org/ns/crucible/sa/worker"}, "x");
  const FakeAuthContext cn_only = Certificate({}, "crucible-worker");
  const FakeAuthContext other = Certificate({"crucible-client"}, "client");
  const FakeAuthContext none;

  PeerAuthorizer exact({"crucible-worker"});
  EXPECT_TRUE(exact.Check(worker).ok());
  EXPECT_TRUE(exact.Check(cn_only).ok());
  EXPECT_EQ(exact.Check(other).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(exact.Check(none).code(), absl::StatusCode::kUnauthenticated);

  PeerAuthorizer prefix({"spiffe://example.org/ns/crucible/*"});
  EXPECT_TRUE(prefix.Check(spiffe).ok());
  EXPECT_EQ(prefix.Check(worker).code(), absl::StatusCode::kPermissionDenied);

  PeerAuthorizer any({"*"});
  EXPECT_TRUE(any.Check(other).ok());
  EXPECT_EQ(any.Check(none).code(), absl::StatusCode::kUnauthenticated);

  PeerAuthorizer nobody({});
  EXPECT_EQ(nobody.Check(worker).code(), absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace common
