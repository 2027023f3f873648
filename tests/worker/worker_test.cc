// The worker against a fake QueueService and a fake ExecutorService, both
// real gRPC servers on 127.0.0.1 ephemeral ports.
#include "worker/worker.h"

#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/worker/fake_services.h"

namespace worker {
namespace {

using crucible::v1::ConnectRequest;
using crucible::v1::ConnectResponse;
using Messages = worker_test::FakeQueue::Messages;
using Mode = worker_test::FakeExecutor::Mode;
using testing::ElementsAre;
using testing::UnorderedElementsAre;

std::unique_ptr<grpc::Server> StartServer(grpc::Service* service, int* port) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), port);
  builder.RegisterService(service);
  return builder.BuildAndStart();
}

ConnectResponse Assign(const std::string& lease, const std::string& task_id, int attempt) {
  ConnectResponse msg;
  crucible::v1::Assignment* a = msg.mutable_assignment();
  a->set_lease_id(lease);
  a->set_attempt(attempt);
  a->mutable_task()->set_id(task_id);
  a->mutable_task()->mutable_spec()->set_image("localhost/crucible/busybox:latest");
  a->mutable_task()->mutable_spec()->add_command("echo");
  a->mutable_task()->mutable_spec()->add_command("hi");
  a->mutable_task()->mutable_spec()->mutable_timeout()->set_seconds(30);
  (*a->mutable_task()->mutable_spec()->mutable_env())["K"] = "V";
  return msg;
}

// Reports about `lease`, in the order received.
Messages About(const Messages& all, const std::string& lease) {
  Messages out;
  for (const ConnectRequest& m : all) {
    if ((m.has_started() && m.started().lease_id() == lease) ||
        (m.has_output() && m.output().lease_id() == lease) ||
        (m.has_completion() && m.completion().lease_id() == lease)) {
      out.push_back(m);
    }
  }
  return out;
}

bool HasCompletion(const Messages& all, const std::string& lease) {
  for (const ConnectRequest& m : all) {
    if (m.has_completion() && m.completion().lease_id() == lease) return true;
  }
  return false;
}

int Credits(const Messages& all) {
  int n = 0;
  for (const ConnectRequest& m : all) n += m.has_credit() ? m.credit().credits() : 0;
  return n;
}

bool Started(const Messages& all, const std::string& lease) {
  for (const ConnectRequest& m : all) {
    if (m.has_started() && m.started().lease_id() == lease) return true;
  }
  return false;
}

class WorkerTest : public testing::Test {
 protected:
  void SetUp() override {
    int queue_port = 0, executor_port = 0;
    queue_server_ = StartServer(&queue_, &queue_port);
    executor_server_ = StartServer(&executor_, &executor_port);
    ASSERT_GT(queue_port, 0);
    ASSERT_GT(executor_port, 0);
    options_.server_address = absl::StrCat("127.0.0.1:", queue_port);
    options_.executors = {absl::StrCat("127.0.0.1:", executor_port)};
    options_.session.worker_id = "test-worker";
    options_.session.slots = 3;
    options_.session.heartbeat_interval = absl::Milliseconds(50);
    options_.reconnect_backoff.initial = absl::Milliseconds(10);
    options_.reconnect_backoff.max = absl::Milliseconds(50);
  }
  void TearDown() override {
    if (worker_ != nullptr) worker_->Stop();
    worker_.reset();
    queue_server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
    executor_server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  }

  // Starts the worker and waits for its hello.
  void StartWorker() {
    worker_ = std::make_unique<Worker>(options_);
    worker_->Start();
    ASSERT_TRUE(queue_.WaitFor([](const Messages& m) { return !m.empty(); }));
  }

  worker_test::FakeQueue queue_;
  worker_test::FakeExecutor executor_;
  std::unique_ptr<grpc::Server> queue_server_;
  std::unique_ptr<grpc::Server> executor_server_;
  WorkerOptions options_;
  std::unique_ptr<Worker> worker_;  // last: stopped before the fakes go
};

TEST_F(WorkerTest, HelloCarriesWorkerIdAndSlotsAsCredits) {
  StartWorker();
  const ConnectRequest first = queue_.Received().front();
  ASSERT_TRUE(first.has_hello());
  EXPECT_EQ(first.hello().worker_id(), "test-worker");
  EXPECT_EQ(first.hello().credits(), 3);
}

