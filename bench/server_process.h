#ifndef CRUCIBLE_BENCH_SERVER_PROCESS_H_
#define CRUCIBLE_BENCH_SERVER_PROCESS_H_

// crucible-server processes of the benchmarks that need a real one (its own
// memory, a kill -9, a restart): started, waited for, checked.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace bench {

// Where crucible-server is: `bin_dir` (a --bin_dir flag), or the directory
// of this benchmark's own binary when that is empty.
inline std::string BinDirOr(const std::string& bin_dir) {
  if (!bin_dir.empty()) return bin_dir;
  return std::filesystem::canonical("/proc/self/exe").parent_path().string();
}

// Empties `dir` (a --dir flag) and creates it again.
inline void FreshDir(const std::string& dir) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
}

// A crucible-server started with `args` (args[0] the binary; one of them
// --port_file=`port_file`).
struct ServerProcess {
  std::vector<std::string> args;
  std::string port_file;
  pid_t pid = 0;
  int port = 0;
};

// Starts `s` with its output appended to `log` and waits up to `timeout`
// for the port it writes to its port file. False if it wrote none.
inline bool Spawn(ServerProcess& s, const std::string& log,
                  absl::Duration timeout = absl::Seconds(30)) {
  std::filesystem::remove(s.port_file);
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    FILE* f = std::fopen(log.c_str(), "a");
    if (f != nullptr) {
      dup2(fileno(f), 1);
      dup2(fileno(f), 2);
    }
    std::vector<char*> argv;
    for (std::string& a : s.args) argv.push_back(a.data());
    argv.push_back(nullptr);
    setenv("GLOG_logtostderr", "1", 1);
    execv(argv[0], argv.data());
    _exit(127);
  }
  s.pid = pid;
  for (absl::Time until = absl::Now() + timeout; absl::Now() < until;
       absl::SleepFor(absl::Milliseconds(5))) {
    std::ifstream in(s.port_file);
    std::string text((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
    int port = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &port) && port > 0) {
      s.port = port;
      return true;
    }
  }
  return false;
}

// Whether the server on `port` answers its gRPC health check SERVING.
inline bool Serving(int port) {
  auto stub = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(500));
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  return stub->Check(&ctx, req, &resp).ok() &&
         resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

}  // namespace bench

#endif  // CRUCIBLE_BENCH_SERVER_PROCESS_H_
