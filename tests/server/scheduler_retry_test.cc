// Completions, retries with backoff, output storage and events.
#include <string>
#include <vector>

#include "tests/server/scheduler_fixture.h"

namespace server {
namespace {

using crucible::v1::TaskState;

// Records what a subscription sees. Thread-safe.
class RecordingListener : public TaskListener {
 public:
  void OnEvent(const crucible::v1::TaskEvent& event) override {
    absl::MutexLock lock(&mu_);
    states_.push_back(event.state());
  }
  void OnOutput(const crucible::v1::OutputChunk& chunk) override {
    absl::MutexLock lock(&mu_);
    output_ += chunk.data();
  }
  std::vector<TaskState> states() {
    absl::MutexLock lock(&mu_);
    return states_;
  }
  std::string output() {
    absl::MutexLock lock(&mu_);
    return output_;
  }

 private:
  absl::Mutex mu_;
  std::vector<TaskState> states_ ABSL_GUARDED_BY(mu_);
  std::string output_ ABSL_GUARDED_BY(mu_);
};

// INTERNAL is retried but may come from the task itself, so it spends
// attempts (an unreachable executor does not: scheduler_infra_test.cc).
TEST_F(SchedulerTest, RetryableErrorRetriesThenFailsAfterMaxAttempts) {
  options_.default_max_attempts = 3;
  Restart();
  std::string id = Create(Spec());
  FakeSink sink;
  int64_t session = Connect(sink, 1);
  for (int attempt = 1; attempt <= 3; ++attempt) {
    std::vector<crucible::v1::Assignment> got = sink.TakeAssignments();
    ASSERT_EQ(got.size(), 1u) << "attempt " << attempt;
    EXPECT_EQ(got[0].attempt(), attempt);
    ASSERT_TRUE(scheduler_
                    ->ReportCompletion(
                        Error(got[0].lease_id(), absl::StatusCode::kInternal))
                    .ok());
    ASSERT_TRUE(scheduler_->AddCredits(session, 1).ok());
    if (attempt < 3) {
      EXPECT_EQ(Get(id).state(), crucible::v1::TASK_STATE_QUEUED);
      // Exponential backoff: initial * 2^(attempt-1), no jitter here.
      clock_.Advance(options_.initial_backoff * (1 << (attempt - 1)) -
                     absl::Milliseconds(1));
      scheduler_->ExpireLeases();
      EXPECT_TRUE(sink.TakeAssignments().empty()) << "attempt " << attempt;
      clock_.Advance(absl::Milliseconds(1));
      scheduler_->ExpireLeases();
    }
  }
  crucible::v1::Task task = Get(id);
  EXPECT_EQ(task.state(), crucible::v1::TASK_STATE_FAILED);
  EXPECT_EQ(task.attempt(), 3);
  EXPECT_EQ(task.result().reason(),
            crucible::v1::TERMINATION_REASON_INFRASTRUCTURE);
  EXPECT_FALSE(task.last_error().empty());
  EXPECT_TRUE(sink.TakeAssignments().empty());
}

TEST_F(SchedulerTest, NonRetryableErrorFailsAsRejected) {
  std::string id = Create(Spec());
  FakeSink sink;
  Connect(sink, 1);
  std::string lease = sink.TakeAssignments().at(0).lease_id();
  ASSERT_TRUE(
      scheduler_
          ->ReportCompletion(Error(lease, absl::StatusCode::kPermissionDenied))
          .ok());
  crucible::v1::Task task = Get(id);
  EXPECT_EQ(task.state(), crucible::v1::TASK_STATE_FAILED);
  EXPECT_EQ(task.attempt(), 1);
  EXPECT_EQ(task.result().reason(), crucible::v1::TERMINATION_REASON_REJECTED);
  EXPECT_EQ(task.result().error_message(), "boom");
}

TEST_F(SchedulerTest, NonzeroExitFailsWithExitCodeAndIsNotRetried) {
  std::string id = Create(Spec());
  FakeSink sink;
  Connect(sink, 1);
  std::string lease = sink.TakeAssignments().at(0).lease_id();
  ASSERT_TRUE(scheduler_->ReportStarted(lease, clock_.Now()).ok());
  ASSERT_TRUE(scheduler_->ReportCompletion(Exited(lease, 3)).ok());
  crucible::v1::Task task = Get(id);
  EXPECT_EQ(task.state(), crucible::v1::TASK_STATE_FAILED);
  EXPECT_EQ(task.result().exit_code(), 3);
  EXPECT_EQ(task.result().reason(), crucible::v1::TERMINATION_REASON_EXITED);
  EXPECT_EQ(task.attempt(), 1);
  EXPECT_TRUE(task.result().has_start_time());
}

TEST_F(SchedulerTest, NonzeroExitIsRetriedWhenTheSpecAsks) {
  crucible::v1::TaskSpec spec = Spec();
  spec.mutable_retry_policy()->set_retry_on_nonzero_exit(true);
  spec.mutable_retry_policy()->set_max_attempts(2);
  std::string id = Create(spec);
  FakeSink sink;
  int64_t session = Connect(sink, 1);
  std::string lease = sink.TakeAssignments().at(0).lease_id();
  ASSERT_TRUE(scheduler_->ReportCompletion(Exited(lease, 1)).ok());
  EXPECT_EQ(Get(id).state(), crucible::v1::TASK_STATE_QUEUED);
  ASSERT_TRUE(scheduler_->AddCredits(session, 1).ok());
  clock_.Advance(options_.max_backoff);
  scheduler_->ExpireLeases();
  lease = sink.TakeAssignments().at(0).lease_id();
  ASSERT_TRUE(scheduler_->ReportCompletion(Exited(lease, 1)).ok());
  EXPECT_EQ(Get(id).state(), crucible::v1::TASK_STATE_FAILED);
  EXPECT_EQ(Get(id).attempt(), 2);
}

TEST_F(SchedulerTest, ResultReasonsMapToStates) {
  struct Case {
    crucible::v1::TerminationReason reason;
    TaskState state;
  };
  for (const Case& c : {Case{crucible::v1::TERMINATION_REASON_TIMEOUT,
                             crucible::v1::TASK_STATE_TIMED_OUT},
                        Case{crucible::v1::TERMINATION_REASON_OOM_KILLED,
                             crucible::v1::TASK_STATE_FAILED},
                        Case{crucible::v1::TERMINATION_REASON_OUTPUT_LIMIT,
                             crucible::v1::TASK_STATE_FAILED},
                        Case{crucible::v1::TERMINATION_REASON_REJECTED,
                             crucible::v1::TASK_STATE_FAILED},
                        Case{crucible::v1::TERMINATION_REASON_CANCELLED,
                             crucible::v1::TASK_STATE_CANCELLED},
                        Case{crucible::v1::TERMINATION_REASON_INFRASTRUCTURE,
                             crucible::v1::TASK_STATE_QUEUED}}) {
    std::string id = Create(Spec());
    FakeSink sink;
    int64_t session = Connect(sink, 1);
    std::string lease = sink.TakeAssignments().at(0).lease_id();
    crucible::v1::AttemptCompletion done;
    done.set_lease_id(lease);
    done.mutable_result()->set_reason(c.reason);
    ASSERT_TRUE(scheduler_->ReportCompletion(done).ok());
    EXPECT_EQ(Get(id).state(), c.state) << c.reason;
    scheduler_->DisconnectWorker(session);
    if (c.state == crucible::v1::TASK_STATE_QUEUED) {
      ASSERT_TRUE(scheduler_->CancelTask(kTenant, id, "").ok());
    }
  }
}

TEST_F(SchedulerTest, OutputIsStoredPerAttemptAndCapped) {
  crucible::v1::TaskSpec spec = Spec();
  spec.set_max_output_bytes(8);
  std::string id = Create(spec);
  RecordingListener listener;
  auto sub = scheduler_->Subscribe(kTenant, id, &listener);
  ASSERT_TRUE(sub.ok());
  FakeSink sink;
  Connect(sink, 1);
  std::string lease = sink.TakeAssignments().at(0).lease_id();
  crucible::v1::OutputChunk chunk;
  chunk.set_stream(crucible::v1::OUTPUT_STREAM_STDOUT);
  chunk.set_offset(0);
  chunk.set_data("hello ");
  ASSERT_TRUE(scheduler_->ReportOutput(lease, chunk).ok());
  chunk.set_offset(6);
  chunk.set_data("world\n");
  ASSERT_TRUE(scheduler_->ReportOutput(lease, chunk).ok());
  ASSERT_TRUE(scheduler_->ReportCompletion(Exited(lease, 0)).ok());

  auto stored = scheduler_->ReadOutput(
      kTenant, id, 1, 0, crucible::v1::OUTPUT_STREAM_UNSPECIFIED, 1 << 20);
  ASSERT_TRUE(stored.ok());
  std::string all;
  for (const auto& c : *stored) all += c.data();
  EXPECT_EQ(all, "hello wo");
  Settle();
  EXPECT_EQ(listener.output(), "hello wo");
  EXPECT_TRUE(Get(id).result().output_truncated());
  scheduler_->Unsubscribe(sub->id);
}

TEST_F(SchedulerTest, SubscribersSeeEveryTransitionInOrder) {
  std::string id = Create(Spec());
  RecordingListener listener;
  auto sub = scheduler_->Subscribe(kTenant, id, &listener);
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(sub->task.state(), crucible::v1::TASK_STATE_QUEUED);
  FakeSink sink;
  Connect(sink, 1);
  std::string lease = sink.TakeAssignments().at(0).lease_id();
  ASSERT_TRUE(scheduler_->ReportStarted(lease, clock_.Now()).ok());
  ASSERT_TRUE(scheduler_->ReportCompletion(Exited(lease, 0)).ok());
  Settle();
  EXPECT_EQ(listener.states(),
            (std::vector<TaskState>{crucible::v1::TASK_STATE_LEASED,
                                    crucible::v1::TASK_STATE_RUNNING,
                                    crucible::v1::TASK_STATE_SUCCEEDED}));
  scheduler_->Unsubscribe(sub->id);
  // A terminal task gives a snapshot and no registration.
  auto done = scheduler_->Subscribe(kTenant, id, &listener);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->id, 0);
  EXPECT_EQ(done->task.state(), crucible::v1::TASK_STATE_SUCCEEDED);
}

}  // namespace
}  // namespace server
