// The TaskStore contract, on both stores: the embedded SQLite file and
// PostgreSQL (a fresh database on the tests' server, fixture "postgres").
// Then what is particular to each: SQLite's WAL mode and migrations;
// PostgreSQL's fencing by the leader lease (tests/server/pg_leader_test.cc
// has the lease itself).
#include <sqlite3.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/types/span.h"
#include "common/proto_time.h"
#include "common/sha256.h"
#include "gtest/gtest.h"
#include "server/store/pg_task_store.h"
#include "server/store/sqlite_task_store.h"
#include "tests/server/test_util.h"
#include "tests/testing/postgres.h"

namespace server {
namespace {

using crucible::v1::OutputChunk;
using crucible::v1::Task;

enum class Backend { kSqlite, kPostgres };

std::string BackendName(const testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "Sqlite" : "Postgres";
}

class TaskStoreTest : public testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kSqlite) {
      path_ = testing_util::FreshDir() + "/tasks.db";
    } else {
      CRUCIBLE_REQUIRE_POSTGRES(uri);
      uri_ = uri;
    }
    Reopen();
  }
  void Reopen() {
    store_.reset();
    if (GetParam() == Backend::kSqlite) {
      auto store = SqliteTaskStore::Open({.path = path_});
      ASSERT_TRUE(store.ok()) << store.status();
      store_ = *std::move(store);
    } else {
      auto store = PgTaskStore::Open({.uri = uri_});
      ASSERT_TRUE(store.ok()) << store.status();
      store_ = *std::move(store);
    }
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
  OutputChunk Chunk(
      int attempt, int64_t offset, const std::string& data,
      crucible::v1::OutputStream stream = crucible::v1::OUTPUT_STREAM_STDOUT) {
    OutputChunk c;
    c.set_attempt(attempt);
    c.set_offset(offset);
    c.set_data(data);
    c.set_stream(stream);
    return c;
  }
  static TaskWrite ArtifactBytes(const std::string& task, int attempt,
                                 const std::string& path, int64_t offset,
                                 const std::string& data) {
    crucible::v1::ArtifactChunk c;
    c.set_path(path);
    c.set_offset(offset);
    c.set_data(data);
    return TaskWrite::ArtifactChunk(task, attempt, std::move(c));
  }
  static TaskWrite ArtifactKept(const std::string& task, int attempt,
                                const std::string& path,
                                const std::string& bytes) {
    crucible::v1::ArtifactInfo info;
    info.set_path(path);
    info.set_status(crucible::v1::ARTIFACT_STATUS_COLLECTED);
    info.set_size_bytes(static_cast<int64_t>(bytes.size()));
    info.set_sha256(common::Sha256Hex(bytes));
    return TaskWrite::Artifact(task, attempt, std::move(info));
  }
  // The bytes of an artifact, read in pages of `page` bytes.
  std::string ReadAll(const std::string& task, int attempt,
                      const std::string& path, int64_t page) {
    std::string got;
    while (true) {
      auto chunks = store_->ReadArtifact(
          task, attempt, path, static_cast<int64_t>(got.size()), page);
      EXPECT_TRUE(chunks.ok()) << chunks.status();
      if (!chunks.ok() || chunks->empty()) return got;
      for (const auto& c : *chunks) {
        EXPECT_EQ(c.offset(), static_cast<int64_t>(got.size()));
        EXPECT_EQ(c.path(), path);
        got += c.data();
      }
    }
  }
  // One write committed on its own.
  absl::Status Write(TaskWrite w) {
    return store_->Commit(absl::MakeConstSpan(&w, 1));
  }

  std::string path_;  // SQLite
  std::string uri_;   // PostgreSQL
  std::unique_ptr<TaskStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Stores, TaskStoreTest,
                         testing::Values(Backend::kSqlite, Backend::kPostgres),
                         BackendName);

