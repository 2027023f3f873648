#include "executor/guard/guard_server.h"

#include <curl/curl.h>
#include <httplib.h>

#include <algorithm>
#include <functional>
#include <regex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/http_listen.h"
#include "common/status_macros.h"
#include "executor/guard/archive_guard.h"
#include "executor/policy/scratch.h"
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

// Anything but a create or a scratch archive call: 403, logged.
void RefuseNotCreate(const httplib::Request& req, httplib::Response& res) {
  LOG(WARNING) << "guard: refused " << req.method << " "
               << req.target.substr(0, 100)
               << ": not a create or a scratch archive call";
  Refuse(res, 403,
         "crucible engine guard: only creates and the scratch area's archive "
         "calls are served here");
}

// The request's target split at its first '?'.
struct Target {
  std::string path;
  std::string query;
};
Target SplitTarget(const std::string& target) {
  const size_t q = target.find('?');
  return {target.substr(0, q),
          q == std::string::npos ? "" : target.substr(q + 1)};
}

struct EngineReply {
  long code = 0;  // NOLINT(runtime/int): curl's type
  std::string body;
  std::string content_type = "application/json";
};

// One call to the engine over its Unix socket.
struct EngineCall {
  const char* method = "GET";
  std::string path_and_query;
  const std::string* body = nullptr;  // sent with its length, if not null
  const char* content_type = "application/json";
  // Where a 2xx answer's bytes go as they come (false stops the transfer);
  // into EngineReply.body if unset. A long answer: no total timeout, but
  // one that stalls for engine_timeout fails.
  std::function<bool(const char*, size_t)> on_bytes;
};

struct WriteTarget {
  CURL* curl;
  EngineReply* reply;
  const EngineCall* call;
};

size_t Write(char* data, size_t size, size_t n, void* out) {
  auto* target = static_cast<WriteTarget*>(out);
  long code = 0;  // NOLINT(runtime/int): curl's type
  curl_easy_getinfo(target->curl, CURLINFO_RESPONSE_CODE, &code);
  if (target->call->on_bytes && code >= 200 && code < 300) {
    return target->call->on_bytes(data, size * n) ? size * n : 0;
  }
  target->reply->body.append(data, size * n);
  return size * n;
}

