#include "worker/discovery.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <fstream>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "glog/logging.h"

namespace worker {
namespace {

// Splits host:port or [v6]:port.
absl::Status SplitHostPort(const std::string& address, std::string& host,
                           std::string& port) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", address, "' is not host:port"));
  }
  host = address.substr(0, colon);
  port = address.substr(colon + 1);
  if (host.front() == '[') {
    if (host.back() != ']' || host.size() < 3) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", address, "' is not [v6]:port"));
    }
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", address, "': write IPv6 addresses as [addr]:port"));
  }
  int n = 0;
  if (!absl::SimpleAtoi(port, &n) || n < 1 || n > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", address, "': bad port"));
  }
  return absl::OkStatus();
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

}  // namespace

absl::Status ValidateHostPort(const std::string& address) {
  std::string host, port;
  return SplitHostPort(address, host, port);
}

absl::StatusOr<std::vector<std::string>> ResolveHostPort(
    const std::string& host_port) {
  std::string host, port;
  if (absl::Status s = SplitHostPort(host_port, host, port); !s.ok()) return s;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("resolving ", host, ": ", gai_strerror(rc)));
  }
  std::vector<std::string> out;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    char ip[INET6_ADDRSTRLEN] = {0};
    if (ai->ai_family == AF_INET) {
      auto* sa = reinterpret_cast<sockaddr_in*>(ai->ai_addr);
      inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof(ip));
      out.push_back(absl::StrCat(ip, ":", port));
    } else if (ai->ai_family == AF_INET6) {
      auto* sa = reinterpret_cast<sockaddr_in6*>(ai->ai_addr);
      inet_ntop(AF_INET6, &sa->sin6_addr, ip, sizeof(ip));
      out.push_back(absl::StrCat("[", ip, "]:", port));
    }
  }
  freeaddrinfo(res);
  return Sorted(std::move(out));
}

absl::StatusOr<std::vector<std::string>> ReadAddressFile(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::UnavailableError(absl::StrCat("cannot read ", path));
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view l = absl::StripAsciiWhitespace(line);
    if (l.empty() || l.front() == '#') continue;
    std::string address(l);
    if (absl::Status s = ValidateHostPort(address); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", s.message()));
    }
    out.push_back(std::move(address));
  }
  return Sorted(std::move(out));
}

absl::Status Discovery::Validate(const DiscoveryOptions& options) {
  if (options.static_addresses.empty() && options.dns_name.empty() &&
      options.file.empty()) {
    return absl::InvalidArgumentError(
        "no executors: give --executors, --executors_dns or --executors_file");
  }
  for (const std::string& a : options.static_addresses) {
    if (absl::Status s = ValidateHostPort(a); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--executors: ", s.message()));
    }
  }
  if (!options.dns_name.empty()) {
    if (absl::Status s = ValidateHostPort(options.dns_name); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--executors_dns: ", s.message()));
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> Discovery::Resolve() {
  std::vector<std::string> all = options_.static_addresses;
  if (!options_.dns_name.empty()) {
    absl::StatusOr<std::vector<std::string>> r =
        options_.resolve_host ? options_.resolve_host(options_.dns_name)
                              : ResolveHostPort(options_.dns_name);
    if (r.ok()) {
      last_dns_ = *std::move(r);
    } else {
      LOG(WARNING) << "--executors_dns: " << r.status()
                   << "; keeping the last answer";
    }
  }
  if (!options_.file.empty()) {
    absl::StatusOr<std::vector<std::string>> r = ReadAddressFile(options_.file);
    if (r.ok()) {
      last_file_ = *std::move(r);
    } else {
      LOG(WARNING) << "--executors_file: " << r.status()
                   << "; keeping the last list";
    }
  }
  if (last_dns_.has_value())
    all.insert(all.end(), last_dns_->begin(), last_dns_->end());
  if (last_file_.has_value())
    all.insert(all.end(), last_file_->begin(), last_file_->end());
  return Sorted(std::move(all));
}

}  // namespace worker