// SQLite only.
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
  Task MakeTask(const std::string& id) {
    Task t;
    t.set_id(id);
    t.set_tenant("default");
    t.set_state(crucible::v1::TASK_STATE_QUEUED);
    t.mutable_spec()->set_image("img");
    return t;
  }
  absl::Status Write(TaskWrite w) {
    return store_->Commit(absl::MakeConstSpan(&w, 1));
  }
  // Runs `sql` on the database file through a connection of its own.
  void ExecOnFile(const char* sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    sqlite3_close(db);
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
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)),
               "wal");
  sqlite3_finalize(stmt);
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT MAX(version) FROM schema_version",
                               -1, &stmt, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0),
            SqliteTaskStore::CurrentSchemaVersion());
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST_P(TaskStoreTest, WritesAreDurableInOrderAndSurviveReopen) {
  ASSERT_TRUE(Write(TaskWrite::Insert(MakeTask("a"))).ok());
  Task t = MakeTask("a");
  t.set_state(crucible::v1::TASK_STATE_LEASED);
  t.set_attempt(1);
  ASSERT_TRUE(Write(TaskWrite::Update(t)).ok());
  Reopen();
  auto got = store_->GetTask("a");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->state(), crucible::v1::TASK_STATE_LEASED);
  EXPECT_EQ(got->attempt(), 1);
  EXPECT_EQ(store_->GetTask("nope").status().code(),
            absl::StatusCode::kNotFound);
  // An insert of a taken id is ignored, not an error for its batch.
  Task dup = MakeTask("a");
  dup.set_attempt(7);
  ASSERT_TRUE(Write(TaskWrite::Insert(dup)).ok());
  EXPECT_EQ(store_->GetTask("a")->attempt(), 1);
}

TEST_P(TaskStoreTest, KeepsTheTraceIdAcrossReopen) {
  Task t = MakeTask("a", "r1");
  t.set_trace_id("4bf92f3577b34da6a3ce929d0e0e4736");
  ASSERT_TRUE(Write(TaskWrite::Insert(t)).ok());
  t.set_state(crucible::v1::TASK_STATE_SUCCEEDED);
  ASSERT_TRUE(Write(TaskWrite::Update(t)).ok());
  Reopen();
  EXPECT_EQ(store_->GetTask("a")->trace_id(), t.trace_id());
  absl::StatusOr<Task> found = store_->FindByRequestId("default", "r1");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->trace_id(), t.trace_id());
}

TEST_P(TaskStoreTest, FindsByRequestIdPerTenant) {
  ASSERT_TRUE(Write(TaskWrite::Insert(MakeTask("a", "r1"))).ok());
  // The unique index is a safety net: a second insert is ignored.
  ASSERT_TRUE(Write(TaskWrite::Insert(MakeTask("b", "r1"))).ok());
  Task other = MakeTask("c", "r1");
  other.set_tenant("other");
  ASSERT_TRUE(Write(TaskWrite::Insert(other)).ok());
  auto found = store_->FindByRequestId("default", "r1");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->id(), "a");
  EXPECT_EQ(store_->FindByRequestId("other", "r1")->id(), "c");
  EXPECT_EQ(store_->FindByRequestId("default", "r2").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetTask("b").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(TaskStoreTest, ListsNewestFirstWithPagesAndFilters) {
  for (int i = 0; i < 5; ++i) {
    Task t = MakeTask(absl::StrCat("t", i));
    (*t.mutable_spec()->mutable_labels())["parity"] = i % 2 ? "odd" : "even";
    if (i == 4) t.set_state(crucible::v1::TASK_STATE_SUCCEEDED);
    ASSERT_TRUE(Write(TaskWrite::Insert(t)).ok());
  }
  ListTasksQuery q{.tenant = "default", .page_size = 2};
  auto page = store_->ListTasks(q);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->tasks.size(), 2u);
  EXPECT_EQ(page->tasks[0].id(), "t4");
  EXPECT_EQ(page->tasks[1].id(), "t3");
  // Tasks created after the first page do not shift the next ones.
  ASSERT_TRUE(Write(TaskWrite::Insert(MakeTask("t5"))).ok());
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
    ListTasksQuery bad{
        .tenant = "default", .page_size = 1, .page_token = token};
    EXPECT_EQ(store_->ListTasks(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << token;
  }

  auto active = store_->LoadActiveTasks();
  ASSERT_TRUE(active.ok());
  EXPECT_EQ(active->size(), 5u);
  EXPECT_EQ((*active)[0].id(), "t0");
}

TEST_P(TaskStoreTest, FiltersLabelsInSqlOverPages) {
  // 30 tasks: team a/b alternating, tier gold every third.
  std::vector<TaskWrite> batch;
  for (int i = 0; i < 30; ++i) {
    Task t = MakeTask(absl::StrCat("t", i));
    auto& labels = *t.mutable_spec()->mutable_labels();
    labels["team"] = i % 2 ? "b" : "a";
    if (i % 3 == 0) labels["tier"] = "gold";
    batch.push_back(TaskWrite::Insert(t));
  }
  ASSERT_TRUE(store_->Commit(batch).ok());
  // team=a and tier=gold: t0, t6, t12, t18, t24; newest first, 2 per page.
  ListTasksQuery q{.tenant = "default", .page_size = 2};
  q.labels = {{"team", "a"}, {"tier", "gold"}};
  std::vector<std::string> ids;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = store_->ListTasks(q);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const Task& t : page->tasks) ids.push_back(t.id());
    if (page->next_page_token.empty()) break;
    q.page_token = page->next_page_token;
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"t24", "t18", "t12", "t6", "t0"}));
  // A value nobody has, and a tenant that has none of them.
  q = ListTasksQuery{.tenant = "default", .page_size = 10};
  q.labels = {{"team", "c"}};
  EXPECT_TRUE(store_->ListTasks(q)->tasks.empty());
  q = ListTasksQuery{.tenant = "other", .page_size = 10};
  q.labels = {{"team", "a"}};
  EXPECT_TRUE(store_->ListTasks(q)->tasks.empty());
}

