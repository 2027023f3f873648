#include "executor/docker/engine_client.h"

#include <curl/curl.h>

#include <atomic>
#include <mutex>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace docker {
namespace {

using nlohmann::json;

void AppendPercent(std::string& out, unsigned char c) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out.push_back('%');
  out.push_back(kHex[c >> 4]);
  out.push_back(kHex[c & 15]);
}

// Percent-encodes everything but the characters image references and ids
// use, so a name cannot smuggle a query or another path into the URL.
std::string EscapePath(absl::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-' ||
        c == '/' || c == ':' || c == '@') {
      out.push_back(static_cast<char>(c));
    } else {
      AppendPercent(out, c);
    }
  }
  return out;
}

std::string EscapeQuery(absl::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-' ||
        c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      AppendPercent(out, c);
    }
  }
  return out;
}

json ParseJson(absl::string_view body) {
  return json::parse(body.begin(), body.end(), nullptr,
                     /*allow_exceptions=*/false);
}

// The engine's error message, from {"message": "..."} or the raw body.
std::string EngineMessage(absl::string_view body) {
  json j = ParseJson(body);
  if (j.is_object() && j.contains("message") && j["message"].is_string()) {
    return j["message"].get<std::string>();
  }
  return std::string(absl::StripAsciiWhitespace(body.substr(0, 300)));
}

// Compares "1.41"-style versions.
bool VersionLess(absl::string_view a, absl::string_view b) {
  auto parse = [](absl::string_view v) {
    std::pair<int, int> p{0, 0};
    std::vector<absl::string_view> parts = absl::StrSplit(v, '.');
    if (!parts.empty()) (void)absl::SimpleAtoi(parts[0], &p.first);
    if (parts.size() > 1) (void)absl::SimpleAtoi(parts[1], &p.second);
    return p;
  };
  return parse(a) < parse(b);
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

}  // namespace

struct EngineClient::Request {
  std::string method;
  std::string path;  // with query
  std::string body;  // sent as application/json if not empty
  // The body's type for a PUT.
  const char* content_type = "application/x-tar";
  bool streaming = false;  // no total timeout
  // Streaming body sink for 2xx answers; false aborts.
  const std::function<bool(absl::string_view)>* on_bytes = nullptr;
  const AbortFn* abort = nullptr;
  const std::function<void()>* on_sent = nullptr;
};

namespace {

struct Transfer {
  CURL* curl = nullptr;
  std::string body;
  const std::function<bool(absl::string_view)>* on_bytes = nullptr;
  const AbortFn* abort = nullptr;
  const std::function<void()>* on_sent = nullptr;
  bool sent = false;
};

size_t WriteCb(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  size_t n = size * nmemb;
  long code = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
  if (t->on_bytes != nullptr && *t->on_bytes && code >= 200 && code < 300) {
    if (!(*t->on_bytes)(absl::string_view(ptr, n))) return 0;  // abort
    return n;
  }
  if (t->body.size() < (64 << 20)) t->body.append(ptr, n);
  return n;
}

int ProgressCb(void* userdata, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(userdata);
  return (t->abort != nullptr && *t->abort && (*t->abort)()) ? 1 : 0;
}

int DebugCb(CURL*, curl_infotype type, char*, size_t, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  if (type == CURLINFO_HEADER_OUT && !t->sent) {
    t->sent = true;
    if (t->on_sent != nullptr && *t->on_sent) (*t->on_sent)();
  }
  return 0;
}

// How often an abortable call looks at its abort function while nothing
// arrives. libcurl's own progress callback comes about once a second on an
// idle connection: a run would wait that long to drop a wait or a log
// stream it no longer needs.
constexpr int kAbortPollMs = 10;

// curl_easy_perform, but a call with an abort function polls it every
// kAbortPollMs (through a multi handle of its own) and ends with
// CURLE_ABORTED_BY_CALLBACK once it says so.
CURLcode Perform(CURL* c, const AbortFn* abort) {
  if (abort == nullptr || !*abort) return curl_easy_perform(c);
  CURLM* multi = curl_multi_init();
  if (multi == nullptr) return curl_easy_perform(c);
  if (curl_multi_add_handle(multi, c) != CURLM_OK) {
    curl_multi_cleanup(multi);
    return curl_easy_perform(c);
  }
  CURLcode result = CURLE_OK;
  for (int running = 1; running > 0;) {
    if (curl_multi_perform(multi, &running) != CURLM_OK) {
      result = CURLE_RECV_ERROR;
      break;
    }
    if (running == 0) {
      int left = 0;
      while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
        if (m->msg == CURLMSG_DONE) result = m->data.result;
      }
      break;
    }
    if ((*abort)()) {
      result = CURLE_ABORTED_BY_CALLBACK;
      break;
    }
    if (curl_multi_poll(multi, nullptr, 0, kAbortPollMs, nullptr) != CURLM_OK) {
      result = CURLE_RECV_ERROR;
      break;
    }
  }
  curl_multi_remove_handle(multi, c);
  curl_multi_cleanup(multi);
  return result;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EngineClient>> EngineClient::Create(
    EngineClientOptions options) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  absl::string_view host = options.docker_host;
  std::string socket, base;
  if (absl::ConsumePrefix(&host, "unix://")) {
    if (host.empty() || host[0] != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("docker host \"", options.docker_host,
                       "\": unix:// needs an absolute socket path"));
    }
    socket = std::string(host);
    base = "http://localhost";
  } else if (absl::ConsumePrefix(&host, "tcp://") ||
             absl::ConsumePrefix(&host, "http://")) {
    while (absl::ConsumeSuffix(&host, "/")) {
    }
    if (host.empty() || absl::StrContains(host, "/")) {
      return absl::InvalidArgumentError(
          absl::StrCat("docker host \"", options.docker_host,
                       "\": expected tcp://host:port"));
    }
    base = absl::StrCat("http://", host);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("docker host \"", options.docker_host,
                     "\": expected unix:///path or tcp://host:port"));
  }
  return std::unique_ptr<EngineClient>(
      new EngineClient(std::move(options), std::move(socket), std::move(base)));
}

