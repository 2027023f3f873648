// Callback URLs are parsed by libcurl's own URL parser (curl_url), the one
// that later sends the POST: what is checked here is what is called.
#include "server/callback/callback_url.h"

#include <curl/curl.h>

#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "server/scheduler/spec_validation.h"

namespace server {
namespace {

struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
struct CurlStringDeleter {
  void operator()(char* p) const { curl_free(p); }
};
using CurlString = std::unique_ptr<char, CurlStringDeleter>;

// The part of `u`, or nullptr if it has none.
CurlString Part(CURLU* u, CURLUPart part, unsigned flags = 0) {
  char* out = nullptr;
  if (curl_url_get(u, part, &out, flags) != CURLUE_OK) return nullptr;
  return CurlString(out);
}

}  // namespace

absl::StatusOr<CallbackHosts> CallbackHosts::Parse(
    const std::vector<std::string>& entries) {
  CallbackHosts hosts;
  for (const std::string& raw : entries) {
    const std::string entry =
        absl::AsciiStrToLower(absl::StripAsciiWhitespace(raw));
    if (entry.empty()) continue;
    Entry e;
    absl::string_view port;
    if (entry[0] == '[') {
      const size_t close = entry.find(']');
      if (close == std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--callback_allowed_hosts: '", raw, "': an unclosed '['"));
      }
      e.host = entry.substr(0, close + 1);
      absl::string_view rest = absl::string_view(entry).substr(close + 1);
      if (!rest.empty()) {
        if (rest[0] != ':') {
          return absl::InvalidArgumentError(absl::StrCat(
              "--callback_allowed_hosts: '", raw, "': not [ipv6]:port"));
        }
        port = rest.substr(1);
      }
    } else {
      const size_t colon = entry.find(':');
      e.host = entry.substr(0, colon);
      if (colon != std::string::npos) {
        port = absl::string_view(entry).substr(colon + 1);
      }
    }
    if (e.host.empty() || e.host.find_first_of("/@?#") != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--callback_allowed_hosts: '", raw,
                       "' is not host[:port] (no scheme, path or user)"));
    }
    if (!port.empty() &&
        (!absl::SimpleAtoi(port, &e.port) || e.port <= 0 || e.port > 65535)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--callback_allowed_hosts: '", raw, "': the port must be 1-65535"));
    }
    hosts.entries_.push_back(std::move(e));
  }
  return hosts;
}

bool CallbackHosts::Allows(absl::string_view host, int port) const {
  const std::string h = absl::AsciiStrToLower(host);
  for (const Entry& e : entries_) {
    if (e.host == h && (e.port == 0 || e.port == port)) return true;
  }
  return false;
}

absl::StatusOr<CallbackTarget> CheckCallbackUrl(absl::string_view field,
                                                absl::string_view url,
                                                const CallbackHosts& hosts) {
  auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
  };
  if (hosts.empty()) {
    return invalid(
        "this server sends no completion callbacks (its operator allows no "
        "host: --callback_allowed_hosts is empty); leave callback_url empty "
        "or ask for the host to be allowed");
  }
  if (url.size() > kMaxCallbackUrlBytes) {
    return invalid(
        absl::StrCat("longer than ", kMaxCallbackUrlBytes, " characters"));
  }
  std::unique_ptr<CURLU, UrlDeleter> u(curl_url());
  if (u == nullptr) return absl::ResourceExhaustedError("curl_url failed");
  const std::string text(url);
  // No default scheme guessed: "example.com/x" is refused, not made http.
  if (CURLUcode rc = curl_url_set(u.get(), CURLUPART_URL, text.c_str(), 0);
      rc != CURLUE_OK) {
    return invalid(absl::StrCat("'", url, "' is not a URL (",
                                curl_url_strerror(rc),
                                "); give e.g. https://host/path"));
  }
  CallbackTarget target;
  CurlString scheme = Part(u.get(), CURLUPART_SCHEME);
  target.scheme = absl::AsciiStrToLower(scheme ? scheme.get() : "");
  if (target.scheme != "http" && target.scheme != "https") {
    return invalid(absl::StrCat("the scheme must be http or https, not '",
                                target.scheme, "'"));
  }
  if (Part(u.get(), CURLUPART_USER) != nullptr ||
      Part(u.get(), CURLUPART_PASSWORD) != nullptr) {
    return invalid(
        "a user or password in the URL is not allowed (requests are signed; "
        "see the user guide's 'Completion callbacks')");
  }
  if (Part(u.get(), CURLUPART_FRAGMENT) != nullptr) {
    return invalid("a #fragment is not allowed");
  }
  CurlString host = Part(u.get(), CURLUPART_HOST);
  if (host == nullptr || host.get()[0] == '\0') return invalid("no host");
  target.host = absl::AsciiStrToLower(host.get());
  CurlString port = Part(u.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT);
  if (port == nullptr || !absl::SimpleAtoi(port.get(), &target.port)) {
    return invalid("no port");
  }
  if (!hosts.Allows(target.host, target.port)) {
    return invalid(absl::StrCat(
        "host ", target.host, ":", target.port,
        " is not one this server may call back; its operator allows the "
        "hosts in --callback_allowed_hosts"));
  }
  return target;
}

absl::Status CheckSpecCallback(const crucible::v1::TaskSpec& spec,
                               absl::string_view prefix,
                               const CallbackHosts& hosts) {
  if (spec.callback_url().empty()) return absl::OkStatus();
  return CheckCallbackUrl(absl::StrCat(prefix, "callback_url"),
                          spec.callback_url(), hosts)
      .status();
}

absl::Status CheckCallbacks(const crucible::v1::CreateTaskRequest& request,
                            const CallbackHosts* hosts) {
  static const CallbackHosts* const kNone = new CallbackHosts;
  return CheckSpecCallback(request.spec(), "spec.",
                           hosts != nullptr ? *hosts : *kNone);
}

absl::Status CheckCallbacks(
    const crucible::v1::BatchCreateTasksRequest& request,
    const CallbackHosts* hosts) {
  static const CallbackHosts* const kNone = new CallbackHosts;
  for (int i = 0; i < request.requests_size(); ++i) {
    absl::Status s = CheckSpecCallback(request.requests(i).spec(),
                                       absl::StrCat("requests[", i, "].spec."),
                                       hosts != nullptr ? *hosts : *kNone);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace server
