// The worker against a fake QueueService and a fake ExecutorService, both
// real gRPC servers on 127.0.0.1 ephemeral ports. The core's decisions
// alone (placement, its timeout, max_tasks, drain refusals, back-pressure)
// are tested on fake time in core_test.cc.
#include "worker/worker.h"

#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/bounded_thread.h"
#include "tests/worker/fake_services.h"

namespace worker {
namespace {

using crucible::v1::ConnectRequest;
using crucible::v1::ConnectResponse;
using Messages = worker_test::FakeQueue::Messages;
using Mode = worker_test::FakeExecutor::Mode;
using testing::ElementsAre;
using testing::StartsWith;
using testing::UnorderedElementsAre;

// Starts a server on 127.0.0.1:`*port` (0: any free port, written back).
std::unique_ptr<grpc::Server> StartServer(grpc::Service* service, int* port) {
  grpc::EnableDefaultHealthCheckService(
      true);  // executors answer health checks
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("127.0.0.1:", *port),
                           grpc::InsecureServerCredentials(), port);
  builder.RegisterService(service);
  return builder.BuildAndStart();
}

// A fake executor on its own server, with the standard health service.
struct Executor {
  Executor() {
    server = StartServer(&service, &port);
    address = absl::StrCat("127.0.0.1:", port);
  }
  ~Executor() {
    server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  }
  void SetServing(bool serving) {
    server->GetHealthCheckService()->SetServingStatus(serving);
  }
  worker_test::FakeExecutor service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::string address;
};

ConnectResponse Assign(const std::string& lease, const std::string& task_id,
                       int attempt) {
  ConnectResponse msg;
  crucible::v1::Assignment* a = msg.mutable_assignment();
  a->set_lease_id(lease);
  a->set_attempt(attempt);
  a->mutable_task()->set_id(task_id);
  a->mutable_task()->mutable_spec()->set_image(
      "localhost/crucible/busybox:latest");
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
  for (const ConnectRequest& m : all)
    n += m.has_credit() ? m.credit().credits() : 0;
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
    queue_server_ = StartServer(&queue_, &queue_port_);
    ASSERT_GT(queue_port_, 0);
    ASSERT_GT(executor_main_.port, 0);
    options_.server_address = absl::StrCat("127.0.0.1:", queue_port_);
    options_.fleet.discovery.static_addresses = {executor_main_.address};
    options_.fleet.pool.slots_per_executor = 3;
    options_.fleet.pool.probe_interval = absl::Milliseconds(50);
    options_.fleet.pool.retry_initial = absl::Milliseconds(20);
    options_.fleet.pool.retry_max = absl::Milliseconds(100);
    options_.fleet.tick = absl::Milliseconds(10);
    options_.fleet.resolve_interval = absl::Milliseconds(50);
    options_.core.worker_id = "test-worker";
    options_.core.heartbeat_interval = absl::Milliseconds(50);
    options_.reconnect_backoff.initial = absl::Milliseconds(10);
    options_.reconnect_backoff.max = absl::Milliseconds(50);
  }
  void TearDown() override {
    if (worker_ != nullptr) worker_->Stop();
    worker_.reset();
    queue_server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  }

  // Starts the worker and waits for its hello.
  void StartWorker() {
    worker_ = std::make_unique<Worker>(options_);
    worker_->Start();
    ASSERT_TRUE(queue_.WaitFor([](const Messages& m) { return !m.empty(); }));
  }

