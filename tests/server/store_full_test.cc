// A full disk under the store degrades, it does not break it: on a real
// tmpfs filled to the last byte, writes wait (in order) and are refused
// nothing acknowledged; reads go on; writes resume by themselves once space
// is back; and the scheduler refuses new work meanwhile while keeping what
// workers report.
#include <sqlite3.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/proto_time.h"
#include "common/task_state.h"
#include "gtest/gtest.h"
#include "server/outbox/durable_outbox.h"
#include "server/scheduler/scheduler.h"
#include "server/scheduler/transitions.h"
#include "server/store/sqlite_task_store.h"
#include "tests/server/scheduler_fixture.h"
#include "tests/server/test_util.h"
#include "tests/testing/small_disk.h"
#include "tests/testing/sqlite_check.h"

namespace server {
namespace {

using crucible::v1::Task;
using crucible::v1::TaskState;

constexpr int64_t kDiskBytes = 4 << 20;

using ::testing_util::IntegrityCheck;

// Members in this order: the disk outlives the store on it.
class StoreFullTest : public testing::Test {
 protected:
  void SetUp() override {
    disk_or_ = ::testing_util::SmallDisk::Mount(
        server::testing_util::FreshDir() + "/disk", kDiskBytes);
    REQUIRE_SMALL_DISK(disk_or_);
    disk_ = disk_or_->get();
    path_ = disk_->dir() + "/tasks.db";
    Open();
  }
  void TearDown() override {
    if (disk_ != nullptr) disk_->Free().IgnoreError();  // nothing waits at exit
  }
  void Open() {
    Close();
    auto store = SqliteTaskStore::Open({.path = path_});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    outbox_ = std::make_unique<DurableOutbox>(
        *store_,
        DurableOutboxOptions{.full_retry_interval = absl::Milliseconds(20)});
  }
  void Close() {
    outbox_.reset();
    store_.reset();
  }
  absl::Status Write(TaskWrite w) {
    return outbox_->AwaitDurable(outbox_->Submit(std::move(w)));
  }
  void Fill() {
    auto filled = disk_->Fill();
    ASSERT_TRUE(filled.ok()) << filled.status();
    ASSERT_EQ(disk_->FreeBytes(), 0);
  }
  static Task MakeTask(const std::string& id,
                       TaskState state = crucible::v1::TASK_STATE_QUEUED) {
    Task t;
    t.set_id(id);
    t.set_tenant("default");
    t.set_state(state);
    t.mutable_spec()->set_image("img");
    *t.mutable_create_time() = common::ToProtoTime(absl::FromUnixSeconds(100));
    return t;
  }
  // Submits `write` and waits until the store says it is full.
  WriteTicket SubmitUntilFull(TaskWrite write) {
    WriteTicket t = outbox_->Submit(std::move(write));
    absl::Status s = outbox_->AwaitDurable(t);
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
    return t;
  }

