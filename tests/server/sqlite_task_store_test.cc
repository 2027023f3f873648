#include "server/store/sqlite_task_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/proto_time.h"
#include "gtest/gtest.h"
#include "tests/server/test_util.h"

namespace server {
namespace {

using crucible::v1::OutputChunk;
using crucible::v1::Task;

class SqliteTaskStoreTest : public testing::Test {
 protected:
  void SetUp() override {
    path_ = testing_util::FreshDir() + "/tasks.db";
    Reopen();
  }
  void Reopen() {
    store_.reset();
    auto store = SqliteTaskStore::Open({.path = path_});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  Task MakeTask(const std::string& id, const std::string& request_id = "") {
    Task t;
    t.set_id(id);
    t.set_tenant("default");
    t.set_request_id(request_id);
    t.set_state(crucible::v1::TASK_STATE_QUEUED);
    t.mutable_spec()->set_image("img");
    *t.mutable_create_time() = common::ToProtoTime(absl::FromUnixSeconds(100));
    return t;
  }
  OutputChunk Chunk(int attempt, int64_t offset, const std::string& data,
                    crucible::v1::OutputStream stream =
                        crucible::v1::OUTPUT_STREAM_STDOUT) {
    OutputChunk c;
    c.set_attempt(attempt);
    c.set_offset(offset);
    c.set_data(data);
    c.set_stream(stream);
    return c;
  }

  std::string path_;
  std::unique_ptr<SqliteTaskStore> store_;
};

TEST_F(SqliteTaskStoreTest, OpensInWalModeWithSchemaVersion) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT MAX(version) FROM schema_version",
                               -1, &stmt, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), SqliteTaskStore::CurrentSchemaVersion());
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST_F(SqliteTaskStoreTest, WritesAreDurableInOrderAndSurviveReopen) {
  ASSERT_TRUE(store_->Write(TaskWrite::Insert(MakeTask("a"))).ok());
  Task t = MakeTask("a");
  t.set_state(crucible::v1::TASK_STATE_LEASED);
  t.set_attempt(1);
  ASSERT_TRUE(store_->Write(TaskWrite::Update(t)).ok());
  Reopen();
  auto got = store_->GetTask("a");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->state(), crucible::v1::TASK_STATE_LEASED);
  EXPECT_EQ(got->attempt(), 1);
  EXPECT_EQ(store_->GetTask("nope").status().code(), absl::StatusCode::kNotFound);
  // An insert of a taken id is ignored, not an error for its batch.
  Task dup = MakeTask("a");
  dup.set_attempt(7);
  ASSERT_TRUE(store_->Write(TaskWrite::Insert(dup)).ok());
  EXPECT_EQ(store_->GetTask("a")->attempt(), 1);
}

