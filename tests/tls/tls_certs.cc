#include "tests/tls/tls_certs.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tests/testing/process.h"
#include "tests/testing/test_stack.h"

namespace tls_testing {
namespace {

absl::Status RunCerts(std::vector<std::string> argv) {
  argv.insert(argv.begin(), testing_util::SourcePath("deploy/local/certs"));
  absl::StatusOr<testing_util::CommandResult> r =
      testing_util::RunCommand(argv, absl::Seconds(60));
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::InternalError(
        absl::StrCat("deploy/local/certs failed: ", r->err));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status MakeCerts(const std::string& dir) { return RunCerts({dir}); }

absl::Status IssueCert(const std::string& dir, const std::string& name,
                       const std::vector<std::string>& sans) {
  std::vector<std::string> argv = {"issue", dir, name};
  argv.insert(argv.end(), sans.begin(), sans.end());
  return RunCerts(argv);
}

std::vector<std::string> TlsFlags(const std::string& dir,
                                  const std::string& name) {
  return {absl::StrCat("--tls_cert=", dir, "/", name, ".pem"),
          absl::StrCat("--tls_key=", dir, "/", name, ".key"),
          absl::StrCat("--tls_ca=", dir, "/ca.pem")};
}

std::shared_ptr<grpc::ChannelCredentials> ClientCredentials(
    const std::string& ca_file, const std::string& dir,
    const std::string& name) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = testing_util::ReadFile(ca_file);
  if (!name.empty()) {
    options.pem_cert_chain =
        testing_util::ReadFile(absl::StrCat(dir, "/", name, ".pem"));
    options.pem_private_key =
        testing_util::ReadFile(absl::StrCat(dir, "/", name, ".key"));
  }
  return grpc::SslCredentials(options);
}

std::shared_ptr<grpc::Channel> FreshChannel(
    int port, std::shared_ptr<grpc::ChannelCredentials> credentials) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                   std::move(credentials), args);
}

}  // namespace tls_testing