  absl::StatusOr<std::unique_ptr<::testing_util::SmallDisk>> disk_or_;
  ::testing_util::SmallDisk* disk_ = nullptr;
  std::string path_;
  std::unique_ptr<SqliteTaskStore> store_;
  std::unique_ptr<DurableOutbox> outbox_;
};

TEST_F(StoreFullTest, WritesWaitWhileFullAndResumeInOrderOnceSpaceIsBack) {
  ASSERT_TRUE(Write(TaskWrite::Insert(MakeTask("a"))).ok());
  Fill();

  // The first commit on the full disk fails: the store says why and where.
  SubmitUntilFull(
      TaskWrite::Update(MakeTask("a", crucible::v1::TASK_STATE_LEASED)));
  absl::Status health = outbox_->health();
  EXPECT_EQ(health.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(health.message(), "the task store is full"))
      << health;
  EXPECT_TRUE(absl::StrContains(health.message(), path_)) << health;

  // More writes queue behind it, in order; none is durable yet.
  outbox_->Submit(
      TaskWrite::Update(MakeTask("a", crucible::v1::TASK_STATE_RUNNING)));
  crucible::v1::OutputChunk chunk;
  chunk.set_attempt(1);
  chunk.set_data(std::string(64 << 10, 'x'));  // more than a page of WAL
  outbox_->Submit(TaskWrite::Output("a", chunk));
  Task done = MakeTask("a", crucible::v1::TASK_STATE_SUCCEEDED);
  *done.mutable_end_time() = common::ToProtoTime(absl::FromUnixSeconds(200));
  outbox_->Submit(TaskWrite::Update(done));
  WriteTicket last = outbox_->Submit(TaskWrite::Insert(MakeTask("b")));
  absl::Notification durable;
  absl::Status durable_status;
  outbox_->AfterDurable(last, [&](absl::Status s) {
    durable_status = s;
    durable.Notify();
  });
  EXPECT_EQ(outbox_->AwaitDurable(last).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(durable.WaitForNotificationWithTimeout(absl::Milliseconds(100)));

  // Reads go on, showing what is durable.
  auto a = store_->GetTask("a");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->state(), crucible::v1::TASK_STATE_QUEUED);
  EXPECT_EQ(store_->GetTask("b").status().code(), absl::StatusCode::kNotFound);
  auto page = store_->ListTasks({.tenant = "default"});
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->tasks.size(), 1u);