TEST_F(SqliteTaskStoreTest, MigrationLabelsTasksStoredBeforeIt) {
  Task t = MakeTask("old");
  (*t.mutable_spec()->mutable_labels())["team"] = "a";
  ASSERT_TRUE(Write(TaskWrite::Insert(t)).ok());
  store_.reset();
  // Back to schema 2, as a store written by the previous release.
  ExecOnFile(
      "DROP TABLE task_labels; DROP TABLE api_tokens; "
      "DROP TABLE artifact_chunks; DROP TABLE artifacts; "
      "DROP INDEX tasks_by_callback; "
      "ALTER TABLE tasks DROP COLUMN callback_pending; "
      "DELETE FROM schema_version WHERE version > 2");
  Reopen();
  ListTasksQuery q{.tenant = "default", .page_size = 10};
  q.labels = {{"team", "a"}};
  auto page = store_->ListTasks(q);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->tasks.size(), 1u);
  EXPECT_EQ(page->tasks[0].id(), "old");
}

// A terminal task whose completion callback is PENDING is found (after a
// reopen too) until a write records it delivered; a task whose callback is
// still PENDING but that has not ended is not owed one yet.
TEST_P(TaskStoreTest, FindsCallbacksOwedUntilRecorded) {
  const std::string id = absl::StrCat("cb-", absl::ToUnixMicros(absl::Now()));
  Task ended = MakeTask(id);
  ended.mutable_spec()->set_callback_url("http://127.0.0.1:1/");
  ASSERT_TRUE(Write(TaskWrite::Insert(ended)).ok());
  Task running = MakeTask(id + "-running");
  running.mutable_callback()->set_state(crucible::v1::CALLBACK_STATE_PENDING);
  ASSERT_TRUE(Write(TaskWrite::Insert(running)).ok());
  ended.set_state(crucible::v1::TASK_STATE_CANCELLED);
  *ended.mutable_end_time() = common::ToProtoTime(absl::FromUnixSeconds(200));
  ended.mutable_callback()->set_state(crucible::v1::CALLBACK_STATE_PENDING);
  ASSERT_TRUE(Write(TaskWrite::Update(ended)).ok());
  auto owed_ids = [&] {
    std::vector<std::string> ids;
    auto owed = store_->LoadPendingCallbackBytes(1000);
    EXPECT_TRUE(owed.ok()) << owed.status();
    if (!owed.ok()) return ids;
    for (const std::string& bytes : *owed) {
      auto t = ParseStoredTask(bytes);
      EXPECT_TRUE(t.ok());
      if (t.ok() && absl::StartsWith(t->id(), id)) ids.push_back(t->id());
    }
    return ids;
  };
  EXPECT_EQ(owed_ids(), std::vector<std::string>{id});
  Reopen();
  EXPECT_EQ(owed_ids(), std::vector<std::string>{id});
  ended.mutable_callback()->set_state(crucible::v1::CALLBACK_STATE_DELIVERED);
  ended.mutable_callback()->set_attempts(1);
  ASSERT_TRUE(Write(TaskWrite::Update(ended)).ok());
  EXPECT_TRUE(owed_ids().empty());
  auto got = store_->GetTask(id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->callback().state(), crucible::v1::CALLBACK_STATE_DELIVERED);
}

