#ifndef CRUCIBLE_WORKER_DISCOVERY_H_
#define CRUCIBLE_WORKER_DISCOVERY_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace worker {

// Where the executors' addresses come from; the union of all sources.
struct DiscoveryOptions {
  // Fixed host:port addresses (--executors).
  std::vector<std::string> static_addresses;
  // host:port whose host resolves (DNS, /etc/hosts) to any number of
  // addresses, e.g. a Kubernetes headless Service (--executors_dns).
  std::string dns_name;
  // A file of host:port lines ('#' comments, blank lines ignored), re-read
  // on every Resolve (--executors_file).
  std::string file;
  // Resolves dns_name; ResolveHostPort if unset (tests inject a slow one).
  std::function<absl::StatusOr<std::vector<std::string>>(const std::string&)>
      resolve_host;
};

// Checks that `address` is host:port (or [v6]:port) with a port in 1..65535.
absl::Status ValidateHostPort(const std::string& address);

// The addresses of a host:port: one ip:port (or [ip6]:port) per address the
// host resolves to, via getaddrinfo; sorted, without duplicates.
absl::StatusOr<std::vector<std::string>> ResolveHostPort(
    const std::string& host_port);

// The host:port lines of a file.
absl::StatusOr<std::vector<std::string>> ReadAddressFile(
    const std::string& path);

// Turns DiscoveryOptions into the current list of executor addresses. A
// source that fails (DNS error, unreadable file) keeps its last good answer,
// so a transient failure does not empty the pool. Confined to one thread.
// Blocks on DNS and file I/O; no gRPC.
class Discovery {
 public:
  explicit Discovery(DiscoveryOptions options) : options_(std::move(options)) {}

  // INVALID_ARGUMENT naming the flag if an option is malformed or no
  // source is given.
  static absl::Status Validate(const DiscoveryOptions& options);

  // The current union of every source, sorted, without duplicates.
  std::vector<std::string> Resolve();

 private:
  const DiscoveryOptions options_;
  std::optional<std::vector<std::string>> last_dns_, last_file_;
};

}  // namespace worker

#endif  // CRUCIBLE_WORKER_DISCOVERY_H_