absl::StatusOr<EngineReply> CallEngine(const GuardServerOptions& options,
                                       const EngineCall& call) {
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  EngineReply reply;
  WriteTarget target{curl, &reply, &call};
  curl_slist* headers = curl_slist_append(
      nullptr, absl::StrCat("Content-Type: ", call.content_type).c_str());
  const std::string url = absl::StrCat("http://engine", call.path_and_query);
  curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH,
                   options.engine_socket.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  if (call.body != nullptr) {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, call.body->data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(call.body->size()));
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  }
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, call.method);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &target);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  const long timeout_ms =  // NOLINT(runtime/int): curl's type
      static_cast<long>(absl::ToInt64Milliseconds(options.engine_timeout));
  if (call.on_bytes) {
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME,
                     std::max(1L, timeout_ms / 1000));
  } else {
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  }
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
  // Creates are held to kMaxCreateBodyBytes in Handle.
  http.set_payload_max_length(policy::kMaxArchiveUploadBytes);
  http.set_read_timeout(std::chrono::seconds(30));
  http.set_keep_alive_max_count(100);
  // Every POST is decided in Handle (its body read first); every other
  // method is refused.
  http.Post(".*", [s = server.get()](const httplib::Request& req,
                                     httplib::Response& res) {
    s->Handle(req, res);
  });
  http.Put(kArchivePathPattern, [s = server.get()](const httplib::Request& req,
                                                   httplib::Response& res) {
    s->HandleArchive(req, res, /*upload=*/true);
  });
  http.Get(kArchivePathPattern, [s = server.get()](const httplib::Request& req,
                                                   httplib::Response& res) {
    s->HandleArchive(req, res, /*upload=*/false);
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
  const auto [path, query] = SplitTarget(req.target);
  const bool volume = std::regex_match(path, VolumeCreatePath());
  if (!volume && !std::regex_match(path, CreatePath())) {
    RefuseNotCreate(req, res);
    return;
  }
  if (req.has_header("Transfer-Encoding")) {
    Refuse(res, 400, "crucible engine guard: Transfer-Encoding is refused");
    return;
  }
  if (req.body.size() > policy::kMaxCreateBodyBytes) {
    Refuse(res, 413,
           absl::StrCat("crucible engine guard: a create body is at most ",
                        policy::kMaxCreateBodyBytes, " bytes"));
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
  absl::StatusOr<EngineReply> reply = CallEngine(
      options_,
      {.method = "POST",
       .path_and_query =
           volume ? path : absl::StrCat(path, "?name=", admitted->name),
       .body = &admitted->body});
  if (!reply.ok()) {
    LOG(WARNING) << "guard: " << reply.status();
    Refuse(res, 502, std::string(reply.status().message()));
    return;
  }
  VLOG(1) << "guard: created " << admitted->name << " -> HTTP " << reply->code;
  res.status = static_cast<int>(reply->code);
  res.set_content(reply->body, reply->content_type.c_str());
}

void GuardServer::HandleArchive(const httplib::Request& req,
                                httplib::Response& res, bool upload) const {
  const auto [path, query] = SplitTarget(req.target);
  if (req.has_header("Transfer-Encoding")) {
    Refuse(res, 400, "crucible engine guard: Transfer-Encoding is refused");
    return;
  }
  absl::StatusOr<ArchiveTarget> target = ParseArchiveCall(path, query);
  absl::StatusOr<EngineReply> inspect;
  if (target.ok()) {
    // The container as the engine has it now: where its own volume is
    // mounted, and whether it ever started.
    inspect =
        CallEngine(options_, {.path_and_query = absl::StrCat(
                                  path.substr(0, path.find("/containers/")),
                                  "/containers/", target->container, "/json")});
    if (!inspect.ok()) {
      LOG(WARNING) << "guard: " << inspect.status();
      Refuse(res, 502, std::string(inspect.status().message()));
      return;
    }
    if (inspect->code != 200) {
      // No such container, say: the engine's answer, as it would give it.
      res.status = static_cast<int>(inspect->code);
      res.set_content(inspect->body, inspect->content_type.c_str());
      return;
    }
  }
  absl::Status allowed =
      target.ok() ? CheckArchiveCall(*target, upload, inspect->body, req.body)
                  : target.status();
  if (!allowed.ok()) {
    LOG(WARNING) << "guard: " << req.method << " " << req.target.substr(0, 100)
                 << ": " << allowed.message();
    Refuse(res, 403, std::string(allowed.message()));
    return;
  }
  const std::string call_path = absl::StrCat(path, "?path=", target->path);
  if (upload) {
    absl::StatusOr<EngineReply> reply =
        CallEngine(options_, {.method = "PUT",
                              .path_and_query = call_path,
                              .body = &req.body,
                              .content_type = "application/x-tar"});
    if (!reply.ok()) {
      LOG(WARNING) << "guard: " << reply.status();
      Refuse(res, 502, std::string(reply.status().message()));
      return;
    }
    VLOG(1) << "guard: archive into " << target->container << " -> HTTP "
            << reply->code;
    res.status = static_cast<int>(reply->code);
    res.set_content(reply->body, reply->content_type.c_str());
    return;
  }
  // The artifacts' tar may be as large as the scratch area: streamed
  // through, never held. The status goes out first, so an engine that
  // fails now ends the transfer short, which the executor reports.
  res.set_chunked_content_provider(
      "application/x-tar", [this, call_path](size_t, httplib::DataSink& sink) {
        absl::StatusOr<EngineReply> reply = CallEngine(
            options_, {.path_and_query = call_path,
                       .on_bytes = [&sink](const char* data, size_t n) {
                         return sink.write(data, n);
                       }});
        if (!reply.ok() || reply->code != 200) {
          LOG(WARNING) << "guard: GET " << call_path << ": "
                       << (reply.ok() ? absl::StrCat("HTTP ", reply->code, " ",
                                                     reply->body.substr(0, 200))
                                      : reply.status().ToString());
          return false;  // closes the connection: a short transfer
        }
        sink.done();
        return true;
      });
}

}  // namespace guard
