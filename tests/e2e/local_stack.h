#ifndef CRUCIBLE_TESTS_E2E_LOCAL_STACK_H_
#define CRUCIBLE_TESTS_E2E_LOCAL_STACK_H_

#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"
#include "tests/testing/test_stack.h"

namespace testing_util {

// The three Crucible binaries started as real processes against the test
// engine's proxy: crucible-server (SQLite in a temp dir), crucible-executor
// and crucible-worker, each on an ephemeral 127.0.0.1 port. Confined to the
// test thread that owns it; stops everything when destroyed.
class LocalStack {
 public:
  // Starts the stack against `docker_host` (tcp://... of the proxy).
  absl::Status Start(const std::string& docker_host);
  // SIGTERM to worker, executor, server in that order; returns the first
  // process that did not exit 0 within 15 s as an error.
  absl::Status Stop();

  std::string server_address() const;
  int server_port() const { return server_port_; }
  int executor_port() const { return executor_port_; }
  int worker_port() const { return worker_port_; }
  crucible::v1::TaskService::Stub& tasks() { return *tasks_; }
  const std::string& dir() const { return dir_; }
  // All logs, for failure messages.
  std::string Logs() const;

 private:
  absl::Status StartOne(const std::string& name, std::vector<std::string> args,
                        std::optional<Process>& process, int& port);
  std::string dir_;
  std::optional<Process> server_, executor_, worker_;
  int server_port_ = 0, executor_port_ = 0, worker_port_ = 0;
  std::unique_ptr<crucible::v1::TaskService::Stub> tasks_;
};

// GetTask through `tasks` with a 10 s deadline; a failed call fails the
// test (and gives an empty task).
crucible::v1::Task GetTaskOrFail(crucible::v1::TaskService::Stub& tasks,
                                 const std::string& id);

// A GoogleTest fixture whose tests share one LocalStack, started once per
// suite against the engine fixture (tests fail in CI, skip elsewhere, when
// there is none). `Base` is ::testing::Test or ::testing::TestWithParam<T>.
template <typename Base = ::testing::Test>
class LocalStackSuite : public Base {
 protected:
  static void SetUpTestSuite() {
    stack_ = TestStackFromEnv();
    if (stack_.docker_host.empty()) return;
    local_ = new LocalStack;
    start_status_ = local_->Start(stack_.docker_host);
  }
  static void TearDownTestSuite() {
    delete local_;
    local_ = nullptr;
  }
  void SetUp() override {
    REQUIRE_TEST_STACK(stack_);
    ASSERT_TRUE(start_status_.ok()) << start_status_ << "\n" << local_->Logs();
  }
  void TearDown() override {
    if (this->HasFailure() && local_ != nullptr) std::cerr << local_->Logs();
  }

  static inline TestStack stack_;
  static inline LocalStack* local_ = nullptr;
  static inline absl::Status start_status_;
};

}  // namespace testing_util

#endif  // CRUCIBLE_TESTS_E2E_LOCAL_STACK_H_