TEST_P(TaskStoreTest, AFailedCommitLeavesNothing) {
  ASSERT_TRUE(Write(TaskWrite::Insert(MakeTask("a"))).ok());
  // A write the database refuses (a trigger aborts the insert of "c")
  // fails the whole batch: the insert before it is not committed either.
  std::vector<TaskWrite> batch = {TaskWrite::Insert(MakeTask("b")),
                                  TaskWrite::Insert(MakeTask("c"))};
  if (GetParam() == Backend::kSqlite) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    EXPECT_EQ(
        sqlite3_exec(db,
                     "CREATE TRIGGER no_c BEFORE INSERT ON tasks WHEN "
                     "NEW.id = 'c' BEGIN SELECT RAISE(ABORT, 'no c'); END",
                     nullptr, nullptr, nullptr),
        SQLITE_OK)
        << sqlite3_errmsg(db);
    sqlite3_close(db);
  } else {
    ASSERT_TRUE(::testing_util::ExecPostgres(
                    uri_,
                    "CREATE FUNCTION no_c() RETURNS trigger AS $$ BEGIN IF "
                    "NEW.id = 'c' THEN RAISE EXCEPTION 'no c'; END IF; RETURN "
                    "NEW; END $$ LANGUAGE plpgsql; CREATE TRIGGER no_c BEFORE "
                    "INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION no_c()")
                    .ok());
  }
  absl::Status s = store_->Commit(batch);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(absl::IsResourceExhausted(s)) << s;
  EXPECT_TRUE(store_->GetTask("a").ok());
  EXPECT_EQ(store_->GetTask("b").status().code(), absl::StatusCode::kNotFound);
  // The store goes on: the next batch commits.
  EXPECT_TRUE(Write(TaskWrite::Insert(MakeTask("d"))).ok());
  EXPECT_TRUE(store_->GetTask("d").ok());
}