TEST_F(WorkerTest, AssignmentRunsSpecAndRelaysStartedOutputCompletionInOrder) {
  StartWorker();
  const ConnectResponse assignment = Assign("lease-1", "task-1", 2);
  ASSERT_TRUE(queue_.Send(assignment));
  ASSERT_TRUE(queue_.WaitFor([](const Messages& m) {
    return HasCompletion(m, "lease-1") && Credits(m) == 1;
  }));

  ASSERT_EQ(executor_.runs().size(), 1u);
  const crucible::v1::RunRequest run = executor_.runs()[0];
  EXPECT_EQ(run.run_id(), "lease-1");
  EXPECT_EQ(run.task_id(), "task-1");
  EXPECT_EQ(run.attempt(), 2);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
      run.spec(), assignment.assignment().task().spec()));

  const Messages all = queue_.Received();
  const Messages reports = About(all, "lease-1");
  ASSERT_EQ(reports.size(), 4u);
  EXPECT_TRUE(reports[0].has_started());
  EXPECT_EQ(reports[0].started().start_time().seconds(), 1'700'000'000);
  ASSERT_TRUE(reports[1].has_output());
  EXPECT_EQ(reports[1].output().chunk().data(), "hello\n");
  EXPECT_EQ(reports[1].output().chunk().stream(), crucible::v1::OUTPUT_STREAM_STDOUT);
  ASSERT_TRUE(reports[2].has_output());
  EXPECT_EQ(reports[2].output().chunk().data(), "oops\n");
  EXPECT_EQ(reports[2].output().chunk().offset(), 6);
  ASSERT_TRUE(reports[3].completion().has_result());
  EXPECT_EQ(reports[3].completion().result().reason(), crucible::v1::TERMINATION_REASON_EXITED);
  EXPECT_EQ(reports[3].completion().result().exit_code(), 3);

  // The credit comes back after the completion.
  size_t completion_at = 0, credit_at = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i].has_completion()) completion_at = i;
    if (all[i].has_credit()) credit_at = i;
  }
  EXPECT_GT(credit_at, completion_at);
  EXPECT_EQ(all[credit_at].credit().credits(), 1);
}

TEST_F(WorkerTest, EveryCompletionIsFollowedByOneCredit) {
  StartWorker();
  for (int i = 0; i < 5; ++i) {  // more tasks than the 3 slots, in sequence
    const std::string lease = absl::StrCat("lease-", i);
    ASSERT_TRUE(queue_.Send(Assign(lease, absl::StrCat("task-", i), 1)));
    ASSERT_TRUE(queue_.WaitFor([&](const Messages& m) {
      return HasCompletion(m, lease) && Credits(m) == i + 1;
    })) << i;
  }
  // Each credit grants exactly one slot and comes right after a completion.
  int completions = 0, credits = 0;
  for (const ConnectRequest& m : queue_.Received()) {
    if (m.has_completion()) ++completions;
    if (m.has_credit()) {
      EXPECT_EQ(m.credit().credits(), 1);
      ++credits;
      EXPECT_EQ(credits, completions);
    }
  }
  EXPECT_EQ(credits, 5);
}