EngineClient::EngineClient(EngineClientOptions options, std::string unix_socket,
                           std::string base_url)
    : options_(std::move(options)),
      unix_socket_(std::move(unix_socket)),
      base_url_(std::move(base_url)) {}

absl::StatusOr<EngineClient::Response> EngineClient::Do(const Request& r) {
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  CURL* c = curl.get();
  Transfer t;
  t.curl = c;
  t.on_bytes = r.on_bytes;
  t.abort = r.abort;
  t.on_sent = r.on_sent;
  std::string url = absl::StrCat(base_url_, r.path);
  char errbuf[CURL_ERROR_SIZE] = {0};
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROXY, "");  // never an HTTP(S)_PROXY from env
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  if (!unix_socket_.empty()) {
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, unix_socket_.c_str());
  }
  curl_easy_setopt(
      c, CURLOPT_CONNECTTIMEOUT_MS,
      static_cast<long>(absl::ToInt64Milliseconds(options_.connect_timeout)));
  if (!r.streaming) {
    curl_easy_setopt(
        c, CURLOPT_TIMEOUT_MS,
        static_cast<long>(absl::ToInt64Milliseconds(options_.request_timeout)));
  }
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r.method.c_str());
  if (r.method == "POST") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, r.body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE,
                     static_cast<long>(r.body.size()));
    headers.reset(curl_slist_append(nullptr, "Content-Type: application/json"));
    // No "Expect: 100-continue" round trip.
    headers.reset(curl_slist_append(headers.release(), "Expect:"));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  } else if (r.method == "PUT") {
    // A body of a stated length (the proxy refuses chunked requests).
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, r.body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(r.body.size()));
    headers.reset(curl_slist_append(
        nullptr, absl::StrCat("Content-Type: ", r.content_type).c_str()));
    headers.reset(curl_slist_append(headers.release(), "Expect:"));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  }
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, WriteCb);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  if (r.abort != nullptr) {
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, ProgressCb);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  }
  if (r.on_sent != nullptr) {
    curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, DebugCb);
    curl_easy_setopt(c, CURLOPT_DEBUGDATA, &t);
    curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
  }
  CURLcode rc = Perform(c, r.abort);
  Response resp;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.code);
  resp.body = std::move(t.body);
  if (rc == CURLE_ABORTED_BY_CALLBACK || rc == CURLE_WRITE_ERROR) {
    return absl::CancelledError(
        absl::StrCat(r.method, " ", r.path, " aborted"));
  }
  if (rc != CURLE_OK) {
    std::string detail = errbuf[0] != 0 ? errbuf : curl_easy_strerror(rc);
    return Unreachable(absl::UnavailableError(absl::StrCat(
        "container engine at ", options_.docker_host, " unreachable during ",
        r.method, " ", r.path, ": ", detail,
        " (is the engine or docker-proxy running? check --docker_host)")));
  }
  return resp;
}