TEST_P(TaskStoreTest, OutputIsDedupedAndReadFromOffset) {
  ASSERT_TRUE(Write(TaskWrite::Insert(MakeTask("a"))).ok());
  ASSERT_TRUE(Write(TaskWrite::Output("a", Chunk(1, 0, "hello "))).ok());
  // A replay of the same offset is ignored.
  ASSERT_TRUE(Write(TaskWrite::Output("a", Chunk(1, 0, "HELLO "))).ok());
  ASSERT_TRUE(
      Write(TaskWrite::Output(
                "a", Chunk(1, 6, "worl", crucible::v1::OUTPUT_STREAM_STDERR)))
          .ok());
  ASSERT_TRUE(Write(TaskWrite::Output("a", Chunk(2, 0, "second"))).ok());

  auto all = store_->ReadOutput(
      "a", 1, 0, crucible::v1::OUTPUT_STREAM_UNSPECIFIED, 1 << 20);
  ASSERT_TRUE(all.ok());
  std::string joined;
  for (const auto& c : *all) joined += c.data();
  EXPECT_EQ(joined, "hello worl");

  auto from = store_->ReadOutput(
      "a", 1, 3, crucible::v1::OUTPUT_STREAM_UNSPECIFIED, 1 << 20);
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

TEST_P(TaskStoreTest, ArtifactsAreFoundByAttemptAndReadInPagesFromAnOffset) {
  ASSERT_TRUE(Write(TaskWrite::Insert(MakeTask("a"))).ok());
  std::string big;
  for (int i = 0; i < 20000; ++i) big += absl::StrCat(i, "\n");
  // Attempt 1: out/big in 64 KiB chunks in one batch, with its record.
  std::vector<TaskWrite> batch;
  for (size_t off = 0; off < big.size(); off += 65536) {
    batch.push_back(
        ArtifactBytes("a", 1, "out/big", off, big.substr(off, 65536)));
  }
  batch.push_back(ArtifactKept("a", 1, "out/big", big));
  ASSERT_TRUE(store_->Commit(batch).ok());
  // A replayed chunk is ignored.
  ASSERT_TRUE(Write(ArtifactBytes("a", 1, "out/big", 0, "XXXX")).ok());
  // Attempt 2 has its own out/big, and a path whose bytes were never
  // recorded whole (no kArtifact): not found.
  ASSERT_TRUE(Write(ArtifactBytes("a", 2, "out/big", 0, "second")).ok());
  ASSERT_TRUE(Write(ArtifactKept("a", 2, "out/big", "second")).ok());
  ASSERT_TRUE(Write(ArtifactBytes("a", 2, "out/partial", 0, "par")).ok());

  auto latest = store_->FindArtifact("a", "out/big", 0);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->attempt, 2);
  EXPECT_EQ(latest->info.size_bytes(), 6);
  EXPECT_EQ(latest->info.sha256(), common::Sha256Hex("second"));
  EXPECT_EQ(latest->info.status(), crucible::v1::ARTIFACT_STATUS_COLLECTED);
  auto first = store_->FindArtifact("a", "out/big", 1);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->attempt, 1);
  EXPECT_EQ(first->info.size_bytes(), static_cast<int64_t>(big.size()));
  EXPECT_EQ(store_->FindArtifact("a", "out/big", 3).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->FindArtifact("a", "out/partial", 0).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->FindArtifact("b", "out/big", 0).status().code(),
            absl::StatusCode::kNotFound);

  EXPECT_EQ(ReadAll("a", 1, "out/big", 100000), big);
  EXPECT_EQ(ReadAll("a", 1, "out/big", 1), big);
  EXPECT_EQ(ReadAll("a", 2, "out/big", 1 << 20), "second");
  // From an offset inside a chunk: the first chunk is cut there.
  auto from = store_->ReadArtifact("a", 1, "out/big", 70000, 1 << 20);
  ASSERT_TRUE(from.ok());
  ASSERT_FALSE(from->empty());
  EXPECT_EQ((*from)[0].offset(), 70000);
  EXPECT_EQ((*from)[0].data(), big.substr(70000, 65536 * 2 - 70000));
}

TEST_P(TaskStoreTest, PurgeDeletesTasksThatEndedBeforeTheCutoff) {
  Task old_task = MakeTask("old");
  (*old_task.mutable_spec()->mutable_labels())["l"] = "v";
  old_task.set_state(crucible::v1::TASK_STATE_SUCCEEDED);
  *old_task.mutable_end_time() =
      common::ToProtoTime(absl::FromUnixSeconds(100));
  Task recent = MakeTask("recent");
  (*recent.mutable_spec()->mutable_labels())["l"] = "v";
  recent.set_state(crucible::v1::TASK_STATE_FAILED);
  *recent.mutable_end_time() = common::ToProtoTime(absl::FromUnixSeconds(300));
  ASSERT_TRUE(Write(TaskWrite::Insert(old_task)).ok());
  ASSERT_TRUE(Write(TaskWrite::Insert(recent)).ok());
  ASSERT_TRUE(Write(TaskWrite::Insert(MakeTask("queued"))).ok());
  ASSERT_TRUE(Write(TaskWrite::Output("old", Chunk(1, 0, "x"))).ok());
  ASSERT_TRUE(Write(ArtifactBytes("old", 1, "r.txt", 0, "y")).ok());
  ASSERT_TRUE(Write(ArtifactKept("old", 1, "r.txt", "y")).ok());
  auto purged = store_->PurgeEndedBefore(absl::FromUnixSeconds(200), 100);
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, 1);
  EXPECT_EQ(store_->GetTask("old").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_
                  ->ReadOutput("old", 1, 0,
                               crucible::v1::OUTPUT_STREAM_UNSPECIFIED, 100)
                  ->empty());
  EXPECT_EQ(store_->FindArtifact("old", "r.txt", 0).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->ReadArtifact("old", 1, "r.txt", 0, 100)->empty());
  EXPECT_TRUE(store_->GetTask("recent").ok());
  EXPECT_TRUE(store_->GetTask("queued").ok());
  // Its labels went with it: a filter finds only what is left.
  ListTasksQuery q{.tenant = "default", .page_size = 10};
  q.labels = {{"l", "v"}};
  auto page = store_->ListTasks(q);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->tasks.size(), 1u);
  EXPECT_EQ(page->tasks[0].id(), "recent");
}

