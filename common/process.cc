#include "common/process.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "glog/logging.h"

namespace common {

namespace {

sigset_t StopSignals(std::initializer_list<int> also) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  for (int sig : also) sigaddset(&set, sig);
  return set;
}

}  // namespace

void BlockStopSignals(std::initializer_list<int> also) {
  sigset_t set = StopSignals(also);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForStopSignal(std::initializer_list<int> also) {
  sigset_t set = StopSignals(also);
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  return sig;
}

void RequestStop() { kill(getpid(), SIGTERM); }

void InitLogging(const char* argv0) {
  if (std::getenv("GLOG_log_dir") == nullptr &&
      std::getenv("GLOG_logtostderr") == nullptr) {
    FLAGS_logtostderr = true;
  }
  google::InitGoogleLogging(argv0);
}

void ParseFlags(int argc, char** argv, absl::string_view usage) {
  absl::FlagsUsageConfig config;
  auto ours = [](absl::string_view file) {
    return !absl::StrContains(file, "absl/");
  };
  config.contains_help_flags = ours;
  config.contains_helpshort_flags = ours;
  absl::SetFlagsUsageConfig(config);
  absl::SetProgramUsageMessage(usage);
  absl::ParseCommandLine(argc, argv);
}

}  // namespace common