absl::Status EngineClient::HttpError(absl::string_view method,
                                     absl::string_view path,
                                     const Response& resp) const {
  std::string what = absl::StrCat(method, " ", path, " -> HTTP ", resp.code);
  std::string msg = EngineMessage(resp.body);
  switch (resp.code) {
    case 403:
      // A configuration error (the policy and the proxy disagree), not an
      // outage: no retry fixes it.
      return absl::PermissionDeniedError(
          absl::StrCat("the docker proxy at ", options_.docker_host,
                       " refused ", method, " ", path,
                       " (403 Forbidden): allow this path in the proxy's "
                       "configuration. ",
                       msg));
    case 502:
    case 503:
    case 504:
      return Unreachable(absl::UnavailableError(
          absl::StrCat("container engine behind ", options_.docker_host,
                       " unavailable: ", what, ": ", msg)));
    case 404:
      return absl::NotFoundError(absl::StrCat(what, ": ", msg));
    case 400:
      return absl::InvalidArgumentError(absl::StrCat(what, ": ", msg));
    case 409:
      return absl::FailedPreconditionError(absl::StrCat(what, ": ", msg));
    default:
      return absl::InternalError(absl::StrCat(what, ": ", msg));
  }
}

absl::Status EngineClient::Unreachable(absl::Status status) const {
  if (options_.on_unreachable) options_.on_unreachable(status);
  return status;
}

absl::Status EngineClient::Ping() {
  Request r{.method = "GET", .path = "/_ping"};
  auto resp = Do(r);
  if (!resp.ok()) return resp.status();
  if (resp->code != 200) return HttpError(r.method, r.path, *resp);
  return absl::OkStatus();
}

absl::StatusOr<std::string> EngineClient::NegotiateApiVersion() {
  {
    absl::MutexLock lock(&mu_);
    if (api_version_.has_value()) return *api_version_;
  }
  Request r{.method = "GET", .path = "/version"};
  auto resp = Do(r);
  if (!resp.ok()) return resp.status();
  if (resp->code != 200) return HttpError(r.method, r.path, *resp);
  json j = ParseJson(resp->body);
  std::string version = options_.max_api_version;
  if (j.is_object() && j.contains("ApiVersion") &&
      j["ApiVersion"].is_string()) {
    std::string engine = j["ApiVersion"].get<std::string>();
    if (VersionLess(engine, version)) version = engine;
  }
  absl::MutexLock lock(&mu_);
  api_version_ = version;
  return version;
}

absl::StatusOr<std::string> EngineClient::VersionedPath(
    absl::string_view rest) {
  auto v = NegotiateApiVersion();
  if (!v.ok()) return v.status();
  return absl::StrCat("/v", *v, rest);
}

absl::Status EngineClient::InspectImage(absl::string_view image) {
  auto path =
      VersionedPath(absl::StrCat("/images/", EscapePath(image), "/json"));
  if (!path.ok()) return path.status();
  Request r{.method = "GET", .path = *path};
  auto resp = Do(r);
  if (!resp.ok()) return resp.status();
  if (resp->code == 404) {
    return absl::FailedPreconditionError(absl::StrCat(
        "image \"", image, "\" is not present on the container engine at ",
        options_.docker_host, " (no registry pulls; load or build it first)"));
  }
  if (resp->code != 200) return HttpError(r.method, r.path, *resp);
  return absl::OkStatus();
}