// API tokens live in the same store, so every server of one store shares
// them.
TEST_P(TaskStoreTest, KeepsApiTokens) {
  auto* tokens = dynamic_cast<auth::TokenStore*>(store_.get());
  ASSERT_NE(tokens, nullptr);
  auth::TokenRecord t{.id = "tok1",
                      .name = "ci",
                      .tenant = "team-a",
                      .role = crucible::v1::ROLE_USER,
                      .secret_sha256 = std::string(32, '\x01'),
                      .created_by = "admin",
                      .create_time = absl::FromUnixSeconds(10)};
  ASSERT_TRUE(tokens->Insert(t).ok());
  EXPECT_EQ(tokens->Insert(t).code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(tokens->Revoke("tok1", absl::FromUnixSeconds(20)).ok());
  EXPECT_TRUE(tokens->Revoke("tok1", absl::FromUnixSeconds(30)).ok());
  EXPECT_EQ(tokens->Revoke("nope", absl::FromUnixSeconds(30)).code(),
            absl::StatusCode::kNotFound);
  Reopen();
  tokens = dynamic_cast<auth::TokenStore*>(store_.get());
  auto all = tokens->LoadAll();
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].tenant, "team-a");
  EXPECT_EQ((*all)[0].role, crucible::v1::ROLE_USER);
  EXPECT_EQ((*all)[0].secret_sha256, std::string(32, '\x01'));
  EXPECT_EQ((*all)[0].revoke_time, absl::FromUnixSeconds(20));
  EXPECT_EQ((*all)[0].expire_time, absl::InfiniteFuture());
}

// PostgreSQL only: once fenced by a lease that another server has since
// taken, a commit writes nothing and says why.
class PgFencingTest : public testing::Test {};

TEST_F(PgFencingTest, ADeposedLeaderCommitsNothing) {
  CRUCIBLE_REQUIRE_POSTGRES(uri);
  auto store = PgTaskStore::Open({.uri = uri});
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE(::testing_util::ExecPostgres(
                  uri,
                  "INSERT INTO crucible_leader VALUES (1, 'a', 7, now() + "
                  "interval '1 hour')")
                  .ok());
  (*store)->SetFence({.holder = "a", .epoch = 7});
  Task t;
  t.set_id("one");
  t.set_tenant("default");
  t.set_state(crucible::v1::TASK_STATE_QUEUED);
  std::vector<TaskWrite> w = {TaskWrite::Insert(t)};
  ASSERT_TRUE((*store)->Commit(w).ok());
  // Server b takes over (epoch 8).
  ASSERT_TRUE(::testing_util::ExecPostgres(
                  uri, "UPDATE crucible_leader SET holder = 'b', epoch = 8")
                  .ok());
  t.set_id("two");
  w = {TaskWrite::Insert(t)};
  absl::Status s = (*store)->Commit(w);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("b holds it (epoch 8)"), std::string::npos) << s;
  EXPECT_EQ((*store)->GetTask("two").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE((*store)->GetTask("one").ok());
  EXPECT_EQ((*store)->PurgeEndedBefore(absl::Now(), 10).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// A schema newer than the binary's is refused, not written over.
TEST_F(PgFencingTest, RefusesANewerSchema) {
  CRUCIBLE_REQUIRE_POSTGRES(uri);
  ASSERT_TRUE(PgTaskStore::Open({.uri = uri}).ok());
  ASSERT_TRUE(
      ::testing_util::ExecPostgres(
          uri, absl::StrCat("INSERT INTO crucible_schema_version "
                            "VALUES (",
                            PgTaskStore::CurrentSchemaVersion() + 1, ")"))
          .ok());
  auto again = PgTaskStore::Open({.uri = uri});
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(again.status().message().find("newer than this binary"),
            std::string::npos)
      << again.status();
}

}  // namespace
}  // namespace server