TEST_F(SqliteTaskStoreTest, ConcurrentWritesShareCommits) {
  // Many writes queued at once are committed in far fewer transactions,
  // and the last write of a task wins even when it shares a batch.
  constexpr int kTasks = 2000;
  WriteTicket last = 0;
  for (int i = 0; i < kTasks; ++i) {
    Task t = MakeTask(absl::StrCat("t", i));
    last = store_->Submit(TaskWrite::Insert(t));
    t.set_state(crucible::v1::TASK_STATE_SUCCEEDED);
    *t.mutable_end_time() = common::ToProtoTime(absl::FromUnixSeconds(200));
    last = store_->Submit(TaskWrite::Update(t));
  }
  EXPECT_EQ(last, WriteTicket{2 * kTasks});
  absl::Notification called;
  store_->AfterDurable(last, [&](absl::Status s) {
    EXPECT_TRUE(s.ok()) << s;
    called.Notify();
  });
  ASSERT_TRUE(store_->AwaitDurable(last).ok());
  ASSERT_TRUE(called.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_LT(store_->batches_committed(), kTasks);
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

TEST_F(SqliteTaskStoreTest, CallbacksRunInOrderAfterDurability) {
  std::vector<int> order;
  absl::Mutex mu;
  for (int i = 0; i < 50; ++i) {
    WriteTicket t = store_->Submit(TaskWrite::Insert(MakeTask(absl::StrCat(i))));
    store_->AfterDurable(t, [&, i](absl::Status s) {
      EXPECT_TRUE(s.ok());
      // Durable means readable through the store's reads.
      EXPECT_TRUE(store_->GetTask(absl::StrCat(i)).ok());
      absl::MutexLock lock(&mu);
      order.push_back(i);
    });
  }
  store_->DrainCallbacks();
  absl::MutexLock lock(&mu);
  ASSERT_EQ(order.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(order[i], i);
}

TEST_F(SqliteTaskStoreTest, BurstEndRunsAfterEachRunOfCallbacksAndBeforeDrainReturns) {
  // Each entry: the callback number, or -1 for a burst end.
  std::vector<int> log;
  absl::Mutex mu;
  store_->SetBurstEnd([&] {
    absl::MutexLock lock(&mu);
    log.push_back(-1);
  });
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 20; ++i) {
      WriteTicket t = store_->Submit(TaskWrite::Insert(MakeTask(absl::StrCat(round, "-", i))));
      store_->AfterDurable(t, [&, i](absl::Status s) {
        EXPECT_TRUE(s.ok());
        absl::MutexLock lock(&mu);
        log.push_back(i);
      });
    }
    store_->DrainCallbacks();
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
  store_->SetBurstEnd(nullptr);
}

TEST_F(SqliteTaskStoreTest, FindsByRequestIdPerTenant) {
  ASSERT_TRUE(store_->Write(TaskWrite::Insert(MakeTask("a", "r1"))).ok());
  // The unique index is a safety net: a second insert is ignored.
  ASSERT_TRUE(store_->Write(TaskWrite::Insert(MakeTask("b", "r1"))).ok());
  Task other = MakeTask("c", "r1");
  other.set_tenant("other");
  ASSERT_TRUE(store_->Write(TaskWrite::Insert(other)).ok());
  auto found = store_->FindByRequestId("default", "r1");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->id(), "a");
  EXPECT_EQ(store_->FindByRequestId("other", "r1")->id(), "c");
  EXPECT_EQ(store_->FindByRequestId("default", "r2").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetTask("b").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SqliteTaskStoreTest, ListsNewestFirstWithPagesAndFilters) {
  for (int i = 0; i < 5; ++i) {
    Task t = MakeTask(absl::StrCat("t", i));
    (*t.mutable_spec()->mutable_labels())["parity"] = i % 2 ? "odd" : "even";
    if (i == 4) t.set_state(crucible::v1::TASK_STATE_SUCCEEDED);
    ASSERT_TRUE(store_->Write(TaskWrite::Insert(t)).ok());
  }
  ListTasksQuery q{.tenant = "default", .page_size = 2};
  auto page = store_->ListTasks(q);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->tasks.size(), 2u);
  EXPECT_EQ(page->tasks[0].id(), "t4");
  EXPECT_EQ(page->tasks[1].id(), "t3");
  // Tasks created after the first page do not shift the next ones.
  ASSERT_TRUE(store_->Write(TaskWrite::Insert(MakeTask("t5"))).ok());
  q.page_token = page->next_page_token;
  page = store_->ListTasks(q);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->tasks.size(), 2u);
  EXPECT_EQ(page->tasks[0].id(), "t2");
  q.page_token = page->next_page_token;
  page = store_->ListTasks(q);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->tasks.size(), 1u);
  EXPECT_TRUE(page->next_page_token.empty());

  ListTasksQuery even{.tenant = "default", .page_size = 10};
  even.labels["parity"] = "even";
  even.states = {crucible::v1::TASK_STATE_QUEUED};
  page = store_->ListTasks(even);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->tasks.size(), 2u);  // t2, t0 (t4 is SUCCEEDED)
  EXPECT_EQ(page->tasks[0].id(), "t2");
  EXPECT_EQ(page->tasks[1].id(), "t0");

  for (std::string token : {"x", "seq:3", "djE6c2VxOmFi"}) {
    ListTasksQuery bad{.tenant = "default", .page_size = 1, .page_token = token};
    EXPECT_EQ(store_->ListTasks(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << token;
  }

  auto active = store_->LoadActiveTasks();
  ASSERT_TRUE(active.ok());
  EXPECT_EQ(active->size(), 5u);
  EXPECT_EQ((*active)[0].id(), "t0");
}

TEST_F(SqliteTaskStoreTest, OutputIsDedupedAndReadFromOffset) {
  ASSERT_TRUE(store_->Write(TaskWrite::Insert(MakeTask("a"))).ok());
  ASSERT_TRUE(store_->Write(TaskWrite::Output("a", Chunk(1, 0, "hello "))).ok());
  // A replay of the same offset is ignored.
  ASSERT_TRUE(store_->Write(TaskWrite::Output("a", Chunk(1, 0, "HELLO "))).ok());
  ASSERT_TRUE(store_
                  ->Write(TaskWrite::Output(
                      "a", Chunk(1, 6, "worl", crucible::v1::OUTPUT_STREAM_STDERR)))
                  .ok());
  ASSERT_TRUE(store_->Write(TaskWrite::Output("a", Chunk(2, 0, "second"))).ok());

  auto all = store_->ReadOutput("a", 1, 0, crucible::v1::OUTPUT_STREAM_UNSPECIFIED,
                                1 << 20);
  ASSERT_TRUE(all.ok());
  std::string joined;
  for (const auto& c : *all) joined += c.data();
  EXPECT_EQ(joined, "hello worl");

  auto from = store_->ReadOutput("a", 1, 3, crucible::v1::OUTPUT_STREAM_UNSPECIFIED,
                                 1 << 20);
  ASSERT_TRUE(from.ok());
  ASSERT_EQ(from->size(), 2u);
  EXPECT_EQ((*from)[0].offset(), 3);
  EXPECT_EQ((*from)[0].data(), "lo ");

  auto err = store_->ReadOutput("a", 1, 0, crucible::v1::OUTPUT_STREAM_STDERR,
                                1 << 20);
  ASSERT_TRUE(err.ok());
  ASSERT_EQ(err->size(), 1u);
  EXPECT_EQ((*err)[0].data(), "worl");
  EXPECT_EQ((*err)[0].offset(), 6);
}

TEST_F(SqliteTaskStoreTest, PurgeDeletesTasksThatEndedBeforeTheCutoff) {
  Task old_task = MakeTask("old");
  old_task.set_state(crucible::v1::TASK_STATE_SUCCEEDED);
  *old_task.mutable_end_time() = common::ToProtoTime(absl::FromUnixSeconds(100));
  Task recent = MakeTask("recent");
  recent.set_state(crucible::v1::TASK_STATE_FAILED);
  *recent.mutable_end_time() = common::ToProtoTime(absl::FromUnixSeconds(300));
  ASSERT_TRUE(store_->Write(TaskWrite::Insert(old_task)).ok());
  ASSERT_TRUE(store_->Write(TaskWrite::Insert(recent)).ok());
  ASSERT_TRUE(store_->Write(TaskWrite::Insert(MakeTask("queued"))).ok());
  ASSERT_TRUE(store_->Write(TaskWrite::Output("old", Chunk(1, 0, "x"))).ok());
  auto purged = store_->PurgeEndedBefore(absl::FromUnixSeconds(200), 100);
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, 1);
  EXPECT_EQ(store_->GetTask("old").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->ReadOutput("old", 1, 0,
                                 crucible::v1::OUTPUT_STREAM_UNSPECIFIED, 100)
                  ->empty());
  EXPECT_TRUE(store_->GetTask("recent").ok());
  EXPECT_TRUE(store_->GetTask("queued").ok());
}

}  // namespace
}  // namespace server