absl::Status EngineClient::PullImage(absl::string_view image) {
  auto path = VersionedPath(
      absl::StrCat("/images/create?fromImage=", EscapeQuery(image)));
  if (!path.ok()) return path.status();
  // A pull streams progress for as long as the download takes.
  Request r{.method = "POST", .path = *path, .streaming = true};
  auto resp = Do(r);
  if (!resp.ok()) return resp.status();
  if (resp->code == 403) return HttpError(r.method, r.path, *resp);
  std::string error;
  if (resp->code == 200) {
    // The answer is a sequence of JSON objects; a failure is one with
    // "error", still under 200.
    for (absl::string_view line :
         absl::StrSplit(resp->body, '\n', absl::SkipWhitespace())) {
      json j = ParseJson(line);
      if (j.is_object() && j.contains("error") && j["error"].is_string()) {
        error = j["error"].get<std::string>();
      }
    }
    if (error.empty()) return absl::OkStatus();
  } else {
    error = absl::StrCat("HTTP ", resp->code, ": ", EngineMessage(resp->body));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "image \"", image, "\" is not present on the container engine at ",
      options_.docker_host, " and could not be pulled: ", error));
}

absl::StatusOr<std::string> EngineClient::CreateContainer(
    absl::string_view name, const json& body) {
  auto path = VersionedPath(
      absl::StrCat("/containers/create?name=", EscapeQuery(name)));
  if (!path.ok()) return path.status();
  // replace: invalid UTF-8 must not throw (proto3 strings are UTF-8 anyway).
  Request r{.method = "POST",
            .path = *path,
            .body = body.dump(-1, ' ', false, json::error_handler_t::replace)};
  auto resp = Do(r);
  if (!resp.ok()) return resp.status();
  if (resp->code == 404) {
    // The engine could not find the image after all.
    return absl::FailedPreconditionError(
        absl::StrCat("create: ", EngineMessage(resp->body)));
  }
  if (resp->code != 201 && resp->code != 200) {
    return HttpError(r.method, r.path, *resp);
  }
  json j = ParseJson(resp->body);
  if (!j.is_object() || !j.contains("Id") || !j["Id"].is_string()) {
    return absl::InternalError(absl::StrCat("create: no Id in engine answer: ",
                                            resp->body.substr(0, 200)));
  }
  return j["Id"].get<std::string>();
}

absl::StatusOr<int64_t> EngineClient::Wait(
    absl::string_view id, absl::string_view condition, const AbortFn& abort,
    const std::function<void()>& on_sent) {
  auto path =
      VersionedPath(absl::StrCat("/containers/", EscapePath(id),
                                 "/wait?condition=", EscapeQuery(condition)));
  if (!path.ok()) return path.status();
  Request r{.method = "POST",
            .path = *path,
            .streaming = true,
            .abort = &abort,
            .on_sent = &on_sent};
  auto resp = Do(r);
  if (!resp.ok()) return resp.status();
  if (resp->code != 200) return HttpError(r.method, r.path, *resp);
  json j = ParseJson(resp->body);
  if (!j.is_object() || !j.contains("StatusCode") ||
      !j["StatusCode"].is_number_integer()) {
    return absl::InternalError(
        absl::StrCat("wait: unexpected answer: ", resp->body.substr(0, 200)));
  }
  return j["StatusCode"].get<int64_t>();
}

absl::Status EngineClient::Start(absl::string_view id) {
  auto path =
      VersionedPath(absl::StrCat("/containers/", EscapePath(id), "/start"));
  if (!path.ok()) return path.status();
  Request r{.method = "POST", .path = *path};
  auto resp = Do(r);
  if (!resp.ok()) return resp.status();
  if (resp->code == 204 || resp->code == 304) return absl::OkStatus();
  return HttpError(r.method, r.path, *resp);
}

absl::Status EngineClient::Logs(
    absl::string_view id, bool follow,
    const std::function<bool(absl::string_view)>& on_bytes,
    const AbortFn& abort) {
  auto path = VersionedPath(absl::StrCat("/containers/", EscapePath(id),
                                         "/logs?follow=", follow ? 1 : 0,
                                         "&stdout=1&stderr=1"));
  if (!path.ok()) return path.status();
  Request r{.method = "GET",
            .path = *path,
            .streaming = true,
            .on_bytes = &on_bytes,
            .abort = &abort};
  auto resp = Do(r);
  if (!resp.ok()) return resp.status();
  if (resp->code != 200) return HttpError(r.method, r.path, *resp);
  return absl::OkStatus();
}