  // Space is back: the writer notices by itself and commits everything.
  ASSERT_TRUE(disk_->Free().ok());
  ASSERT_TRUE(durable.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(durable_status.ok()) << durable_status;
  EXPECT_TRUE(outbox_->health().ok()) << outbox_->health();
  EXPECT_TRUE(outbox_->AwaitDurable(last).ok());
  EXPECT_EQ(store_->GetTask("a")->state(), crucible::v1::TASK_STATE_SUCCEEDED);
  EXPECT_TRUE(store_->GetTask("b").ok());
  auto out = store_->ReadOutput(
      "a", 1, 0, crucible::v1::OUTPUT_STREAM_UNSPECIFIED, 1 << 20);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ((*out)[0].data().size(), size_t{64 << 10});
  // And it keeps writing.
  EXPECT_TRUE(Write(TaskWrite::Insert(MakeTask("c"))).ok());
  Close();
  EXPECT_EQ(IntegrityCheck(path_), "ok");
}

TEST_F(StoreFullTest, FillsAgainAndRecoversAgain) {
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(
        Write(TaskWrite::Insert(MakeTask(absl::StrCat("r", round)))).ok());
    Fill();
    WriteTicket t =
        SubmitUntilFull(TaskWrite::Insert(MakeTask(absl::StrCat("f", round))));
    absl::Notification durable;
    outbox_->AfterDurable(t, [&](absl::Status s) {
      EXPECT_TRUE(s.ok()) << s;
      durable.Notify();
    });
    ASSERT_TRUE(disk_->Free().ok());
    ASSERT_TRUE(durable.WaitForNotificationWithTimeout(absl::Seconds(10)))
        << round;
    EXPECT_TRUE(outbox_->health().ok());
  }
  Close();
  EXPECT_EQ(IntegrityCheck(path_), "ok");
}

TEST_F(StoreFullTest, OpensAndReadsOnAFullDisk) {
  // A server restarted while the disk is full must come up (and serve
  // reads) instead of crash-looping.
  ASSERT_TRUE(Write(TaskWrite::Insert(MakeTask("a"))).ok());
  Close();
  Fill();
  Open();
  if (HasFatalFailure()) return;
  EXPECT_TRUE(outbox_->health().ok());  // nothing failed yet
  EXPECT_TRUE(store_->GetTask("a").ok());
  auto active = store_->LoadActiveTasks();
  ASSERT_TRUE(active.ok()) << active.status();
  EXPECT_EQ(active->size(), 1u);
  SubmitUntilFull(TaskWrite::Insert(MakeTask("b")));
  ASSERT_TRUE(disk_->Free().ok());
}

TEST_F(StoreFullTest, DrainWhileFullGivesUpAfterOneMoreTry) {
  // A shutdown cannot wait for space: the waiting writes are dropped (never
  // acknowledged), their callbacks told, and the store is broken for good.
  ASSERT_TRUE(Write(TaskWrite::Insert(MakeTask("a"))).ok());
  Fill();
  WriteTicket t = SubmitUntilFull(TaskWrite::Insert(MakeTask("b")));
  absl::Status status;
  outbox_->AfterDurable(t, [&](absl::Status s) { status = s; });
  outbox_->DrainCallbacks();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  absl::Status health = outbox_->health();
  EXPECT_FALSE(health.ok());
  EXPECT_NE(health.code(), absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(disk_->Free().ok());
  Open();
  if (HasFatalFailure()) return;
  EXPECT_TRUE(store_->GetTask("a").ok());
  EXPECT_EQ(store_->GetTask("b").status().code(), absl::StatusCode::kNotFound);
}

// Records a task's events. Thread-safe.
class EventLog : public TaskListener {
 public:
  void OnEvent(const crucible::v1::TaskEvent& event) override {
    absl::MutexLock lock(&mu_);
    states_.push_back(event.state());
    if (common::IsTerminal(event.state())) ended_.Notify();
  }
  void OnOutput(const crucible::v1::OutputChunk&) override {}
  bool WaitEnded() {
    return ended_.WaitForNotificationWithTimeout(absl::Seconds(10));
  }
  std::vector<TaskState> states() {
    absl::MutexLock lock(&mu_);
    return states_;
  }

 private:
  absl::Mutex mu_;
  std::vector<TaskState> states_ ABSL_GUARDED_BY(mu_);
  absl::Notification ended_;
};

class SchedulerStoreFullTest : public StoreFullTest {
 protected:
  void SetUp() override {
    StoreFullTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    options_.backoff_jitter = 0;
    auto scheduler = Scheduler::Create(options_, *store_, *outbox_, clock_);
    ASSERT_TRUE(scheduler.ok()) << scheduler.status();
    scheduler_ = *std::move(scheduler);
  }
  void TearDown() override {
    StoreFullTest::TearDown();  // space back, so the scheduler's last
    scheduler_.reset();         // announcements can be stored
  }
  static crucible::v1::TaskSpec Spec() {
    crucible::v1::TaskSpec spec;
    spec.set_image("localhost/crucible/busybox:latest");
    spec.add_command("true");
    return spec;
  }
  static crucible::v1::AttemptCompletion Exited0(const std::string& lease) {
    crucible::v1::AttemptCompletion c;
    c.set_lease_id(lease);
    c.mutable_result()->set_reason(crucible::v1::TERMINATION_REASON_EXITED);
    return c;
  }

  common::FakeClock clock_;
  SchedulerOptions options_;
  std::unique_ptr<Scheduler> scheduler_;
};

TEST_F(SchedulerStoreFullTest, RefusesNewWorkKeepsReportsAndResumesAlone) {
  FakeSink sink;
  sink.settle = [this] { outbox_->DrainCallbacks(); };
  auto session = scheduler_->ConnectWorker("w1", 1, &sink);
  ASSERT_TRUE(session.ok());
  auto t1 = scheduler_->CreateTask(kTenant, Spec(), "r1");
  ASSERT_TRUE(t1.ok()) << t1.status();
  auto t2 =
      scheduler_->CreateTask(kTenant, Spec(), "r2");  // no credit left: queued
  ASSERT_TRUE(t2.ok()) << t2.status();
  std::vector<crucible::v1::Assignment> assigned = sink.TakeAssignments();
  ASSERT_EQ(assigned.size(), 1u);
  const std::string lease = assigned[0].lease_id();
  ASSERT_TRUE(scheduler_->ReportStarted(lease, absl::InfinitePast()).ok());
  ASSERT_TRUE(outbox_->AwaitDurable(outbox_->LastTicket()).ok());

  Fill();
  crucible::v1::OutputChunk chunk;
  chunk.set_data(std::string(16 << 10, 'o'));
  ASSERT_TRUE(scheduler_->ReportOutput(lease, chunk).ok());  // kept
  ASSERT_EQ(outbox_->AwaitDurable(outbox_->LastTicket()).code(),
            absl::StatusCode::kResourceExhausted);

  // New work and cancels are refused with the reason.
  auto refused = scheduler_->CreateTask(kTenant, Spec(), "r3");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(
      absl::StrContains(refused.status().message(), "the task store is full"))
      << refused.status();
  EXPECT_EQ(scheduler_->CancelTask(kTenant, t2->id(), "").status().code(),
            absl::StatusCode::kResourceExhausted);

  // Reads show what is durable, at once.
  auto got = scheduler_->GetTask(kTenant, t1->id());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->state(), crucible::v1::TASK_STATE_RUNNING);
  ListTasksQuery query;
  auto page = scheduler_->ListTasks(kTenant, query);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->tasks.size(), 2u);
  EXPECT_TRUE(scheduler_
                  ->ReadOutput(kTenant, t1->id(), 1, 0,
                               crucible::v1::OUTPUT_STREAM_UNSPECIFIED, 1 << 20)
                  .ok());
  // A watch starts from the durable state and sees what follows.
  EventLog events;
  auto sub = scheduler_->Subscribe(kTenant, t1->id(), &events);
  ASSERT_TRUE(sub.ok()) << sub.status();
  EXPECT_EQ(sub->task.state(), crucible::v1::TASK_STATE_RUNNING);

