#include "executor/guard/guard_server.h"

#include <curl/curl.h>
#include <httplib.h>

#include <regex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/http_listen.h"
#include "common/status_macros.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"

namespace guard {
namespace {

// Exactly the path the executor's engine client posts creates to.
const std::regex& CreatePath() {
  static const std::regex* re =
      new std::regex("^(/v[0-9]+\\.[0-9]+)?/containers/create$");
  return *re;
}

// Exactly the path the engine client posts volume creates to.
const std::regex& VolumeCreatePath() {
  static const std::regex* re =
      new std::regex("^(/v[0-9]+\\.[0-9]+)?/volumes/create$");
  return *re;
}

void Refuse(httplib::Response& res, int code, const std::string& message) {
  res.status = code;
  res.set_content(nlohmann::json{{"message", message}}.dump(),
                  "application/json");
}

// Anything but a container create: 403, logged.
void RefuseNotCreate(const httplib::Request& req, httplib::Response& res) {
  LOG(WARNING) << "guard: refused " << req.method << " "
               << req.target.substr(0, 100) << ": not a container create";
  Refuse(res, 403,
         "crucible engine guard: only container creates are served here");
}

struct EngineReply {
  long code = 0;  // NOLINT(runtime/int): curl's type
  std::string body;
  std::string content_type = "application/json";
};

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// POSTs `body` to the engine over its Unix socket.
absl::StatusOr<EngineReply> PostToEngine(const GuardServerOptions& options,
                                         const std::string& path_and_query,
                                         const std::string& body) {
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  EngineReply reply;
  curl_slist* headers =
      curl_slist_append(nullptr, "Content-Type: application/json");
  const std::string url = absl::StrCat("http://engine", path_and_query);
  curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH,
                   options.engine_socket.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                   static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(
      curl, CURLOPT_TIMEOUT_MS,
      static_cast<long>(absl::ToInt64Milliseconds(options.engine_timeout)));
  const CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.code);
    char* type = nullptr;
    if (curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type) == CURLE_OK &&
        type != nullptr) {
      reply.content_type = type;
    }
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat(
        "engine at ", options.engine_socket, ": ", curl_easy_strerror(rc)));
  }
  return reply;
}

}  // namespace

GuardServer::GuardServer(GuardServerOptions options, CreateGuard guard)
    : options_(std::move(options)), guard_(std::move(guard)) {}

absl::StatusOr<std::unique_ptr<GuardServer>> GuardServer::Start(
    GuardServerOptions options, CreateGuard guard) {
  if (options.engine_socket.empty()) {
    return absl::InvalidArgumentError("the guard needs the engine's socket");
  }
  std::unique_ptr<GuardServer> server(
      new GuardServer(std::move(options), std::move(guard)));
  auto owned = std::make_unique<httplib::Server>();
  httplib::Server& http = *owned;
  http.set_payload_max_length(policy::kMaxCreateBodyBytes);
  http.set_read_timeout(std::chrono::seconds(30));
  http.set_keep_alive_max_count(100);
  // Every POST is decided in Handle (its body read first); every other
  // method is refused.
  http.Post(".*", [s = server.get()](const httplib::Request& req,
                                     httplib::Response& res) {
    s->Handle(req, res);
  });
  http.Get(".*", RefuseNotCreate);
  http.Put(".*", RefuseNotCreate);
  http.Patch(".*", RefuseNotCreate);
  http.Delete(".*", RefuseNotCreate);
  http.Options(".*", RefuseNotCreate);
  // A second guard on the port fails its start instead of sharing it.
  ASSIGN_OR_RETURN(
      server->listener_,
      common::HttpListener::Start(std::move(owned), server->options_.host,
                                  server->options_.port));
  return server;
}

void GuardServer::Handle(const httplib::Request& req,
                         httplib::Response& res) const {
  const size_t q = req.target.find('?');
  const std::string path = req.target.substr(0, q);
  const std::string query =
      q == std::string::npos ? "" : req.target.substr(q + 1);
  const bool volume = std::regex_match(path, VolumeCreatePath());
  if (!volume && !std::regex_match(path, CreatePath())) {
    RefuseNotCreate(req, res);
    return;
  }
  if (req.has_header("Transfer-Encoding")) {
    Refuse(res, 400, "crucible engine guard: Transfer-Encoding is refused");
    return;
  }
  absl::StatusOr<AdmittedCreate> admitted =
      volume ? guard_.CheckVolume(query, req.body)
             : guard_.Check(query, req.body);
  if (!admitted.ok()) {
    LOG(WARNING) << "guard: " << admitted.status().message();
    Refuse(res, 403, std::string(admitted.status().message()));
    return;
  }
  absl::StatusOr<EngineReply> reply = PostToEngine(
      options_, volume ? path : absl::StrCat(path, "?name=", admitted->name),
      admitted->body);
  if (!reply.ok()) {
    LOG(WARNING) << "guard: " << reply.status();
    Refuse(res, 502, std::string(reply.status().message()));
    return;
  }
  VLOG(1) << "guard: created " << admitted->name << " -> HTTP " << reply->code;
  res.status = static_cast<int>(reply->code);
  res.set_content(reply->body, reply->content_type.c_str());
}

}  // namespace guard