absl::Status EngineClient::Kill(absl::string_view id) {
  auto path = VersionedPath(
      absl::StrCat("/containers/", EscapePath(id), "/kill?signal=KILL"));
  if (!path.ok()) return path.status();
  Request r{.method = "POST", .path = *path};
  auto resp = Do(r);
  if (!resp.ok()) return resp.status();
  if (resp->code == 204) return absl::OkStatus();
  // Docker answers 409, Podman 500 "container state improper", when the
  // container is not running: nothing left to kill.
  std::string msg = EngineMessage(resp->body);
  if (resp->code == 409 || absl::StrContains(msg, "state improper") ||
      absl::StrContains(msg, "not running")) {
    return absl::OkStatus();
  }
  return HttpError(r.method, r.path, *resp);
}

absl::StatusOr<ContainerState> EngineClient::InspectContainer(
    absl::string_view id) {
  auto path =
      VersionedPath(absl::StrCat("/containers/", EscapePath(id), "/json"));
  if (!path.ok()) return path.status();
  Request r{.method = "GET", .path = *path};
  auto resp = Do(r);
  if (!resp.ok()) return resp.status();
  if (resp->code != 200) return HttpError(r.method, r.path, *resp);
  json j = ParseJson(resp->body);
  if (!j.is_object() || !j.contains("State") || !j["State"].is_object()) {
    return absl::InternalError("inspect: no State in engine answer");
  }
  try {
    const json& s = j["State"];
    ContainerState st;
    st.status = s.value("Status", "");
    st.running = s.value("Running", false);
    st.oom_killed = s.value("OOMKilled", false);
    st.exit_code = s.value("ExitCode", int64_t{0});
    if (s.contains("Pid") && s["Pid"].is_number_integer()) st.pid = s["Pid"];
    if (s.contains("Error") && s["Error"].is_string()) st.error = s["Error"];
    // Docker and Podman say 0001-01-01T00:00:00Z until the exit is recorded.
    if (s.contains("FinishedAt") && s["FinishedAt"].is_string()) {
      const std::string& at = s["FinishedAt"].get_ref<const std::string&>();
      st.finished =
          !st.running && !at.empty() && !absl::StartsWith(at, "0001-01-01");
    }
    if (j.contains("HostConfig") && j["HostConfig"].is_object()) {
      const json& h = j["HostConfig"];
      // null (Podman for a limit it does not keep) counts as none.
      auto limit = [&h](const char* key) -> int64_t {
        auto it = h.find(key);
        return it != h.end() && it->is_number_integer() ? it->get<int64_t>()
                                                        : 0;
      };
      st.memory_bytes = limit("Memory");
      st.memory_swap_bytes = limit("MemorySwap");
      st.pids_limit = limit("PidsLimit");
      st.nano_cpus = limit("NanoCpus");
    }
    return st;
  } catch (const json::exception& e) {
    return absl::InternalError(absl::StrCat("inspect: bad State: ", e.what()));
  }
}

absl::Status EngineClient::Remove(absl::string_view id) {
  auto path = VersionedPath(
      absl::StrCat("/containers/", EscapePath(id), "?force=1&v=1"));
  if (!path.ok()) return path.status();
  Request r{.method = "DELETE", .path = *path};
  auto resp = Do(r);
  if (!resp.ok()) return resp.status();
  if (resp->code == 204 || resp->code == 200 || resp->code == 404) {
    return absl::OkStatus();
  }
  // Podman 4.3 with a user namespace per container sometimes answers 500
  // ("unlinkat .../userdata/shm: device or resource busy") for a container
  // it did remove, its namespace's mounts going away a moment later: a
  // second DELETE tells (404 once it is gone).
  if (resp->code == 500 &&
      absl::StrContains(resp->body, "device or resource busy")) {
    auto again = Do(r);
    if (!again.ok()) return again.status();
    if (again->code == 204 || again->code == 200 || again->code == 404) {
      return absl::OkStatus();
    }
  }
  return HttpError(r.method, r.path, *resp);
}

absl::StatusOr<std::vector<ContainerSummary>> EngineClient::ListContainers(
    absl::string_view label_key, absl::string_view label_value) {
  json filters = {{"label", {absl::StrCat(label_key, "=", label_value)}}};
  auto path = VersionedPath(absl::StrCat("/containers/json?all=1&filters=",
                                         EscapeQuery(filters.dump())));
  if (!path.ok()) return path.status();
  Request r{.method = "GET", .path = *path};
  auto resp = Do(r);
  if (!resp.ok()) return resp.status();
  if (resp->code != 200) return HttpError(r.method, r.path, *resp);
  json j = ParseJson(resp->body);
  if (!j.is_array()) return absl::InternalError("list: answer is not an array");
  std::vector<ContainerSummary> out;
  try {
    AppendSummaries(j, out);
  } catch (const json::exception& e) {
    return absl::InternalError(absl::StrCat("list: bad answer: ", e.what()));
  }
  return out;
}