  // The worker's completion is kept (not refused: it would not be sent
  // again) and fencing stays exact: a second one is stale.
  EXPECT_TRUE(scheduler_->ReportCompletion(Exited0(lease)).ok());
  EXPECT_EQ(scheduler_->ReportCompletion(Exited0(lease)).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(scheduler_->GetTask(kTenant, t1->id())->state(),
            crucible::v1::TASK_STATE_RUNNING);
  // A purge needs room too: refused at once.
  EXPECT_EQ(scheduler_->PurgeExpired().status().code(),
            absl::StatusCode::kResourceExhausted);
  // A credit while full hands out nothing (the lease would lapse unsent).
  ASSERT_TRUE(scheduler_->AddCredits(*session, 1).ok());

  // Space is back: everything kept is stored and announced, by itself.
  ASSERT_TRUE(disk_->Free().ok());
  ASSERT_TRUE(events.WaitEnded());
  EXPECT_EQ(events.states().back(), crucible::v1::TASK_STATE_SUCCEEDED);
  EXPECT_TRUE(outbox_->health().ok());
  EXPECT_EQ(scheduler_->GetTask(kTenant, t1->id())->state(),
            crucible::v1::TASK_STATE_SUCCEEDED);
  auto output =
      scheduler_->ReadOutput(kTenant, t1->id(), 1, 0,
                             crucible::v1::OUTPUT_STREAM_UNSPECIFIED, 1 << 20);
  ASSERT_TRUE(output.ok());
  ASSERT_EQ(output->size(), 1u);
  EXPECT_EQ((*output)[0].data().size(), size_t{16 << 10});
  EXPECT_TRUE(sink.TakeAssignments().empty());
  scheduler_->ExpireLeases();  // the sweep dispatches again
  assigned = sink.TakeAssignments();
  ASSERT_EQ(assigned.size(), 1u);
  EXPECT_EQ(assigned[0].task().id(), t2->id());
  EXPECT_EQ(assigned[0].attempt(), 1);  // the outage cost no attempt
  auto t3 = scheduler_->CreateTask(kTenant, Spec(), "r3");
  EXPECT_TRUE(t3.ok()) << t3.status();
  scheduler_->Unsubscribe(sub->id);
}

}  // namespace
}  // namespace server
