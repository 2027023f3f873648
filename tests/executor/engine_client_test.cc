// EngineClient against a scripted HTTP server on 127.0.0.1:0 (no engine):
// version negotiation and error mapping, e.g. a proxy's 403.
#include "executor/docker/engine_client.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace docker {
namespace {

// Answers each request with respond(request line). Thread-safe.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::function<std::string(const std::string&)> respond)
      : respond_(std::move(respond)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(fd_, 16);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  std::string address() const { return absl::StrCat("tcp://127.0.0.1:", port_); }
  std::vector<std::string> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

 private:
  void Serve() {
    while (true) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req;
      char buf[4096];
      while (!absl::StrContains(req, "\r\n\r\n")) {
        ssize_t n = read(c, buf, sizeof(buf));
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      std::string line = req.substr(0, req.find("\r\n"));
      {
        absl::MutexLock lock(&mu_);
        requests_.push_back(line);
      }
      std::string resp = respond_(line);
      (void)!write(c, resp.data(), resp.size());
      close(c);
    }
  }

  std::function<std::string(const std::string&)> respond_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  absl::Mutex mu_;
  std::vector<std::string> requests_ ABSL_GUARDED_BY(mu_);
};

std::string Http(int code, const std::string& body) {
  return absl::StrCat("HTTP/1.1 ", code, " X\r\nContent-Type: application/json\r\n",
                      "Content-Length: ", body.size(), "\r\nConnection: close\r\n\r\n",
                      body);
}

std::unique_ptr<EngineClient> Client(const std::string& address) {
  auto c = EngineClient::Create({.docker_host = address});
  EXPECT_TRUE(c.ok()) << c.status();
  return *std::move(c);
}

TEST(EngineClientTest, ProxyRefusalIsUnavailableSayingTheProxyRefusedThePath) {
  ScriptedServer server([](const std::string& line) {
    if (absl::StrContains(line, "/version")) return Http(200, R"({"ApiVersion":"1.41"})");
    return Http(403, "<html>403 Forbidden</html>");
  });
  auto client = Client(server.address());
  absl::Status s = client->Kill("abc");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(s.message(), "proxy")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "refused")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "POST /v1.41/containers/abc/kill")) << s;
}

TEST(EngineClientTest, VersionIsCappedAt141AndLowerEnginesAreFollowed) {
  for (auto [engine, want] : {std::pair{"1.43", "1.41"}, std::pair{"1.40", "1.40"}}) {
    std::string engine_version = engine;
    ScriptedServer server([&](const std::string& line) {
      if (absl::StrContains(line, "/version")) {
        return Http(200, absl::StrCat(R"({"ApiVersion":")", engine_version, R"("})"));
      }
      return Http(200, R"({"State":{"Status":"exited","Running":false,"OOMKilled":true,"ExitCode":137}})");
    });
    auto client = Client(server.address());
    auto state = client->InspectContainer("abc");
    ASSERT_TRUE(state.ok()) << state.status();
    EXPECT_TRUE(state->oom_killed);
    EXPECT_EQ(state->exit_code, 137);
    auto requests = server.requests();
    ASSERT_EQ(requests.size(), 2u);
    EXPECT_EQ(requests[1], absl::StrCat("GET /v", want, "/containers/abc/json HTTP/1.1"));
  }
}

TEST(EngineClientTest, ErrorMapping) {
  ScriptedServer server([](const std::string& line) {
    if (absl::StrContains(line, "/version")) return Http(200, R"({"ApiVersion":"1.41"})");
    if (absl::StrContains(line, "/images/")) return Http(404, R"({"message":"no such image"})");
    if (absl::StrContains(line, "/kill")) {
      return Http(500, R"({"message":"can only kill running containers: container state improper"})");
    }
    if (absl::StrContains(line, "DELETE")) return Http(404, R"({"message":"no such container"})");
    if (absl::StrContains(line, "/json")) return Http(200, "not json");
    return Http(503, "no server available");
  });
  auto client = Client(server.address());
  absl::Status image = client->InspectImage("localhost/crucible/x:1");
  EXPECT_EQ(image.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(image.message(), "localhost/crucible/x:1"));
  EXPECT_TRUE(client->Kill("gone").ok());    // not running: nothing to kill
  EXPECT_TRUE(client->Remove("gone").ok());  // already removed
  EXPECT_EQ(client->InspectContainer("c").status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(client->Start("c").code(), absl::StatusCode::kUnavailable);  // 503
}

TEST(EngineClientTest, ImageNamesCannotEscapeThePath) {
  ScriptedServer server([](const std::string& line) {
    if (absl::StrContains(line, "/version")) return Http(200, R"({"ApiVersion":"1.41"})");
    return Http(200, "{}");
  });
  auto client = Client(server.address());
  ASSERT_TRUE(client->InspectImage("a?b#c d").ok());
  EXPECT_EQ(server.requests()[1], "GET /v1.41/images/a%3Fb%23c%20d/json HTTP/1.1");
}

}  // namespace
}  // namespace docker
