#include "server/store/sqlite_task_store.h"

#include <sqlite3.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
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

TEST_F(SqliteTaskStoreTest, CreateGetUpdateSurviveReopen) {
  auto created = store_->CreateTask(MakeTask("a"));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->created);
  Task t = MakeTask("a");
  t.set_state(crucible::v1::TASK_STATE_LEASED);
  t.set_attempt(1);
  ASSERT_TRUE(store_->UpdateTask(t).ok());
  Reopen();
  auto got = store_->GetTask("a");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->state(), crucible::v1::TASK_STATE_LEASED);
  EXPECT_EQ(got->attempt(), 1);
  EXPECT_EQ(store_->GetTask("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->UpdateTask(MakeTask("nope")).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->CreateTask(MakeTask("a")).status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST_F(SqliteTaskStoreTest, RequestIdIsIdempotentPerTenant) {
  ASSERT_TRUE(store_->CreateTask(MakeTask("a", "r1")).ok());
  auto again = store_->CreateTask(MakeTask("b", "r1"));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->task.id(), "a");
  Task other = MakeTask("c", "r1");
  other.set_tenant("other");
  auto other_tenant = store_->CreateTask(other);
  ASSERT_TRUE(other_tenant.ok());
  EXPECT_TRUE(other_tenant->created);
  EXPECT_EQ(store_->GetTask("b").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SqliteTaskStoreTest, ListsNewestFirstWithPagesAndFilters) {
  for (int i = 0; i < 5; ++i) {
    Task t = MakeTask(absl::StrCat("t", i));
    (*t.mutable_spec()->mutable_labels())["parity"] = i % 2 ? "odd" : "even";
    if (i == 4) t.set_state(crucible::v1::TASK_STATE_SUCCEEDED);
    ASSERT_TRUE(store_->CreateTask(t).ok());
  }
  ListTasksQuery q{.tenant = "default", .page_size = 2};
  auto page = store_->ListTasks(q);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->tasks.size(), 2u);
  EXPECT_EQ(page->tasks[0].id(), "t4");
  EXPECT_EQ(page->tasks[1].id(), "t3");
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

  ListTasksQuery bad{.tenant = "default", .page_size = 1, .page_token = "x"};
  EXPECT_EQ(store_->ListTasks(bad).status().code(),
            absl::StatusCode::kInvalidArgument);

  auto active = store_->LoadActiveTasks();
  ASSERT_TRUE(active.ok());
  EXPECT_EQ(active->size(), 4u);
  EXPECT_EQ((*active)[0].id(), "t0");
}

TEST_F(SqliteTaskStoreTest, OutputIsCappedDedupedAndReadFromOffset) {
  ASSERT_TRUE(store_->CreateTask(MakeTask("a")).ok());
  auto r = store_->AppendOutput("a", Chunk(1, 0, "hello "), 10);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->truncated);
  r = store_->AppendOutput("a", Chunk(1, 0, "hello "), 10);  // replay
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->stored.data().empty());
  r = store_->AppendOutput(
      "a", Chunk(1, 6, "world!", crucible::v1::OUTPUT_STREAM_STDERR), 10);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->truncated);
  EXPECT_EQ(r->stored.data(), "worl");
  ASSERT_TRUE(store_->AppendOutput("a", Chunk(2, 0, "second"), 10).ok());

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

}  // namespace
}  // namespace server
