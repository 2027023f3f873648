// The callback URL checks, the key file and the signature, without a
// network.
#include "server/callback/callback_url.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/callback/callback_sender.h"
#include "server/callback/callback_signer.h"

namespace server {
namespace {

CallbackHosts Hosts(std::vector<std::string> entries) {
  auto hosts = CallbackHosts::Parse(entries);
  EXPECT_TRUE(hosts.ok()) << hosts.status();
  return hosts.ok() ? *hosts : CallbackHosts();
}

TEST(CallbackUrlTest, AllowedHostsWithAndWithoutPort) {
  CallbackHosts hosts = Hosts({"ci.example.com", "hooks.example.com:8443",
                               "[::1]:9000", " Upper.Example.com "});
  auto ok = CheckCallbackUrl("f", "https://CI.example.com/done?x=1", hosts);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->scheme, "https");
  EXPECT_EQ(ok->host, "ci.example.com");
  EXPECT_EQ(ok->port, 443);
  EXPECT_TRUE(CheckCallbackUrl("f", "http://ci.example.com:1234/", hosts).ok());
  EXPECT_TRUE(
      CheckCallbackUrl("f", "https://hooks.example.com:8443/", hosts).ok());
  EXPECT_TRUE(CheckCallbackUrl("f", "http://[::1]:9000/x", hosts).ok());
  EXPECT_TRUE(CheckCallbackUrl("f", "http://upper.example.com/", hosts).ok());
  for (const char* bad : {
           "https://hooks.example.com/",        // port 443, not 8443
           "http://[::1]:9001/",                // another port
           "https://evil.com/",                 // not listed
           "https://ci.example.com.evil.com/",  // suffix trick
           "ftp://ci.example.com/",             // scheme
           "file:///etc/passwd",                // scheme, no host
           "https://user:pw@ci.example.com/",   // userinfo
           "https://user@ci.example.com/",      // userinfo
           "https://ci.example.com/#frag",      // fragment
           "ci.example.com/done",               // no scheme
           "https://",                          // no host
           "not a url at all",
       }) {
    auto s = CheckCallbackUrl("spec.callback_url", bad, hosts);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(absl::StartsWith(s.status().message(), "spec.callback_url: "))
        << s.status();
  }
}

TEST(CallbackUrlTest, NoHostsRefusesEveryUrlNamingTheFlag) {
  auto s = CheckCallbackUrl("f", "https://ci.example.com/", CallbackHosts());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(
      absl::StrContains(s.status().message(), "--callback_allowed_hosts"));
  crucible::v1::TaskSpec spec;
  EXPECT_TRUE(CheckSpecCallback(spec, "spec.", CallbackHosts()).ok());
}

TEST(CallbackUrlTest, MalformedAllowedHostsAreRefused) {
  for (const std::vector<std::string>& bad :
       std::vector<std::vector<std::string>>{{"https://a.com"},
                                             {"a.com/path"},
                                             {"u@a.com"},
                                             {"a.com:0"},
                                             {"a.com:http"},
                                             {"[::1"}}) {
    EXPECT_FALSE(CallbackHosts::Parse(bad).ok()) << bad[0];
  }
  EXPECT_TRUE(Hosts({"", " "}).empty());
}

TEST(CallbackSignerTest, KeyFileFirstKeySignsAndShortSecretsAreRefused) {
  auto keys = ParseCallbackKeys(
      "# rotated 2026-12\nnew 0123456789abcdef0123\n\nold fedcba9876543210\n");
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0].id, "new");
  EXPECT_EQ((*keys)[0].secret, "0123456789abcdef0123");
  EXPECT_FALSE(ParseCallbackKeys("k short").ok());
  EXPECT_FALSE(ParseCallbackKeys("k 0123456789abcdef extra").ok());
  EXPECT_FALSE(ParseCallbackKeys("# nothing\n").ok());
}

TEST(CallbackSignerTest, SignatureIsHmacSha256OfTimestampDotBody) {
  // Python: hmac.new(b"0123456789abcdef", b'1700000000.{"id":"t"}',
  //                  hashlib.sha256).hexdigest()
  EXPECT_EQ(
      CallbackSignature("0123456789abcdef", "1700000000", R"({"id":"t"})"),
      "808d8c827d85c810a79cfdcadd09852efc4b2672c5b6c7e2704a91e887dfb6a4");
}

TEST(CallbackRequestTest, HeadersNameTheTaskAndSignTheBody) {
  crucible::v1::Task task;
  task.set_id("t-1");
  task.set_state(crucible::v1::TASK_STATE_SUCCEEDED);
  task.mutable_callback()->set_attempts(3);
  CallbackRequest req =
      MakeCallbackRequest(task, {.id = "k", .secret = "0123456789abcdef"},
                          absl::FromUnixSeconds(1700000000));
  EXPECT_TRUE(absl::StrContains(req.body, "\"TASK_STATE_SUCCEEDED\""));
  EXPECT_FALSE(absl::StrContains(req.body, "callback")) << req.body;
  auto has = [&](const std::string& h) {
    for (const std::string& x : req.headers) {
      if (x == h) return true;
    }
    return false;
  };
  EXPECT_TRUE(has("X-Crucible-Delivery: t-1"));
  EXPECT_TRUE(has("X-Crucible-Timestamp: 1700000000"));
  EXPECT_TRUE(has("X-Crucible-Key-Id: k"));
  EXPECT_TRUE(has(absl::StrCat(
      "X-Crucible-Signature: v1=",
      CallbackSignature("0123456789abcdef", "1700000000", req.body))));
}

}  // namespace
}  // namespace server
