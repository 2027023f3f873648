// EngineClient against a scripted HTTP server on 127.0.0.1:0 (no engine):
// version negotiation and error mapping, e.g. a proxy's 403.
#include "executor/docker/engine_client.h"

#include <atomic>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/executor/scripted_server.h"

namespace docker {
namespace {

using executor_testing::Http;
using executor_testing::ScriptedServer;

std::unique_ptr<EngineClient> Client(const std::string& address) {
  auto c = EngineClient::Create({.docker_host = address});
  EXPECT_TRUE(c.ok()) << c.status();
  return *std::move(c);
}

TEST(EngineClientTest,
     ProxyRefusalIsPermissionDeniedSayingTheProxyRefusedThePath) {
  ScriptedServer server([](const std::string& line) {
    if (absl::StrContains(line, "/version"))
      return Http(200, R"({"ApiVersion":"1.41"})");
    return Http(403, "<html>403 Forbidden</html>");
  });
  auto client = Client(server.address());
  absl::Status s = client->Kill("abc");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StrContains(s.message(), "proxy")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "refused")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "POST /v1.41/containers/abc/kill"))
      << s;
}

TEST(EngineClientTest, VersionIsCappedAt141AndLowerEnginesAreFollowed) {
  for (auto [engine, want] :
       {std::pair{"1.43", "1.41"}, std::pair{"1.40", "1.40"}}) {
    std::string engine_version = engine;
    ScriptedServer server([&](const std::string& line) {
      if (absl::StrContains(line, "/version")) {
        return Http(
            200, absl::StrCat(R"({"ApiVersion":")", engine_version, R"("})"));
      }
      return Http(
          200,
          R"({"State":{"Status":"exited","Running":false,"OOMKilled":true,"ExitCode":137}})");
    });
    auto client = Client(server.address());
    auto state = client->InspectContainer("abc");
    ASSERT_TRUE(state.ok()) << state.status();
    EXPECT_TRUE(state->oom_killed);
    EXPECT_EQ(state->exit_code, 137);
    auto requests = server.requests();
    ASSERT_EQ(requests.size(), 2u);
    EXPECT_EQ(requests[1],
              absl::StrCat("GET /v", want, "/containers/abc/json HTTP/1.1"));
  }
}

TEST(EngineClientTest, ErrorMapping) {
  ScriptedServer server([](const std::string& line) {
    if (absl::StrContains(line, "/version"))
      return Http(200, R"({"ApiVersion":"1.41"})");
    if (absl::StrContains(line, "/images/"))
      return Http(404, R"({"message":"no such image"})");
    if (absl::StrContains(line, "/kill")) {
      return Http(
          500,
          R"({"message":"can only kill running containers: container state improper"})");
    }
    if (absl::StrContains(line, "DELETE"))
      return Http(404, R"({"message":"no such container"})");
    if (absl::StrContains(line, "/json")) return Http(200, "not json");
    return Http(503, "no server available");
  });
  auto client = Client(server.address());
  absl::Status image = client->InspectImage("localhost/crucible/x:1");
  EXPECT_EQ(image.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(image.message(), "localhost/crucible/x:1"));
  EXPECT_TRUE(client->Kill("gone").ok());    // not running: nothing to kill
  EXPECT_TRUE(client->Remove("gone").ok());  // already removed
  EXPECT_EQ(client->InspectContainer("c").status().code(),
            absl::StatusCode::kInternal);
  EXPECT_EQ(client->Start("c").code(), absl::StatusCode::kUnavailable);  // 503
}

// What turns the executor NOT_SERVING at once (operator guide,
// --ping_interval): an engine call that finds the engine unreachable
// (connection refused, or the proxy's 502/503/504) is reported through
// on_unreachable; an answer of the engine or a refusal of the proxy (403)
// is not, whatever its code.
TEST(EngineClientTest, OnlyUnreachableAnswersReportTheEngineUnreachable) {
  for (const int code : {502, 503, 504, 403, 404, 409, 500}) {
    SCOPED_TRACE(code);
    ScriptedServer server([code](const std::string& line) {
      if (absl::StrContains(line, "/version"))
        return Http(200, R"({"ApiVersion":"1.41"})");
      return Http(code, R"({"message":"scripted"})");
    });
    std::vector<absl::Status> reported;
    auto client =
        EngineClient::Create({.docker_host = server.address(),
                              .on_unreachable = [&](const absl::Status& s) {
                                reported.push_back(s);
                              }});
    ASSERT_TRUE(client.ok()) << client.status();
    absl::Status s = (*client)->Start("crucible-abc");
    EXPECT_FALSE(s.ok());
    const bool unreachable = code >= 502 && code <= 504;
    EXPECT_EQ(s.code() == absl::StatusCode::kUnavailable, unreachable) << s;
    ASSERT_EQ(reported.size(), unreachable ? 1u : 0u) << s;
    if (unreachable)
      EXPECT_EQ(reported[0].code(), absl::StatusCode::kUnavailable);
  }
  // Nothing listening: unreachable too.
  std::vector<absl::Status> reported;
  auto client =
      EngineClient::Create({.docker_host = "tcp://127.0.0.1:1",
                            .on_unreachable = [&](const absl::Status& s) {
                              reported.push_back(s);
                            }});
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->Ping().code(), absl::StatusCode::kUnavailable);
  EXPECT_GE(reported.size(), 1u);
}