  // Waits until the worker's pool has `address` in rotation (or not).
  bool WaitForHealth(const std::string& address, bool healthy) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      for (const ExecutorView& v : worker_->PoolForTest().Snapshot()) {
        if (v.address == address && v.healthy == healthy) return true;
      }
      absl::SleepFor(
          absl::Milliseconds(5));  // polling a condition, not a sync sleep
    }
    return false;
  }

  // Waits until the worker last published `ready` (workers made with
  // published_ as their readiness callback).
  bool WaitForReady(bool ready) { return published_.WaitForLast(ready); }

  // Waits until the worker's readiness reason starts with `reason`.
  bool WaitForReason(const std::string& reason) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    std::string now;
    while (absl::Now() < deadline) {
      worker_->ReadyForTest(&now);
      if (absl::StartsWith(now, reason)) return true;
      absl::SleepFor(
          absl::Milliseconds(5));  // polling a condition, not a sync sleep
    }
    return false;
  }

  // What the worker published through its readiness callback, in order.
  // Only changes of readiness are kept (NOT_SERVING is published again
  // when the reason changes); `reason` is the last one published.
  struct Published {
    void Add(bool ready, const std::string& why) {
      absl::MutexLock lock(&mu);
      if (states.empty() ? ready : states.back() != ready) {
        states.push_back(ready);
      }
      reason = why;
    }
    std::vector<bool> Get() {
      absl::MutexLock lock(&mu);
      return states;
    }
    std::string LastReason() {
      absl::MutexLock lock(&mu);
      return reason;
    }
    bool WaitForLast(bool ready) {
      absl::MutexLock lock(&mu);
      auto last = [this, ready]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
        return states.empty() ? !ready : states.back() == ready;
      };
      return mu.AwaitWithTimeout(absl::Condition(&last), absl::Seconds(10));
    }
    absl::Mutex mu;
    std::vector<bool> states ABSL_GUARDED_BY(mu);
    std::string reason ABSL_GUARDED_BY(mu);
  };

  // Another fake executor, alive until after the worker stops.
  Executor& AddExecutor() {
    return *extra_.emplace_back(std::make_unique<Executor>());
  }

  worker_test::FakeQueue queue_;
  worker_test::FakeQueue
      queue_again_;  // a restarted server's, on the same port
  int queue_port_ = 0;
  Executor executor_main_;
  std::vector<std::unique_ptr<Executor>> extra_;
  worker_test::FakeExecutor& executor_ = executor_main_.service;
  std::unique_ptr<grpc::Server> queue_server_;
  WorkerOptions options_;
  Published published_;
  std::unique_ptr<Worker> worker_;  // last: stopped before the fakes go
};

TEST_F(WorkerTest, ReadyOnlyWithAStreamToTheServerAndAnExecutorInRotation) {
  options_.fleet.pool.rejoin_window = absl::ZeroDuration();
  worker_ = std::make_unique<Worker>(
      options_, [this](bool ready, const std::string& reason) {
        published_.Add(ready, reason);
      });
  worker_->Start();
  ASSERT_TRUE(WaitForReady(true));
  std::string reason;

  executor_main_.SetServing(false);  // the only executor leaves rotation
  ASSERT_TRUE(WaitForReady(false));
  EXPECT_FALSE(worker_->ReadyForTest(&reason));
  EXPECT_EQ(reason, "no executor in rotation");
  executor_main_.SetServing(true);
  ASSERT_TRUE(WaitForReady(true));

  // The server goes away: no stream.
  queue_server_->Shutdown(
      absl::ToChronoTime(absl::Now() + absl::Milliseconds(100)));
  queue_server_->Wait();
  ASSERT_TRUE(WaitForReady(false));
  EXPECT_FALSE(worker_->ReadyForTest(&reason));
  EXPECT_THAT(reason, StartsWith("no stream to the server"));
  // It comes back on the same port: ready once the hello is sent.
  queue_server_ = StartServer(&queue_again_, &queue_port_);
  ASSERT_NE(queue_server_, nullptr);
  ASSERT_TRUE(
      queue_again_.WaitFor([](const Messages& m) { return !m.empty(); }));
  ASSERT_TRUE(WaitForReady(true));
  EXPECT_TRUE(worker_->ReadyForTest(&reason));
  EXPECT_EQ(reason, "stream to the server open; executors in rotation: 1");
  worker_->Stop();
  EXPECT_THAT(published_.Get(),
              ElementsAre(true, false, true, false, true, false));
}

