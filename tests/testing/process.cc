#include "tests/testing/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"

extern char** environ;

namespace testing_util {
namespace {

std::vector<char*> CStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (std::string& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::vector<std::string> MergedEnv(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  for (const std::string& kv : extra) {
    const std::string key = kv.substr(0, kv.find('=') + 1);
    std::erase_if(env,
                  [&](const std::string& s) { return s.rfind(key, 0) == 0; });
    env.push_back(kv);
  }
  return env;
}

// Unblocks the stop signals the parent may have blocked, then execs.
[[noreturn]] void ExecChild(std::vector<std::string>& argv,
                            std::vector<std::string>& env) {
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  std::vector<char*> cargv = CStrings(argv);
  std::vector<char*> cenv = CStrings(env);
  execve(cargv[0], cargv.data(), cenv.data());
  _exit(127);
}

}  // namespace

absl::StatusOr<Process> Process::Start(std::vector<std::string> argv,
                                       std::string log_path,
                                       std::vector<std::string> env) {
  if (access(argv[0].c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat(argv[0], " is not an executable"));
  }
  std::vector<std::string> full_env = MergedEnv(env);
  const int log_fd =
      open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (log_fd < 0) return absl::InternalError(absl::StrCat("open ", log_path));
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    const int null_fd = open("/dev/null", O_RDONLY);
    dup2(null_fd, 0);
    ExecChild(argv, full_env);
  }
  close(log_fd);
  return Process(pid, std::move(log_path));
}

Process::Process(Process&& other) noexcept { *this = std::move(other); }

Process& Process::operator=(Process&& other) noexcept {
  pid_ = other.pid_;
  log_path_ = std::move(other.log_path_);
  reaped_ = other.reaped_;
  wait_status_ = other.wait_status_;
  other.pid_ = -1;
  return *this;
}

Process::~Process() {
  if (pid_ > 0 && !reaped_) {
    if (!Stop(SIGTERM, absl::Seconds(10)).ok()) {
      (void)Stop(SIGKILL, absl::Seconds(10));
    }
  }
}

bool Process::Running() {
  if (pid_ <= 0 || reaped_) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    reaped_ = true;
    wait_status_ = status;
    return false;
  }
  return true;
}

absl::StatusOr<int> Process::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (Running()) {
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("pid ", pid_, " still running"));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return wait_status_;
}

absl::StatusOr<int> Process::Stop(int signal, absl::Duration timeout) {
  if (Running()) kill(pid_, signal);
  return Wait(timeout);
}

std::string Process::Log() const { return ReadFile(log_path_); }

absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         absl::Duration timeout,
                                         const std::vector<std::string>& env,
                                         const std::string& stdin_data) {
  const std::string dir = MakeTempDir("cmd");
  const std::string out_path = dir + "/out", err_path = dir + "/err",
                    in_path = dir + "/in";
  {
    std::ofstream in(in_path, std::ios::binary);
    in << stdin_data;
  }
  std::vector<std::string> args = argv;
  std::vector<std::string> full_env = MergedEnv(env);
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    dup2(open(in_path.c_str(), O_RDONLY), 0);
    dup2(open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), 1);
    dup2(open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), 2);
    ExecChild(args, full_env);
  }
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (absl::Now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return absl::DeadlineExceededError(absl::StrCat(
          argv[0], " did not finish in ", absl::FormatDuration(timeout),
          "; stderr: ", ReadFile(err_path)));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  return result;
}

absl::StatusOr<int> WaitForPortFile(const std::string& path, Process& process,
                                    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int port = 0;
    std::string text = ReadFile(path);
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &port) && port > 0) {
      return port;
    }
    if (!process.Running()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "process exited before writing ", path, "; log:\n", process.Log()));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::DeadlineExceededError(absl::StrCat("no port in ", path));
}

std::string MakeTempDir(const std::string& prefix) {
  std::string tmpl = absl::StrCat(::testing::TempDir(), "/", prefix, "-XXXXXX");
  char* made = mkdtemp(tmpl.data());
  return made == nullptr ? "" : std::string(made);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace testing_util
