#ifndef CRUCIBLE_TESTS_TLS_TLS_CERTS_H_
#define CRUCIBLE_TESTS_TLS_TLS_CERTS_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace tls_testing {

// A CA and the stack's certificates made at test time by deploy/local/certs
// (openssl CLI) in `dir`: ca.pem, server.*, executor.*, worker.*
// (DNS:crucible-worker) and client.* (DNS:crucible-client). Nothing is
// committed.
absl::Status MakeCerts(const std::string& dir);

// (Re)issues dir/name.pem and .key from dir's CA with `sans` ("DNS:x").
absl::Status IssueCert(const std::string& dir, const std::string& name,
                       const std::vector<std::string>& sans);

// The TLS flags of a server or executor serving with dir/<name>.{pem,key}
// and trusting dir/ca.pem.
std::vector<std::string> TlsFlags(const std::string& dir,
                                  const std::string& name);

// Client credentials trusting `ca_file`, presenting `name`.pem/key from
// `dir` unless `name` is empty.
std::shared_ptr<grpc::ChannelCredentials> ClientCredentials(
    const std::string& ca_file, const std::string& dir = "",
    const std::string& name = "");

// A channel of its own (no connection shared with other channels), so each
// one makes a new handshake.
std::shared_ptr<grpc::Channel> FreshChannel(
    int port, std::shared_ptr<grpc::ChannelCredentials> credentials);

}  // namespace tls_testing

#endif  // CRUCIBLE_TESTS_TLS_TLS_CERTS_H_