TEST_F(WorkerTest, NotReadyWithoutAServerEvenWithExecutorsInRotation) {
  options_.server_address = "127.0.0.1:1";  // nothing listens there
  worker_ = std::make_unique<Worker>(
      options_, [this](bool ready, const std::string& reason) {
        published_.Add(ready, reason);
      });
  worker_->Start();
  ASSERT_TRUE(WaitForHealth(executor_main_.address, true));
  std::string reason;
  // Why, with the stream's error, for the health service too.
  const std::string why = "no stream to the server (UNAVAILABLE: ";
  ASSERT_TRUE(WaitForReason(why));
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!absl::StartsWith(published_.LastReason(), why) &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));  // polling, not a sync sleep
  }
  EXPECT_THAT(published_.LastReason(), StartsWith(why));
  EXPECT_FALSE(worker_->ReadyForTest());
  EXPECT_TRUE(published_.Get().empty());  // never ready
}

TEST_F(WorkerTest, NotReadyWithAStreamButNoExecutorInRotation) {
  executor_main_.SetServing(false);
  worker_ = std::make_unique<Worker>(
      options_, [this](bool ready, const std::string& reason) {
        published_.Add(ready, reason);
      });
  worker_->Start();
  ASSERT_TRUE(queue_.WaitFor(
      [](const Messages& m) { return !m.empty(); }));     // the hello
  ASSERT_TRUE(WaitForReason("no executor in rotation"));  // the stream is up
  EXPECT_FALSE(worker_->ReadyForTest());
  executor_main_.SetServing(
      true);  // new executors enter at their first SERVING check
  ASSERT_TRUE(WaitForReady(true));
  EXPECT_THAT(published_.Get(), ElementsAre(true));
}

TEST_F(WorkerTest, HelloCarriesWorkerIdAndTheReachableSlotsAsCredits) {
  Executor& second = AddExecutor();
  options_.fleet.discovery.static_addresses.push_back(second.address);
  StartWorker();
  const ConnectRequest first = queue_.Received().front();
  ASSERT_TRUE(first.has_hello());
  EXPECT_EQ(first.hello().worker_id(), "test-worker");
  EXPECT_EQ(first.hello().credits(), 6);  // 2 executors x 3 slots, both checked
}

TEST_F(WorkerTest, HelloPublishesWhatEachExecutorAccepts) {
  executor_.set_executor_id("exec-a");
  Executor& second = AddExecutor();
  second.service.set_executor_id("exec-b");
  options_.fleet.discovery.static_addresses.push_back(second.address);
  StartWorker();
  const crucible::v1::WorkerHello hello = queue_.Received().front().hello();
  EXPECT_TRUE(hello.publishes_executors());
  std::vector<std::string> ids;
  for (const crucible::v1::ExecutorAccepts& a : hello.executors())
    ids.push_back(a.executor_id());
  EXPECT_THAT(ids, UnorderedElementsAre("exec-a", "exec-b"));
}

TEST_F(WorkerTest, AnExecutorThatComesOrGoesIsPublishedAgain) {
  const std::string path = testing::TempDir() + "/worker_test_published.txt";
  {
    std::ofstream out(path, std::ios::trunc);
    out << executor_main_.address << "\n";
  }
  executor_.set_executor_id("exec-a");
  Executor& second = AddExecutor();
  second.service.set_executor_id("exec-b");
  options_.fleet.discovery.static_addresses.clear();
  options_.fleet.discovery.file = path;
  StartWorker();
  ASSERT_EQ(queue_.Received().front().hello().executors_size(), 1);
  {
    std::ofstream out(path, std::ios::trunc);
    out << second.address << "\n";  // a is gone, b came
  }
  auto only_b = [](const Messages& m) {
    for (const ConnectRequest& r : m) {
      if (r.has_executors() && r.executors().executors_size() == 1 &&
          r.executors().executors(0).executor_id() == "exec-b") {
        return true;
      }
    }
    return false;
  };
  EXPECT_TRUE(queue_.WaitFor(only_b));
  std::remove(path.c_str());
}

