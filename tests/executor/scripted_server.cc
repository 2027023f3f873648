#include "tests/executor/scripted_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace executor_testing {

ScriptedServer::ScriptedServer(
    std::function<std::string(const std::string&)> respond, bool concurrent)
    : respond_(std::move(respond)), concurrent_(concurrent) {
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

ScriptedServer::~ScriptedServer() {
  shutdown(fd_, SHUT_RDWR);
  close(fd_);
  thread_.join();
}

std::string ScriptedServer::address() const {
  return absl::StrCat("tcp://127.0.0.1:", port_);
}

std::vector<std::string> ScriptedServer::requests() {
  absl::MutexLock lock(&mu_);
  return requests_;
}

void ScriptedServer::Serve() {
  while (true) {
    int c = accept(fd_, nullptr, nullptr);
    if (c < 0) break;
    if (concurrent_) {
      connections_.emplace_back([this, c] { Answer(c); });
    } else {
      Answer(c);
    }
  }
  for (std::thread& t : connections_) t.join();
}

void ScriptedServer::Answer(int c) {
  {
    std::string req;
    char buf[4096];
    while (!absl::StrContains(req, "\r\n\r\n")) {
      ssize_t n = read(c, buf, sizeof(buf));
      if (n <= 0) break;
      req.append(buf, static_cast<size_t>(n));
    }
    // Read the body too: closing with unread bytes would reset the
    // connection before the client reads the answer.
    size_t header_end = req.find("\r\n\r\n");
    std::string lower = absl::AsciiStrToLower(req.substr(0, header_end));
    size_t cl = lower.find("content-length:");
    size_t body_len = 0;
    if (cl != std::string::npos) {
      size_t eol = lower.find("\r\n", cl);
      (void)absl::SimpleAtoi(
          absl::StripAsciiWhitespace(lower.substr(cl + 15, eol - cl - 15)),
          &body_len);
    }
    while (header_end != std::string::npos &&
           req.size() < header_end + 4 + body_len) {
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

std::string Http(int code, const std::string& body) {
  return absl::StrCat(
      "HTTP/1.1 ", code, " X\r\nContent-Type: application/json\r\n",
      "Content-Length: ", body.size(), "\r\nConnection: close\r\n\r\n", body);
}

}  // namespace executor_testing