void EngineClient::AppendSummaries(const json& j,
                                   std::vector<ContainerSummary>& out) {
  for (const json& c : j) {
    if (!c.is_object()) continue;
    ContainerSummary s;
    s.id = c.value("Id", "");
    s.state = c.value("State", "");
    if (c.contains("Names") && c["Names"].is_array() && !c["Names"].empty() &&
        c["Names"][0].is_string()) {
      // Docker and Podman report "/name".
      s.name = std::string(
          absl::StripPrefix(c["Names"][0].get_ref<const std::string&>(), "/"));
    }
    if (c.contains("Labels") && c["Labels"].is_object()) {
      for (auto it = c["Labels"].begin(); it != c["Labels"].end(); ++it) {
        if (it.value().is_string())
          s.labels[it.key()] = it.value().get<std::string>();
      }
    }
    out.push_back(std::move(s));
  }
}

absl::Status EngineClient::CreateVolume(absl::string_view name,
                                        const json& body) {
  auto path = VersionedPath("/volumes/create");
  if (!path.ok()) return path.status();
  Request r{.method = "POST", .path = *path, .body = body.dump()};
  auto resp = Do(r);
  if (!resp.ok()) return resp.status();
  if (resp->code == 201 || resp->code == 200) return absl::OkStatus();
  return HttpError(r.method, r.path, *resp);
}

absl::Status EngineClient::RemoveVolume(absl::string_view name) {
  auto path = VersionedPath(absl::StrCat("/volumes/", EscapePath(name)));
  if (!path.ok()) return path.status();
  Request r{.method = "DELETE", .path = *path};
  auto resp = Do(r);
  if (!resp.ok()) return resp.status();
  if (resp->code == 204 || resp->code == 200 || resp->code == 404) {
    return absl::OkStatus();
  }
  return HttpError(r.method, r.path, *resp);
}

absl::Status EngineClient::InitContainer(absl::string_view id) {
  // Podman's own API: the Docker API has no init. Any 4.x version prefix
  // is served by Podman 4 (the proxy allows /v4.x.y/ only).
  Request r{.method = "POST",
            .path = absl::StrCat("/v4.0.0/libpod/containers/", EscapePath(id),
                                 "/init")};
  auto resp = Do(r);
  if (!resp.ok()) return resp.status();
  if (resp->code == 204 || resp->code == 304 || resp->code == 200) {
    return absl::OkStatus();
  }
  return HttpError(r.method, r.path, *resp);
}

absl::Status EngineClient::PutArchive(absl::string_view id,
                                      absl::string_view dir,
                                      absl::string_view archive) {
  auto path = VersionedPath(
      absl::StrCat("/containers/", EscapePath(id), "/archive?path=", dir));
  if (!path.ok()) return path.status();
  Request r{.method = "PUT", .path = *path, .body = std::string(archive)};
  auto resp = Do(r);
  if (!resp.ok()) return resp.status();
  if (resp->code == 200 || resp->code == 204) return absl::OkStatus();
  return HttpError(r.method, r.path, *resp);
}

absl::Status EngineClient::StreamArchive(
    absl::string_view id, absl::string_view path_in,
    const std::function<bool(absl::string_view)>& on_bytes) {
  auto path = VersionedPath(
      absl::StrCat("/containers/", EscapePath(id), "/archive?path=", path_in));
  if (!path.ok()) return path.status();
  bool stopped = false;
  const std::function<bool(absl::string_view)> sink =
      [&](absl::string_view bytes) {
        stopped = !on_bytes(bytes);
        return !stopped;
      };
  Request r{.method = "GET", .path = *path, .on_bytes = &sink};
  auto resp = Do(r);
  if (stopped) {
    return absl::CancelledError(
        absl::StrCat("archive of ", path_in, ": download stopped"));
  }
  if (!resp.ok()) return resp.status();
  if (resp->code != 200) return HttpError(r.method, r.path, *resp);
  return absl::OkStatus();
}

}  // namespace docker