TEST_F(WorkerTest, RunErrorStatusBecomesCompletionErrorWithTheSameCode) {
  executor_.set_mode(Mode::kError, grpc::StatusCode::FAILED_PRECONDITION);
  StartWorker();
  ASSERT_TRUE(queue_.Send(Assign("lease-e", "task-e", 1)));
  ASSERT_TRUE(queue_.WaitFor([](const Messages& m) {
    return HasCompletion(m, "lease-e") && Credits(m) == 1;
  }));
  const Messages reports = About(queue_.Received(), "lease-e");
  ASSERT_EQ(reports.size(), 1u);
  ASSERT_TRUE(reports[0].completion().has_error());
  EXPECT_EQ(reports[0].completion().error().code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(reports[0].completion().error().message(), "scripted failure");
}

TEST_F(WorkerTest, ServerCancelReachesTheExecutorAndTheCancelledResultIsRelayed) {
  executor_.set_mode(Mode::kUntilCancelled);
  StartWorker();
  ASSERT_TRUE(queue_.Send(Assign("lease-c", "task-c", 1)));
  ASSERT_TRUE(queue_.WaitFor([](const Messages& m) { return Started(m, "lease-c"); }));
  ConnectResponse cancel;
  cancel.mutable_cancel()->set_lease_id("lease-c");
  cancel.mutable_cancel()->set_reason("user asked");
  ASSERT_TRUE(queue_.Send(cancel));
  ASSERT_TRUE(queue_.WaitFor([](const Messages& m) {
    return HasCompletion(m, "lease-c") && Credits(m) == 1;
  }));
  EXPECT_THAT(executor_.cancels(), ElementsAre("lease-c"));
  const Messages reports = About(queue_.Received(), "lease-c");
  ASSERT_TRUE(reports.back().completion().has_result());
  EXPECT_EQ(reports.back().completion().result().reason(),
            crucible::v1::TERMINATION_REASON_CANCELLED);
}

TEST_F(WorkerTest, HeartbeatsNameEveryRunningLease) {
  executor_.set_mode(Mode::kUntilCancelled);
  StartWorker();
  ASSERT_TRUE(queue_.Send(Assign("lease-a", "task-a", 1)));
  ASSERT_TRUE(queue_.Send(Assign("lease-b", "task-b", 1)));
  ASSERT_TRUE(queue_.WaitFor([](const Messages& all) {
    for (const ConnectRequest& m : all) {
      if (m.has_heartbeat() && m.heartbeat().lease_ids_size() == 2) return true;
    }
    return false;
  }));
  for (const ConnectRequest& m : queue_.Received()) {
    if (m.has_heartbeat() && m.heartbeat().lease_ids_size() == 2) {
      EXPECT_THAT(m.heartbeat().lease_ids(), UnorderedElementsAre("lease-a", "lease-b"));
    }
  }
}

TEST_F(WorkerTest, RejectedLeaseIsAbandonedWithoutFurtherReportsAndItsSlotFreed) {
  executor_.set_mode(Mode::kUntilCancelled);
  StartWorker();
  ASSERT_TRUE(queue_.Send(Assign("lease-r", "task-r", 1)));
  ASSERT_TRUE(queue_.WaitFor([](const Messages& m) { return Started(m, "lease-r"); }));
  ConnectResponse rejected;
  rejected.mutable_rejected()->set_lease_id("lease-r");
  rejected.mutable_rejected()->set_code(grpc::StatusCode::FAILED_PRECONDITION);
  rejected.mutable_rejected()->set_message("stale lease");
  ASSERT_TRUE(queue_.Send(rejected));
  ASSERT_TRUE(queue_.WaitFor([](const Messages& m) { return Credits(m) == 1; }));
  EXPECT_FALSE(HasCompletion(queue_.Received(), "lease-r"));
  EXPECT_TRUE(executor_.WaitForCallCancelled("lease-r"));
}

TEST_F(WorkerTest, ReconnectsWithAFreshHelloWhenTheStreamIsLost) {
  executor_.set_mode(Mode::kUntilCancelled);
  StartWorker();
  ASSERT_TRUE(queue_.Send(Assign("lease-x", "task-x", 1)));
  ASSERT_TRUE(queue_.WaitFor([](const Messages& m) { return Started(m, "lease-x"); }));
  queue_.Drop();
  ASSERT_TRUE(queue_.WaitFor([](const Messages& all) {
    int hellos = 0;
    for (const ConnectRequest& m : all) hellos += m.has_hello();
    return hellos == 2;
  }));
  EXPECT_EQ(queue_.connects(), 2);
  // The run of the lost stream was cancelled at the executor, and the new
  // hello offers every slot again.
  EXPECT_TRUE(executor_.WaitForCallCancelled("lease-x"));
  EXPECT_EQ(queue_.Received().back().hello().credits(), 3);
}

TEST_F(WorkerTest, StopReportsRunningTasksAsUnavailableSoTheServerRetries) {
  executor_.set_mode(Mode::kUntilCancelled);
  StartWorker();
  ASSERT_TRUE(queue_.Send(Assign("lease-s", "task-s", 1)));
  ASSERT_TRUE(queue_.WaitFor([](const Messages& m) { return Started(m, "lease-s"); }));
  worker_->Stop();
  const Messages reports = About(queue_.Received(), "lease-s");
  ASSERT_FALSE(reports.empty());
  ASSERT_TRUE(reports.back().has_completion());
  EXPECT_EQ(reports.back().completion().error().code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(executor_.WaitForCallCancelled("lease-s"));
}

TEST_F(WorkerTest, MoreAssignmentsThanSlotsAreGivenBackAsRetryable) {
  options_.session.slots = 1;
  executor_.set_mode(Mode::kUntilCancelled);
  StartWorker();
  ASSERT_TRUE(queue_.Send(Assign("lease-1", "task-1", 1)));
  ASSERT_TRUE(queue_.Send(Assign("lease-2", "task-2", 1)));
  ASSERT_TRUE(queue_.WaitFor([](const Messages& m) { return HasCompletion(m, "lease-2"); }));
  const Messages reports = About(queue_.Received(), "lease-2");
  EXPECT_EQ(reports.back().completion().error().code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
}

}  // namespace
}  // namespace worker
