#ifndef CRUCIBLE_SERVER_CALLBACK_CALLBACK_URL_H_
#define CRUCIBLE_SERVER_CALLBACK_CALLBACK_URL_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crucible/v1/task.pb.h"
#include "crucible/v1/task_service.pb.h"

namespace server {

// The hosts completion callbacks may be sent to (--callback_allowed_hosts).
// Each entry is `host` (any port) or `host:port`; an IPv6 literal is written
// in brackets (`[::1]:8080`). Hosts compare case-insensitively. Empty:
// callbacks are refused. Immutable, so thread-safe.
class CallbackHosts {
 public:
  CallbackHosts() = default;
  // INVALID_ARGUMENT for an entry that is not host[:port].
  static absl::StatusOr<CallbackHosts> Parse(
      const std::vector<std::string>& entries);

  bool empty() const { return entries_.empty(); }
  // Whether `host` (as a URL gives it, IPv6 in brackets) on `port` may be
  // called.
  bool Allows(absl::string_view host, int port) const;

 private:
  struct Entry {
    std::string host;  // lower case
    int port = 0;      // 0: any
  };
  std::vector<Entry> entries_;
};

// What the server takes of a callback URL.
struct CallbackTarget {
  std::string scheme;  // http or https
  std::string host;    // lower case; IPv6 in brackets
  int port = 0;        // explicit or the scheme's default
};

// Parses `url` and checks it against `hosts`: http or https, no userinfo,
// no fragment, a host in the list. INVALID_ARGUMENT saying what is wrong,
// prefixed with `field` (and naming --callback_allowed_hosts when the list
// is empty). Thread-safe.
absl::StatusOr<CallbackTarget> CheckCallbackUrl(absl::string_view field,
                                                absl::string_view url,
                                                const CallbackHosts& hosts);

// OK if `spec` names no callback_url, else CheckCallbackUrl of it with the
// field `<prefix>callback_url`.
absl::Status CheckSpecCallback(const crucible::v1::TaskSpec& spec,
                               absl::string_view prefix,
                               const CallbackHosts& hosts);

// CheckSpecCallback of every spec of a request; `hosts` null: none allowed.
absl::Status CheckCallbacks(const crucible::v1::CreateTaskRequest& request,
                            const CallbackHosts* hosts);
absl::Status CheckCallbacks(
    const crucible::v1::BatchCreateTasksRequest& request,
    const CallbackHosts* hosts);

}  // namespace server

#endif  // CRUCIBLE_SERVER_CALLBACK_CALLBACK_URL_H_
