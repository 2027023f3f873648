#include "tests/testing/process_flags.h"

#include "absl/strings/match.h"

namespace testing_util {

std::vector<std::string> ServerTestFlags() {
  return {"--insecure", "--allow_anonymous"};
}

std::vector<std::string> WorkerTestFlags() { return {"--insecure"}; }

std::vector<std::string> ExecutorTestFlags() { return {"--insecure"}; }

std::vector<std::string> TestFlagsFor(const std::string& binary) {
  if (absl::EndsWith(binary, "crucible-server")) return ServerTestFlags();
  if (absl::EndsWith(binary, "crucible-worker")) return WorkerTestFlags();
  if (absl::EndsWith(binary, "crucible-executor")) return ExecutorTestFlags();
  return {};
}

std::vector<std::string> WithTestFlags(std::vector<std::string> args) {
  if (args.empty()) return args;
  for (std::string& flag : TestFlagsFor(args.front())) {
    args.push_back(std::move(flag));
  }
  return args;
}

}  // namespace testing_util