TEST_F(WorkerTest, UnreachableExecutorsGiveNoCreditsUntilOneIsServing) {
  Executor& later = AddExecutor();
  later.SetServing(false);
  options_.fleet.discovery.static_addresses = {later.address, "127.0.0.1:1"};
  StartWorker();
  EXPECT_EQ(queue_.Received().front().hello().credits(), 0);
  later.SetServing(true);
  ASSERT_TRUE(
      queue_.WaitFor([](const Messages& m) { return Credits(m) == 3; }));
  ASSERT_TRUE(queue_.Send(Assign("lease-1", "task-1", 1)));
  ASSERT_TRUE(queue_.WaitFor(
      [](const Messages& m) { return HasCompletion(m, "lease-1"); }));
  EXPECT_EQ(later.service.runs().size(), 1u);
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
  EXPECT_EQ(reports[1].output().chunk().stream(),
            crucible::v1::OUTPUT_STREAM_STDOUT);
  ASSERT_TRUE(reports[2].has_output());
  EXPECT_EQ(reports[2].output().chunk().data(), "oops\n");
  EXPECT_EQ(reports[2].output().chunk().offset(), 6);
  ASSERT_TRUE(reports[3].completion().has_result());
  EXPECT_EQ(reports[3].completion().result().reason(),
            crucible::v1::TERMINATION_REASON_EXITED);
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

TEST_F(WorkerTest, TakesAssignmentsInBatches) {
  StartWorker();
  EXPECT_TRUE(queue_.Received().front().hello().accepts_assignment_batches());
  ConnectResponse batch;
  for (const char* n : {"1", "2"}) {
    *batch.mutable_assignments()->add_assignments() =
        Assign(absl::StrCat("lease-b", n), absl::StrCat("task-b", n), 1)
            .assignment();
  }
  ASSERT_TRUE(queue_.Send(batch));
  ASSERT_TRUE(queue_.WaitFor([](const Messages& m) {
    return HasCompletion(m, "lease-b1") && HasCompletion(m, "lease-b2");
  }));
  EXPECT_EQ(executor_.runs().size(), 2u);
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
  EXPECT_EQ(reports[0].completion().error().code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(reports[0].completion().error().message(), "scripted failure");
}

TEST_F(WorkerTest,
       ServerCancelReachesTheExecutorAndTheCancelledResultIsRelayed) {
  executor_.set_mode(Mode::kUntilCancelled);
  StartWorker();
  ASSERT_TRUE(queue_.Send(Assign("lease-c", "task-c", 1)));
  ASSERT_TRUE(
      queue_.WaitFor([](const Messages& m) { return Started(m, "lease-c"); }));
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
      EXPECT_THAT(m.heartbeat().lease_ids(),
                  UnorderedElementsAre("lease-a", "lease-b"));
    }
  }
}

TEST_F(WorkerTest,
       RejectedLeaseIsAbandonedWithoutFurtherReportsAndItsSlotFreed) {
  executor_.set_mode(Mode::kUntilCancelled);
  StartWorker();
  ASSERT_TRUE(queue_.Send(Assign("lease-r", "task-r", 1)));
  ASSERT_TRUE(
      queue_.WaitFor([](const Messages& m) { return Started(m, "lease-r"); }));
  ConnectResponse rejected;
  rejected.mutable_rejected()->set_lease_id("lease-r");
  rejected.mutable_rejected()->set_code(grpc::StatusCode::FAILED_PRECONDITION);
  rejected.mutable_rejected()->set_message("stale lease");
  ASSERT_TRUE(queue_.Send(rejected));
  ASSERT_TRUE(
      queue_.WaitFor([](const Messages& m) { return Credits(m) == 1; }));
  EXPECT_FALSE(HasCompletion(queue_.Received(), "lease-r"));
  EXPECT_TRUE(executor_.WaitForCallCancelled("lease-r"));
}

