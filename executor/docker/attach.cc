// EngineClient::WriteStdin: the hijacked attach connection. libcurl has no
// HTTP upgrade support in this version, so the request is written by hand
// over a CURLOPT_CONNECT_ONLY connection (as docker's own client does over
// its raw connection).
#include <curl/curl.h>
#include <poll.h>
#include <sys/socket.h>

#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "executor/docker/engine_client.h"

namespace docker {
namespace {

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};

// Waits until `fd` is ready for `events` or 100ms passed.
void PollFor(curl_socket_t fd, short events) {
  pollfd p{fd, events, 0};
  poll(&p, 1, 100);
}

}  // namespace

absl::Status EngineClient::WriteStdin(absl::string_view id,
                                      absl::string_view data,
                                      const AbortFn& abort) {
  auto path = VersionedPath(
      absl::StrCat("/containers/", id, "/attach?stream=1&stdin=1"));
  if (!path.ok()) return path.status();
  // A hex id or a container name (crucible-<run id>), sent unescaped.
  if (id.empty() || !absl::ascii_isalnum(static_cast<unsigned char>(id[0]))) {
    return absl::InvalidArgumentError("bad container id or name");
  }
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '_' && c != '-') {
      return absl::InvalidArgumentError("bad container id or name");
    }
  }
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  CURL* c = curl.get();
  std::string url = absl::StrCat(base_url_, *path);
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROXY, "");
  if (!unix_socket_.empty()) {
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, unix_socket_.c_str());
  }
  curl_easy_setopt(
      c, CURLOPT_CONNECTTIMEOUT_MS,
      static_cast<long>(absl::ToInt64Milliseconds(options_.connect_timeout)));
  auto unavailable = [&](absl::string_view what) {
    return Unreachable(absl::UnavailableError(
        absl::StrCat("container engine at ", options_.docker_host,
                     " unreachable during POST ", *path, ": ", what)));
  };
  if (CURLcode rc = curl_easy_perform(c); rc != CURLE_OK) {
    return unavailable(curl_easy_strerror(rc));
  }
  curl_socket_t fd = CURL_SOCKET_BAD;
  curl_easy_getinfo(c, CURLINFO_ACTIVESOCKET, &fd);
  if (fd == CURL_SOCKET_BAD) return unavailable("no socket");

  // Sends all of `bytes`, polling, until done or aborted.
  auto send_all = [&](absl::string_view bytes) -> absl::Status {
    while (!bytes.empty()) {
      if (abort && abort()) return absl::CancelledError("stdin write aborted");
      size_t sent = 0;
      CURLcode rc = curl_easy_send(c, bytes.data(), bytes.size(), &sent);
      if (rc == CURLE_AGAIN) {
        PollFor(fd, POLLOUT);
        continue;
      }
      if (rc != CURLE_OK) return unavailable(curl_easy_strerror(rc));
      bytes.remove_prefix(sent);
    }
    return absl::OkStatus();
  };

  std::string host = unix_socket_.empty() ? base_url_.substr(7) : "localhost";
  std::string request =
      absl::StrCat("POST ", *path, " HTTP/1.1\r\nHost: ", host,
                   "\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                   "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n");
  if (absl::Status s = send_all(request); !s.ok()) return s;

  // The answer: 101 Switching Protocols (or 200 from older engines), then
  // the raw stream.
  std::string head;
  absl::Time deadline = absl::Now() + options_.request_timeout;
  while (!absl::StrContains(head, "\r\n\r\n")) {
    if (abort && abort()) return absl::CancelledError("attach aborted");
    if (absl::Now() > deadline) return unavailable("no answer to attach");
    char buf[1024];
    size_t n = 0;
    CURLcode rc = curl_easy_recv(c, buf, sizeof(buf), &n);
    if (rc == CURLE_AGAIN) {
      PollFor(fd, POLLIN);
      continue;
    }
    if (rc != CURLE_OK) return unavailable(curl_easy_strerror(rc));
    if (n == 0)
      return unavailable("connection closed before the attach answer");
    head.append(buf, n);
    if (head.size() > 64 * 1024)
      return absl::InternalError("attach answer too long");
  }
  int code = 0;
  if (head.size() < 12 || !absl::SimpleAtoi(head.substr(9, 3), &code)) {
    return absl::InternalError("malformed attach answer");
  }
  if (code != 101 && code != 200) {
    Response resp{code, head.substr(head.find("\r\n\r\n") + 4)};
    return HttpError("POST", *path, resp);
  }
  if (absl::Status s = send_all(data); !s.ok()) return s;
  // Half-close: the engine sees EOF on the attach stream and, with
  // StdinOnce, closes the process's stdin.
  shutdown(fd, SHUT_WR);
  // Drain until the engine closes its side (it does once stdin is closed),
  // bounded, so the close is not a reset that could lose buffered bytes.
  absl::Time drain_until = absl::Now() + absl::Seconds(2);
  while (absl::Now() < drain_until && !(abort && abort())) {
    char buf[1024];
    size_t n = 0;
    CURLcode rc = curl_easy_recv(c, buf, sizeof(buf), &n);
    if (rc == CURLE_AGAIN) {
      PollFor(fd, POLLIN);
      continue;
    }
    break;  // EOF or error: done either way
  }
  return absl::OkStatus();
}

}  // namespace docker
