#ifndef CRUCIBLE_TESTS_TESTING_HTTP_GET_H_
#define CRUCIBLE_TESTS_TESTING_HTTP_GET_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace testing_util {

struct HttpReply {
  long code = 0;  // NOLINT(runtime/int): libcurl's type
  std::string content_type;
  std::string body;
};

// One plain HTTP request (libcurl), `method` GET unless told; UNAVAILABLE
// if no answer came within `timeout`.
absl::StatusOr<HttpReply> HttpRequest(const std::string& url,
                                      absl::Duration timeout,
                                      const std::string& method = "GET");

// GET http://127.0.0.1:<port>/metrics: the body of a 200, else an error.
absl::StatusOr<std::string> ScrapeMetrics(
    int port, absl::Duration timeout = absl::Seconds(10));

// The value of the sample `series` (its name and labels exactly as exposed,
// e.g. `crucible_x_total{state="FAILED"}`) in a text exposition; nullopt if
// absent.
std::optional<double> SampleValue(absl::string_view text,
                                  absl::string_view series);
// SampleValue of a series that must be there: absent, it is a test failure
// (ADD_FAILURE naming it) and -1.
double ExposedValue(absl::string_view text, absl::string_view series);

}  // namespace testing_util

#endif  // CRUCIBLE_TESTS_TESTING_HTTP_GET_H_