TEST_F(WorkerTest, AfterAReconnectRunningTasksAreResumedUnderTheirLeases) {
  executor_.set_mode(Mode::kUntilCancelled);
  StartWorker();
  ASSERT_TRUE(queue_.Send(Assign("lease-x", "task-x", 1)));
  ASSERT_TRUE(
      queue_.WaitFor([](const Messages& m) { return Started(m, "lease-x"); }));
  const size_t before = queue_.Received().size();
  queue_.Drop();
  ASSERT_TRUE(queue_.WaitFor([before](const Messages& all) {
    return all.size() >= before + 2 && all[before].has_hello();
  }));
  EXPECT_EQ(queue_.connects(), 2);
  const Messages all = queue_.Received();
  // The new hello offers only the free slots; the next message names the
  // lease still running, so the server extends it.
  EXPECT_EQ(all[before].hello().credits(), 2);
  ASSERT_TRUE(all[before + 1].has_heartbeat());
  EXPECT_THAT(all[before + 1].heartbeat().lease_ids(), ElementsAre("lease-x"));
  // With its task and attempt, for a server that restarted.
  ASSERT_EQ(all[before + 1].heartbeat().held_leases_size(), 1);
  EXPECT_EQ(all[before + 1].heartbeat().held_leases(0).lease_id(), "lease-x");
  EXPECT_EQ(all[before + 1].heartbeat().held_leases(0).task_id(), "task-x");
  EXPECT_EQ(all[before + 1].heartbeat().held_leases(0).attempt(), 1);
  EXPECT_TRUE(executor_.call_cancelled().empty());
  // The run goes on and reports its end on the new stream.
  executor_.Finish("lease-x");
  ASSERT_TRUE(queue_.WaitFor(
      [](const Messages& m) { return HasCompletion(m, "lease-x"); }));
  const Messages reports = About(queue_.Received(), "lease-x");
  EXPECT_EQ(reports.back().completion().result().exit_code(), 0);
  EXPECT_EQ(reports.back().completion().result().reason(),
            crucible::v1::TERMINATION_REASON_EXITED);
}

TEST_F(WorkerTest, ResumedLeaseThatTheServerRefusesIsCancelled) {
  executor_.set_mode(Mode::kUntilCancelled);
  StartWorker();
  ASSERT_TRUE(queue_.Send(Assign("lease-y", "task-y", 1)));
  ASSERT_TRUE(
      queue_.WaitFor([](const Messages& m) { return Started(m, "lease-y"); }));
  queue_.Drop();
  ASSERT_TRUE(queue_.WaitFor([](const Messages& all) {
    return all.back().has_heartbeat() && [&] {
      int h = 0;
      for (const ConnectRequest& m : all) h += m.has_hello();
      return h >= 2;
    }();
  }));
  ConnectResponse rejected;
  rejected.mutable_rejected()->set_lease_id("lease-y");
  rejected.mutable_rejected()->set_code(grpc::StatusCode::FAILED_PRECONDITION);
  ASSERT_TRUE(queue_.Send(rejected));
  EXPECT_TRUE(executor_.WaitForCallCancelled("lease-y"));
  ASSERT_TRUE(
      queue_.WaitFor([](const Messages& m) { return Credits(m) == 1; }));
  EXPECT_FALSE(HasCompletion(queue_.Received(), "lease-y"));
}

