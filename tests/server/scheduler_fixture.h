#ifndef CRUCIBLE_TESTS_SERVER_SCHEDULER_FIXTURE_H_
#define CRUCIBLE_TESTS_SERVER_SCHEDULER_FIXTURE_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/proto_time.h"
#include "gtest/gtest.h"
#include "server/outbox/durable_outbox.h"
#include "server/scheduler/scheduler.h"
#include "server/store/sqlite_task_store.h"
#include "tests/server/test_util.h"

namespace server {

// The tenant of the tests' calls.
inline const TenantScope kTenant{.tenant = "default"};

// Collects what the scheduler sends to one worker. Thread-safe.
// Announcements leave once durable, on the outbox's callback thread: the Take*
// methods first wait (settle) for every one decided so far.
class FakeSink : public WorkerSink {
 public:
  std::function<void()> settle = [] {};
  // What was decided before the sink goes is delivered first, so no
  // announcement reaches it afterwards (its session may still be
  // registered when a test ends).
  ~FakeSink() override { settle(); }
  void Send(crucible::v1::ConnectResponse message) override {
    absl::MutexLock lock(&mu_);
    messages_.push_back(std::move(message));
  }
  // Returns and forgets the assignments received so far.
  std::vector<crucible::v1::Assignment> TakeAssignments() {
    settle();
    absl::MutexLock lock(&mu_);
    std::vector<crucible::v1::Assignment> out;
    std::vector<crucible::v1::ConnectResponse> rest;
    for (auto& m : messages_) {
      if (m.has_assignment()) {
        out.push_back(m.assignment());
      } else {
        rest.push_back(std::move(m));
      }
    }
    messages_ = std::move(rest);
    return out;
  }
  std::vector<crucible::v1::AssignmentCancel> TakeCancels() {
    settle();
    absl::MutexLock lock(&mu_);
    std::vector<crucible::v1::AssignmentCancel> out;
    std::vector<crucible::v1::ConnectResponse> rest;
    for (auto& m : messages_) {
      if (m.has_cancel()) {
        out.push_back(m.cancel());
      } else {
        rest.push_back(std::move(m));
      }
    }
    messages_ = std::move(rest);
    return out;
  }

 private:
  absl::Mutex mu_;
  std::vector<crucible::v1::ConnectResponse> messages_ ABSL_GUARDED_BY(mu_);
};

// A scheduler on a real SQLite file in a fresh temp dir, with a FakeClock.
class SchedulerTest : public testing::Test {
 protected:
  void SetUp() override {
    path_ = testing_util::FreshDir() + "/tasks.db";
    options_.backoff_jitter = 0;
    Open();
  }
  void Open() {
    auto store = SqliteTaskStore::Open({.path = path_});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    outbox_ = std::make_unique<DurableOutbox>(*store_, DurableOutboxOptions{});
    auto scheduler = Scheduler::Create(options_, *store_, *outbox_, clock_);
    ASSERT_TRUE(scheduler.ok()) << scheduler.status();
    scheduler_ = *std::move(scheduler);
  }
  // Drops the scheduler and the store and opens both again, as a restart.
  void Restart() {
    scheduler_.reset();
    outbox_.reset();
    store_.reset();
    Open();
  }
  static crucible::v1::TaskSpec Spec(int priority = 0) {
    crucible::v1::TaskSpec spec;
    spec.set_image("localhost/crucible/busybox:latest");
    spec.add_command("true");
    spec.set_priority(priority);
    return spec;
  }
  std::string Create(crucible::v1::TaskSpec spec) {
    auto task = scheduler_->CreateTask(kTenant, std::move(spec), "");
    EXPECT_TRUE(task.ok()) << task.status();
    return task.ok() ? task->id() : "";
  }
  crucible::v1::Task Get(const std::string& id) {
    auto task = scheduler_->GetTask(kTenant, id);
    EXPECT_TRUE(task.ok()) << task.status();
    return task.ok() ? *task : crucible::v1::Task();
  }
  // Waits until every announcement decided so far was delivered.
  void Settle() { outbox_->DrainCallbacks(); }
  int64_t Connect(FakeSink& sink, int credits, const std::string& id = "w1") {
    sink.settle = [this] { Settle(); };
    auto session = scheduler_->ConnectWorker(id, credits, &sink);
    EXPECT_TRUE(session.ok()) << session.status();
    return session.ok() ? *session : 0;
  }
  static crucible::v1::AttemptCompletion Exited(const std::string& lease,
                                                int code) {
    crucible::v1::AttemptCompletion c;
    c.set_lease_id(lease);
    c.mutable_result()->set_reason(crucible::v1::TERMINATION_REASON_EXITED);
    c.mutable_result()->set_exit_code(code);
    return c;
  }
  static crucible::v1::AttemptCompletion Error(const std::string& lease,
                                               absl::StatusCode code) {
    crucible::v1::AttemptCompletion c;
    c.set_lease_id(lease);
    c.mutable_error()->set_code(static_cast<int>(code));
    c.mutable_error()->set_message("boom");
    return c;
  }

  common::FakeClock clock_;
  SchedulerOptions options_;
  std::string path_;
  std::unique_ptr<SqliteTaskStore> store_;
  std::unique_ptr<DurableOutbox> outbox_;
  std::unique_ptr<Scheduler> scheduler_;
};

}  // namespace server

#endif  // CRUCIBLE_TESTS_SERVER_SCHEDULER_FIXTURE_H_
