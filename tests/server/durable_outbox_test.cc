#include "server/outbox/durable_outbox.h"

#include <algorithm>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/proto_time.h"
#include "gtest/gtest.h"
#include "server/store/sqlite_task_store.h"
#include "tests/server/test_util.h"

namespace server {
namespace {

using crucible::v1::Task;

Task MakeTask(const std::string& id) {
  Task t;
  t.set_id(id);
  t.set_tenant("default");
  t.set_state(crucible::v1::TASK_STATE_QUEUED);
  t.mutable_spec()->set_image("img");
  *t.mutable_create_time() = common::ToProtoTime(absl::FromUnixSeconds(100));
  return t;
}

// The outbox over a real SQLite store.
class DurableOutboxTest : public testing::Test {
 protected:
  void SetUp() override {
    auto store =
        SqliteTaskStore::Open({.path = testing_util::FreshDir() + "/tasks.db"});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    outbox_ = std::make_unique<DurableOutbox>(*store_, DurableOutboxOptions{});
  }
  void TearDown() override { outbox_.reset(); }

  std::unique_ptr<SqliteTaskStore> store_;
  std::unique_ptr<DurableOutbox> outbox_;
};

TEST_F(DurableOutboxTest, ConcurrentWritesShareCommits) {
  // Many writes queued at once are committed in far fewer transactions,
  // and the last write of a task wins even when it shares a batch.
  constexpr int kTasks = 2000;
  WriteTicket last = 0;
  for (int i = 0; i < kTasks; ++i) {
    Task t = MakeTask(absl::StrCat("t", i));
    last = outbox_->Submit(TaskWrite::Insert(t));
    t.set_state(crucible::v1::TASK_STATE_SUCCEEDED);
    *t.mutable_end_time() = common::ToProtoTime(absl::FromUnixSeconds(200));
    last = outbox_->Submit(TaskWrite::Update(t));
  }
  EXPECT_EQ(last, WriteTicket{2 * kTasks});
  absl::Notification called;
  outbox_->AfterDurable(last, [&](absl::Status s) {
    EXPECT_TRUE(s.ok()) << s;
    called.Notify();
  });
  ASSERT_TRUE(outbox_->AwaitDurable(last).ok());
  ASSERT_TRUE(called.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_LT(outbox_->batches_committed(), kTasks);
  auto active = store_->LoadActiveTasks();
  ASSERT_TRUE(active.ok());
  EXPECT_TRUE(active->empty());
  ListTasksQuery q{.tenant = "default", .page_size = 1};
  auto page = store_->ListTasks(q);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->tasks.size(), 1u);
  EXPECT_EQ(page->tasks[0].id(), absl::StrCat("t", kTasks - 1));
  EXPECT_EQ(page->tasks[0].state(), crucible::v1::TASK_STATE_SUCCEEDED);
}

TEST_F(DurableOutboxTest, CallbacksRunInOrderAfterDurability) {
  std::vector<int> order;
  absl::Mutex mu;
  for (int i = 0; i < 50; ++i) {
    WriteTicket t =
        outbox_->Submit(TaskWrite::Insert(MakeTask(absl::StrCat(i))));
    outbox_->AfterDurable(t, [&, i](absl::Status s) {
      EXPECT_TRUE(s.ok());
      // Durable means readable through the store's reads.
      EXPECT_TRUE(store_->GetTask(absl::StrCat(i)).ok());
      absl::MutexLock lock(&mu);
      order.push_back(i);
    });
  }
  outbox_->DrainCallbacks();
  absl::MutexLock lock(&mu);
  ASSERT_EQ(order.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(order[i], i);
}

TEST_F(DurableOutboxTest,
       BurstEndRunsAfterEachRunOfCallbacksAndBeforeDrainReturns) {
  // Each entry: the callback number, or -1 for a burst end.
  std::vector<int> log;
  absl::Mutex mu;
  outbox_->SetBurstEnd([&] {
    absl::MutexLock lock(&mu);
    log.push_back(-1);
  });
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 20; ++i) {
      WriteTicket t = outbox_->Submit(
          TaskWrite::Insert(MakeTask(absl::StrCat(round, "-", i))));
      outbox_->AfterDurable(t, [&, i](absl::Status s) {
        EXPECT_TRUE(s.ok());
        absl::MutexLock lock(&mu);
        log.push_back(i);
      });
    }
    outbox_->DrainCallbacks();
    absl::MutexLock lock(&mu);
    // The round's callbacks all ran, and a burst end after the last one.
    ASSERT_GE(log.size(), 21u);
    EXPECT_EQ(log.back(), -1);
    EXPECT_EQ(log[log.size() - 2], 19);
    // Never two burst ends in a row, nor one without a callback before it.
    for (size_t k = 0; k < log.size(); ++k) {
      if (log[k] == -1) EXPECT_TRUE(k > 0 && log[k - 1] != -1) << k;
    }
    EXPECT_EQ(std::count(log.begin(), log.end(), 19), round + 1);
  }
  outbox_->SetBurstEnd(nullptr);
}

// A store whose commits answer what the test scripts (pure logic of the
// outbox; the real full disk is store_full_test's). Thread-safe.
class ScriptedStore : public TaskStore {
 public:
  // The next commits fail with these, in order; then they succeed.
  void FailNext(std::vector<absl::Status> errors) {
    absl::MutexLock lock(&mu_);
    errors_.insert(errors_.end(), errors.begin(), errors.end());
  }
  std::vector<std::string> committed_ids() {
    absl::MutexLock lock(&mu_);
    return committed_;
  }
  int commits_tried() {
    absl::MutexLock lock(&mu_);
    return tried_;
  }