TEST(EngineClientTest, ImageNamesCannotEscapeThePath) {
  ScriptedServer server([](const std::string& line) {
    if (absl::StrContains(line, "/version"))
      return Http(200, R"({"ApiVersion":"1.41"})");
    return Http(200, "{}");
  });
  auto client = Client(server.address());
  ASSERT_TRUE(client->InspectImage("a?b#c d").ok());
  EXPECT_EQ(server.requests()[1],
            "GET /v1.41/images/a%3Fb%23c%20d/json HTTP/1.1");
}

TEST(EngineClientTest, PullReportsAnErrorInsideA200StreamAsFailedPrecondition) {
  ScriptedServer server([](const std::string& line) {
    if (absl::StrContains(line, "/version"))
      return Http(200, R"({"ApiVersion":"1.41"})");
    if (absl::StrContains(line, "fromImage=localhost%2Fgood%3A1")) {
      return Http(200, "{\"status\":\"Pulling\"}\n{\"status\":\"Done\"}\n");
    }
    return Http(200,
                "{\"status\":\"Pulling\"}\n{\"error\":\"manifest unknown\"}\n");
  });
  auto client = Client(server.address());
  EXPECT_TRUE(client->PullImage("localhost/good:1").ok());
  absl::Status bad = client->PullImage("localhost/bad:1");
  EXPECT_EQ(bad.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(bad.message(), "localhost/bad:1")) << bad;
  EXPECT_TRUE(absl::StrContains(bad.message(), "manifest unknown")) << bad;
  EXPECT_EQ(
      server.requests()[1],
      "POST /v1.41/images/create?fromImage=localhost%2Fgood%3A1 HTTP/1.1");
}

// Podman with user namespaces may answer a DELETE with 500 "device or
// resource busy" for a container it removed all the same: asked again, it
// says 404, and the removal is OK. Other 500s stay errors.
TEST(EngineClientTest, RemoveAsksAgainAfterABusyAnswer) {
  std::atomic<int> deletes{0};
  ScriptedServer server([&deletes](const std::string& line) {
    if (absl::StrContains(line, "/version"))
      return Http(200, R"({"ApiVersion":"1.41"})");
    if (absl::StartsWith(line, "DELETE /v1.41/containers/crucible-busy")) {
      return ++deletes == 1
                 ? Http(
                       500,
                       R"({"message":"unlinkat /s/userdata/shm: device or resource busy"})")
                 : Http(404, R"({"message":"no such container"})");
    }
    return Http(500, R"({"message":"boom"})");
  });
  auto client = Client(server.address());
  EXPECT_TRUE(client->Remove("crucible-busy").ok());
  EXPECT_EQ(deletes.load(), 2);
  EXPECT_EQ(client->Remove("crucible-other").code(),
            absl::StatusCode::kInternal);
}

TEST(EngineClientTest, EveryCallCarriesTheNegotiatedVersion) {
  ScriptedServer server([](const std::string& line) {
    if (absl::StrContains(line, "/version"))
      return Http(200, R"({"ApiVersion":"1.40"})");
    return Http(500, R"({"message":"x"})");
  });
  auto client = Client(server.address());
  (void)client->InspectImage("i");
  (void)client->CreateContainer("crucible-r", {{"Image", "i"}});
  (void)client->Start("c");
  (void)client->Kill("c");
  (void)client->InspectContainer("c");
  (void)client->Remove("c");
  (void)client->ListContainers("k", "v");
  (void)client->Logs(
      "c", false, [](absl::string_view) { return true; }, [] { return false; });
  (void)client->Wait(
      "c", "next-exit", [] { return false; }, nullptr);
  std::vector<std::string> requests = server.requests();
  ASSERT_EQ(requests.size(), 10u);
  EXPECT_EQ(requests[0], "GET /version HTTP/1.1");  // negotiated once
  for (size_t i = 1; i < requests.size(); ++i) {
    EXPECT_TRUE(absl::StrContains(requests[i], " /v1.40/")) << requests[i];
  }
}

