#include "tests/testing/http_get.h"

#include <curl/curl.h>

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace testing_util {
namespace {

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

}  // namespace

absl::StatusOr<HttpReply> HttpRequest(const std::string& url,
                                      absl::Duration timeout,
                                      const std::string& method) {
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  HttpReply reply;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  // An empty body with its Content-Length: 0, so no server waits for one.
  if (method != "GET") curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(timeout)));
  const CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.code);
    char* type = nullptr;
    curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
    if (type != nullptr) reply.content_type = type;
  }
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(
        absl::StrCat(url, ": ", curl_easy_strerror(rc)));
  }
  return reply;
}

absl::StatusOr<std::string> ScrapeMetrics(int port, absl::Duration timeout) {
  absl::StatusOr<HttpReply> reply =
      HttpRequest(absl::StrCat("http://127.0.0.1:", port, "/metrics"), timeout);
  if (!reply.ok()) return reply.status();
  if (reply->code != 200) {
    return absl::InternalError(absl::StrCat("/metrics: HTTP ", reply->code));
  }
  return reply->body;
}

std::optional<double> SampleValue(absl::string_view text,
                                  absl::string_view series) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::ConsumePrefix(&line, series) || !absl::ConsumePrefix(&line, " "))
      continue;
    if (line == "+Inf") return HUGE_VAL;
    double v = 0;
    if (absl::SimpleAtod(line, &v)) return v;
  }
  return std::nullopt;
}

double ExposedValue(absl::string_view text, absl::string_view series) {
  std::optional<double> v = SampleValue(text, series);
  if (!v.has_value()) ADD_FAILURE() << series << " is not exposed";
  return v.value_or(-1);
}

}  // namespace testing_util