TEST_F(WorkerTest, NotServingExecutorLeavesRotationAndComesBack) {
  Executor& second = AddExecutor();
  second.service.set_mode(Mode::kUntilCancelled);
  executor_.set_mode(Mode::kUntilCancelled);
  options_.fleet.discovery.static_addresses.push_back(second.address);
  StartWorker();
  second.SetServing(false);
  ASSERT_TRUE(WaitForHealth(second.address, false));
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(queue_.Send(
        Assign(absl::StrCat("lease-", i), absl::StrCat("task-", i), 1)));
  }
  // Three fit on the executor in rotation; the fourth waits for a slot.
  ASSERT_TRUE(executor_.WaitForRuns(3));
  EXPECT_EQ(worker_->RunsForTest(), 4);
  EXPECT_TRUE(second.service.runs().empty());
  second.SetServing(true);
  ASSERT_TRUE(second.service.WaitForRuns(1));
  EXPECT_EQ(executor_.runs().size(), 3u);
}

TEST_F(WorkerTest,
       ExecutorThatCannotBeReachedMidRunIsReportedAtOnceAsRetryable) {
  executor_.set_mode(Mode::kError, grpc::StatusCode::UNAVAILABLE);
  StartWorker();
  ASSERT_TRUE(queue_.Send(Assign("lease-u", "task-u", 1)));
  ASSERT_TRUE(queue_.WaitFor(
      [](const Messages& m) { return HasCompletion(m, "lease-u"); }));
  const Messages reports = About(queue_.Received(), "lease-u");
  EXPECT_EQ(reports.back().completion().error().code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(reports.back().completion().error().message(),
              testing::HasSubstr("lost"));
}

TEST_F(WorkerTest, FullExecutorIsSkippedWithoutSpendingTheAttempt) {
  // The first executor is filled by someone else; the second joins later.
  executor_.set_mode(Mode::kError, grpc::StatusCode::RESOURCE_EXHAUSTED);
  Executor& second = AddExecutor();
  second.SetServing(false);
  options_.fleet.discovery.static_addresses.push_back(second.address);
  options_.fleet.pool.full_backoff = absl::Milliseconds(50);
  StartWorker();
  ASSERT_TRUE(queue_.Send(Assign("lease-full", "task-full", 1)));
  ASSERT_TRUE(executor_.WaitForRuns(2));  // tried again after the backoff
  EXPECT_FALSE(HasCompletion(queue_.Received(), "lease-full"));
  second.SetServing(true);
  ASSERT_TRUE(queue_.WaitFor(
      [](const Messages& m) { return HasCompletion(m, "lease-full"); }));
  const Messages reports = About(queue_.Received(), "lease-full");
  ASSERT_TRUE(reports.back().completion().has_result());
  EXPECT_EQ(reports.back().completion().result().exit_code(),
            3);  // the script's
  EXPECT_EQ(second.service.runs().size(), 1u);
}

TEST_F(WorkerTest, ExecutorAddedToTheFileLaterGetsWork) {
  const std::string path = testing::TempDir() + "/worker_test_executors.txt";
  {
    std::ofstream out(path, std::ios::trunc);
    out << executor_main_.address << "\n";
  }
  Executor& second = AddExecutor();
  options_.fleet.discovery.static_addresses.clear();
  options_.fleet.discovery.file = path;
  StartWorker();
  EXPECT_EQ(queue_.Received().front().hello().credits(), 3);
  {
    std::ofstream out(path, std::ios::trunc);
    out << second.address << "\n";  // the first one is gone, a new one came
  }
  ASSERT_TRUE(WaitForHealth(second.address, true));
  ASSERT_TRUE(queue_.Send(Assign("lease-f", "task-f", 1)));
  ASSERT_TRUE(queue_.WaitFor(
      [](const Messages& m) { return HasCompletion(m, "lease-f"); }));
  EXPECT_EQ(second.service.runs().size(), 1u);
  EXPECT_TRUE(executor_.runs().empty());
  std::remove(path.c_str());
}

TEST_F(WorkerTest, ExecutorsFromADnsNameAreResolvedCheckedAndUsed) {
  options_.fleet.discovery.static_addresses.clear();
  options_.fleet.discovery.dns_name =
      absl::StrCat("localhost:", executor_main_.port);
  StartWorker();
  // localhost may also resolve to ::1, where nothing listens: that address
  // stays out of rotation and adds no credits.
  EXPECT_EQ(queue_.Received().front().hello().credits(), 3);
  bool found = false;
  for (const ExecutorView& v : worker_->PoolForTest().Snapshot()) {
    if (v.address == executor_main_.address) found = v.healthy;
  }
  EXPECT_TRUE(found);
  ASSERT_TRUE(queue_.Send(Assign("lease-n", "task-n", 1)));
  ASSERT_TRUE(queue_.WaitFor(
      [](const Messages& m) { return HasCompletion(m, "lease-n"); }));
  EXPECT_EQ(executor_.runs().size(), 1u);
}

TEST_F(WorkerTest,
       DrainLetsTheRunningTaskFinishGrantsNothingAndRefusesNewWork) {
  executor_.set_mode(Mode::kUntilCancelled);
  StartWorker();
  ASSERT_TRUE(queue_.Send(Assign("lease-d", "task-d", 1)));
  ASSERT_TRUE(
      queue_.WaitFor([](const Messages& m) { return Started(m, "lease-d"); }));
  testing_util::BoundedThread drain(
      [this] { worker_->Drain(absl::Seconds(20)); });
  // Credits granted earlier cannot be revoked: an assignment during the
  // drain is given back at once as retryable.
  ASSERT_TRUE(worker_->AwaitDrainingForTest(absl::Seconds(10)));
  ASSERT_TRUE(queue_.Send(Assign("lease-late", "task-late", 1)));
  ASSERT_TRUE(queue_.WaitFor(
      [](const Messages& m) { return HasCompletion(m, "lease-late"); }));
  EXPECT_EQ(
      About(queue_.Received(), "lease-late").back().completion().error().code(),
      grpc::StatusCode::UNAVAILABLE);
  executor_.Finish("lease-d");
  ASSERT_TRUE(drain.JoinWithin(absl::Seconds(30)));
  const Messages reports = About(queue_.Received(), "lease-d");
  ASSERT_TRUE(reports.back().has_completion());
  EXPECT_EQ(reports.back().completion().result().reason(),
            crucible::v1::TERMINATION_REASON_EXITED);
  EXPECT_TRUE(executor_.call_cancelled().empty());
  EXPECT_EQ(Credits(queue_.Received()), 0);  // none after the hello
  EXPECT_TRUE(queue_.WaitForStreamEnds(1));  // half-closed
  EXPECT_EQ(queue_.connects(), 1);
}

TEST_F(WorkerTest, DrainCancelsWhatIsStillRunningAfterTheGrace) {
  executor_.set_mode(Mode::kUntilCancelled);
  StartWorker();
  ASSERT_TRUE(queue_.Send(Assign("lease-g", "task-g", 1)));
  ASSERT_TRUE(
      queue_.WaitFor([](const Messages& m) { return Started(m, "lease-g"); }));
  worker_->Drain(absl::Milliseconds(100));
  EXPECT_TRUE(executor_.WaitForCallCancelled("lease-g"));
  const Messages reports = About(queue_.Received(), "lease-g");
  EXPECT_EQ(reports.back().completion().error().code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(WorkerTest, StopReportsRunningTasksAsUnavailableSoTheServerRetries) {
  executor_.set_mode(Mode::kUntilCancelled);
  StartWorker();
  ASSERT_TRUE(queue_.Send(Assign("lease-s", "task-s", 1)));
  ASSERT_TRUE(
      queue_.WaitFor([](const Messages& m) { return Started(m, "lease-s"); }));
  worker_->Stop();
  const Messages reports = About(queue_.Received(), "lease-s");
  ASSERT_FALSE(reports.empty());
  ASSERT_TRUE(reports.back().has_completion());
  EXPECT_EQ(reports.back().completion().error().code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(executor_.WaitForCallCancelled("lease-s"));
}

}  // namespace
}  // namespace worker