TEST(EngineClientTest, CreateSendsTheNameAndListReportsNamesWithoutSlash) {
  ScriptedServer server([](const std::string& line) {
    if (absl::StrContains(line, "/version"))
      return Http(200, R"({"ApiVersion":"1.41"})");
    if (absl::StrContains(line, "/containers/create"))
      return Http(201, R"({"Id":"abc"})");
    return Http(200, R"([
      {"Id":"1","Names":["/crucible-r1"],"State":"exited","Labels":{"crucible.run":"r1"}},
      {"Id":"2","Names":["crucible-r2"],"State":"running","Labels":{}},
      {"Id":"3","State":"created"}])");
  });
  auto client = Client(server.address());
  absl::StatusOr<std::string> id =
      client->CreateContainer("crucible-a.b_c-1", {{"Image", "i"}});
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, "abc");
  // A name cannot smuggle another parameter into the query.
  (void)client->CreateContainer("x&y=1 #", {{"Image", "i"}});
  auto listed = client->ListContainers("crucible.executor", "ex-1");
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 3u);
  EXPECT_EQ((*listed)[0].name, "crucible-r1");
  EXPECT_EQ((*listed)[0].id, "1");
  EXPECT_EQ((*listed)[0].labels.at("crucible.run"), "r1");
  EXPECT_EQ((*listed)[1].name, "crucible-r2");
  EXPECT_EQ((*listed)[2].name, "");
  std::vector<std::string> requests = server.requests();
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_EQ(requests[1],
            "POST /v1.41/containers/create?name=crucible-a.b_c-1 HTTP/1.1");
  EXPECT_EQ(requests[2],
            "POST /v1.41/containers/create?name=x%26y%3D1%20%23 HTTP/1.1");
  // Exactly the query the docker-proxy allows (deploy/docker-proxy/haproxy.cfg,
  // list_query).
  EXPECT_EQ(requests[3],
            "GET /v1.41/containers/json?all=1&filters=%7B%22label%22%3A%5B%22"
            "crucible.executor%3Dex-1%22%5D%7D HTTP/1.1");
}

// The request line of every call the runner makes on a container, as the
// table in engine_client.h and the docker-proxy's allowlist have them (the
// runner's own tests use the fake engine and see none of this).
TEST(EngineClientTest, ContainerCallsUseTheNameInTheDocumentedRequestLines) {
  ScriptedServer server([](const std::string& line) {
    if (absl::StrContains(line, "/version"))
      return Http(200, R"({"ApiVersion":"1.41"})");
    if (absl::StrContains(line, "/_ping")) return Http(200, "OK");
    if (absl::StrContains(line, "/create")) return Http(201, R"({"Id":"abc"})");
    if (absl::StrContains(line, "/wait"))
      return Http(200, R"({"StatusCode":0})");
    if (absl::StrContains(line, "/json ")) {
      return Http(
          200, R"({"State":{"Status":"exited","Running":false,"ExitCode":0}})");
    }
    if (absl::StrContains(line, "/logs")) return Http(200, "");
    return Http(204, "");
  });
  auto client = Client(server.address());
  ASSERT_TRUE(client->Ping().ok());
  ASSERT_TRUE(client->CreateContainer("crucible-r1", {{"Image", "i"}}).ok());
  ASSERT_TRUE(client
                  ->Wait(
                      "crucible-r1", "next-exit", [] { return false; }, nullptr)
                  .ok());
  ASSERT_TRUE(client->Start("crucible-r1").ok());
  auto bytes = [](absl::string_view) { return true; };
  ASSERT_TRUE(
      client->Logs("crucible-r1", true, bytes, [] { return false; }).ok());
  ASSERT_TRUE(
      client->Logs("crucible-r1", false, bytes, [] { return false; }).ok());
  ASSERT_TRUE(client->Kill("crucible-r1").ok());
  ASSERT_TRUE(client->InspectContainer("crucible-r1").ok());
  ASSERT_TRUE(client->Remove("crucible-r1").ok());
  EXPECT_EQ(
      server.requests(),
      (std::vector<std::string>{
          "GET /_ping HTTP/1.1",
          "GET /version HTTP/1.1",
          "POST /v1.41/containers/create?name=crucible-r1 HTTP/1.1",
          "POST /v1.41/containers/crucible-r1/wait?condition=next-exit "
          "HTTP/1.1",
          "POST /v1.41/containers/crucible-r1/start HTTP/1.1",
          "GET /v1.41/containers/crucible-r1/logs?follow=1&stdout=1&stderr=1 "
          "HTTP/1.1",
          "GET /v1.41/containers/crucible-r1/logs?follow=0&stdout=1&stderr=1 "
          "HTTP/1.1",
          "POST /v1.41/containers/crucible-r1/kill?signal=KILL HTTP/1.1",
          "GET /v1.41/containers/crucible-r1/json HTTP/1.1",
          "DELETE /v1.41/containers/crucible-r1?force=1&v=1 HTTP/1.1",
      }));
}

}  // namespace
}  // namespace docker