  absl::Status Commit(absl::Span<const TaskWrite> writes) override {
    absl::MutexLock lock(&mu_);
    ++tried_;
    if (!errors_.empty()) {
      absl::Status s = errors_.front();
      errors_.pop_front();
      return s;
    }
    for (const TaskWrite& w : writes) committed_.push_back(w.row.id);
    return absl::OkStatus();
  }
  absl::StatusOr<Task> GetTask(const std::string&) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<Task> FindByRequestId(const std::string&,
                                       const std::string&) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<ListTasksPage> ListTasks(const ListTasksQuery&) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<std::vector<std::string>> LoadActiveTaskBytes() override {
    return std::vector<std::string>{};
  }
  absl::StatusOr<std::vector<crucible::v1::OutputChunk>> ReadOutput(
      const std::string&, int32_t, int64_t, crucible::v1::OutputStream,
      int64_t) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<StoredArtifact> FindArtifact(const std::string&,
                                              const std::string&,
                                              int32_t) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<std::vector<crucible::v1::ArtifactChunk>> ReadArtifact(
      const std::string&, int32_t, const std::string&, int64_t,
      int64_t) override {
    return absl::UnimplementedError("");
  }
  absl::StatusOr<int> PurgeEndedBefore(absl::Time, int) override { return 0; }

 private:
  absl::Mutex mu_;
  std::deque<absl::Status> errors_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> committed_ ABSL_GUARDED_BY(mu_);
  int tried_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST(DurableOutboxFaultsTest,
     AFullStoreKeepsTheBatchAndCommitsItInOrderOnceSpaceIsBack) {
  ScriptedStore store;
  store.FailNext(
      {absl::ResourceExhaustedError("the task store is full: test"),
       absl::ResourceExhaustedError("the task store is full: test")});
  // Full for at least two tries, 200 ms apart: AwaitDurable sees it.
  DurableOutbox outbox(store, {.full_retry_interval = absl::Milliseconds(200)});
  outbox.Submit(TaskWrite::Insert(MakeTask("a")));
  // While full: RESOURCE_EXHAUSTED, and writes wait behind the first.
  absl::Status waited = outbox.AwaitDurable(1);
  EXPECT_TRUE(absl::IsResourceExhausted(waited)) << waited;
  EXPECT_TRUE(absl::IsResourceExhausted(outbox.health())) << outbox.health();
  const WriteTicket last = outbox.Submit(TaskWrite::Insert(MakeTask("b")));
  absl::Notification durable;
  outbox.AfterDurable(last, [&](absl::Status s) {
    EXPECT_TRUE(s.ok()) << s;
    durable.Notify();
  });
  ASSERT_TRUE(durable.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_TRUE(outbox.health().ok()) << outbox.health();
  EXPECT_EQ(store.committed_ids(), (std::vector<std::string>{"a", "b"}));
  EXPECT_GE(store.commits_tried(), 3);
}

TEST(DurableOutboxFaultsTest, AnyOtherCommitFailureBreaksItForGood) {
  ScriptedStore store;
  store.FailNext({absl::InternalError("disk I/O error")});
  DurableOutbox outbox(store, {});
  const WriteTicket first = outbox.Submit(TaskWrite::Insert(MakeTask("a")));
  absl::Notification called;
  outbox.AfterDurable(first, [&](absl::Status s) {
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
    called.Notify();
  });
  ASSERT_TRUE(called.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(outbox.health().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(outbox.health().message().find("disk I/O error"),
            std::string::npos);
  // Later writes are dropped, not committed after the lost one.
  EXPECT_EQ(outbox.AwaitDurable(outbox.Submit(TaskWrite::Insert(MakeTask("b"))))
                .code(),
            absl::StatusCode::kUnavailable);
  EXPECT_TRUE(store.committed_ids().empty());
}

}  // namespace
}  // namespace server
