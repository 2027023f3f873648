#include "server/store/sqlite_task_store.h"

#include <sqlite3.h>

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/proto_time.h"
#include "common/status_macros.h"

namespace server {
namespace {

using crucible::v1::OutputChunk;
using crucible::v1::OutputStream;
using crucible::v1::Task;
using crucible::v1::TaskState;

// Each entry moves the schema from version i to i+1. Never edit a shipped
// entry; append a new one.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE tasks (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  tenant TEXT NOT NULL,
  request_id TEXT,
  state INTEGER NOT NULL,
  priority INTEGER NOT NULL,
  create_time_us INTEGER NOT NULL,
  task BLOB NOT NULL
);
CREATE UNIQUE INDEX tasks_by_request ON tasks(tenant, request_id)
  WHERE request_id IS NOT NULL;
CREATE INDEX tasks_by_tenant ON tasks(tenant, seq);
CREATE INDEX tasks_by_state ON tasks(state, seq);
CREATE TABLE output_chunks (
  task_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  byte_offset INTEGER NOT NULL,
  stream INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (task_id, attempt, byte_offset)
);
)sql",
};
constexpr int kNumMigrations = sizeof(kMigrations) / sizeof(kMigrations[0]);
constexpr absl::string_view kPageTokenPrefix = "seq:";

absl::Status SqliteError(sqlite3* db, absl::string_view what) {
  // Busy / locked means another connection holds the file: retryable.
  int code = sqlite3_errcode(db);
  std::string msg = absl::StrCat("sqlite ", what, ": ", sqlite3_errmsg(db));
  if (code == SQLITE_BUSY || code == SQLITE_LOCKED) {
    return absl::UnavailableError(msg);
  }
  return absl::InternalError(msg);
}

// A prepared statement, finalized on destruction. Confined to one thread.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) {
      status_ = SqliteError(db, "prepare");
    }
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  const absl::Status& status() const { return status_; }
  Stmt& Bind(int i, int64_t v) {
    if (stmt_) sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Stmt& Bind(int i, absl::string_view v) {
    if (stmt_) sqlite3_bind_text(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindBlob(int i, absl::string_view v) {
    if (stmt_) sqlite3_bind_blob(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindNull(int i) {
    if (stmt_) sqlite3_bind_null(stmt_, i);
    return *this;
  }
  // True if a row is available; false when done. Errors go to status().
  bool Step() {
    if (!status_.ok()) return false;
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) status_ = SqliteError(db_, "step");
    return false;
  }
  // Runs a statement that returns no rows.
  absl::Status Run() {
    while (Step()) {
    }
    return status_;
  }
  int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }
  std::string Blob(int col) {
    const void* p = sqlite3_column_blob(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    return p == nullptr ? std::string() : std::string(static_cast<const char*>(p), n);
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  absl::Status status_;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back unless Commit() succeeded.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) {
    status_ = Stmt(db_, "BEGIN IMMEDIATE").Run();
  }
  ~Transaction() {
    if (status_.ok() && !done_) {
      Stmt(db_, "ROLLBACK").Run().IgnoreError();
    }
  }
  const absl::Status& status() const { return status_; }
  absl::Status Commit() {
    done_ = true;
    return Stmt(db_, "COMMIT").Run();
  }

 private:
  sqlite3* db_;
  absl::Status status_;
  bool done_ = false;
};

absl::StatusOr<Task> ParseTask(const std::string& bytes) {
  Task task;
  if (!task.ParseFromString(bytes)) {
    return absl::DataLossError("stored task does not parse");
  }
  return task;
}

bool IsTerminal(TaskState s) {
  return s == crucible::v1::TASK_STATE_SUCCEEDED ||
         s == crucible::v1::TASK_STATE_FAILED ||
         s == crucible::v1::TASK_STATE_TIMED_OUT ||
         s == crucible::v1::TASK_STATE_CANCELLED;
}

}  // namespace

int SqliteTaskStore::CurrentSchemaVersion() { return kNumMigrations; }

absl::StatusOr<std::unique_ptr<SqliteTaskStore>> SqliteTaskStore::Open(
    const SqliteTaskStoreOptions& options) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      options.path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
      nullptr);
  if (rc != SQLITE_OK) {
    absl::Status s = absl::UnavailableError(absl::StrCat(
        "cannot open ", options.path, ": ",
        db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    sqlite3_close(db);
    return s;
  }
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  std::unique_ptr<SqliteTaskStore> store(new SqliteTaskStore(db));
  absl::MutexLock lock(&store->mu_);
  // WAL keeps readers off the writer's back; FULL syncs the WAL on every
  // commit, which is what makes "CreateTask returned OK" mean "on disk".
  {
    Stmt wal(db, "PRAGMA journal_mode=WAL");
    if (!wal.Step() || wal.Blob(0) != "wal") {
      RETURN_IF_ERROR(wal.status());
      return absl::FailedPreconditionError(
          absl::StrCat(options.path, ": cannot switch to WAL mode"));
    }
  }
  RETURN_IF_ERROR(store->Exec("PRAGMA synchronous=FULL"));
  RETURN_IF_ERROR(store->Exec("PRAGMA foreign_keys=ON"));
  RETURN_IF_ERROR(store->Migrate());
  return store;
}

SqliteTaskStore::~SqliteTaskStore() {
  absl::MutexLock lock(&mu_);
  sqlite3_close(db_);
}

absl::Status SqliteTaskStore::Exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    absl::Status s = absl::InternalError(
        absl::StrCat("sqlite exec: ", err ? err : "unknown error"));
    sqlite3_free(err);
    return s;
  }
  return absl::OkStatus();
}

absl::Status SqliteTaskStore::Migrate() {
  RETURN_IF_ERROR(
      Exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));
  int64_t version = 0;
  {
    Stmt get(db_, "SELECT MAX(version) FROM schema_version");
    if (get.Step()) version = get.Int(0);
    RETURN_IF_ERROR(get.status());
  }
  if (version > kNumMigrations) {
    return absl::FailedPreconditionError(absl::StrCat(
        "database schema version ", version, " is newer than this binary (",
        kNumMigrations, ")"));
  }
  for (int64_t v = version; v < kNumMigrations; ++v) {
    Transaction tx(db_);
    RETURN_IF_ERROR(tx.status());
    RETURN_IF_ERROR(Exec(kMigrations[v]));
    RETURN_IF_ERROR(Stmt(db_, "INSERT INTO schema_version (version) VALUES (?)")
                        .Bind(1, v + 1)
                        .Run());
    RETURN_IF_ERROR(tx.Commit());
  }
  return absl::OkStatus();
}

absl::StatusOr<CreateTaskResult> SqliteTaskStore::CreateTask(const Task& task) {
  absl::MutexLock lock(&mu_);
  Transaction tx(db_);
  RETURN_IF_ERROR(tx.status());
  if (!task.request_id().empty()) {
    Stmt find(db_, "SELECT task FROM tasks WHERE tenant = ? AND request_id = ?");
    find.Bind(1, task.tenant()).Bind(2, task.request_id());
    if (find.Step()) {
      ASSIGN_OR_RETURN(Task existing, ParseTask(find.Blob(0)));
      return CreateTaskResult{std::move(existing), false};
    }
    RETURN_IF_ERROR(find.status());
  }
  {
    Stmt exists(db_, "SELECT 1 FROM tasks WHERE id = ?");
    exists.Bind(1, task.id());
    if (exists.Step()) {
      return absl::AlreadyExistsError(absl::StrCat("task ", task.id()));
    }
    RETURN_IF_ERROR(exists.status());
  }
  Stmt insert(db_,
              "INSERT INTO tasks (id, tenant, request_id, state, priority, "
              "create_time_us, task) VALUES (?, ?, ?, ?, ?, ?, ?)");
  insert.Bind(1, task.id()).Bind(2, task.tenant());
  if (task.request_id().empty()) {
    insert.BindNull(3);
  } else {
    insert.Bind(3, task.request_id());
  }
  insert.Bind(4, static_cast<int64_t>(task.state()))
      .Bind(5, static_cast<int64_t>(task.spec().priority()))
      .Bind(6, absl::ToUnixMicros(common::FromProtoTime(task.create_time())))
      .BindBlob(7, task.SerializeAsString());
  RETURN_IF_ERROR(insert.Run());
  RETURN_IF_ERROR(tx.Commit());
  return CreateTaskResult{task, true};
}

absl::StatusOr<Task> SqliteTaskStore::GetTaskLocked(const std::string& task_id) {
  Stmt get(db_, "SELECT task FROM tasks WHERE id = ?");
  get.Bind(1, task_id);
  if (get.Step()) return ParseTask(get.Blob(0));
  RETURN_IF_ERROR(get.status());
  return absl::NotFoundError(absl::StrCat("task ", task_id, " not found"));
}

absl::StatusOr<Task> SqliteTaskStore::GetTask(const std::string& task_id) {
  absl::MutexLock lock(&mu_);
  return GetTaskLocked(task_id);
}

absl::StatusOr<ListTasksPage> SqliteTaskStore::ListTasks(
    const ListTasksQuery& query) {
  int64_t before = INT64_MAX;
  if (!query.page_token.empty()) {
    absl::string_view token = query.page_token;
    if (!absl::ConsumePrefix(&token, kPageTokenPrefix) ||
        !absl::SimpleAtoi(token, &before)) {
      return absl::InvalidArgumentError("page_token: malformed");
    }
  }
  std::string sql = "SELECT seq, task FROM tasks WHERE tenant = ? AND seq < ?";
  if (!query.states.empty()) {
    std::vector<std::string> states;
    for (TaskState s : query.states) states.push_back(absl::StrCat(int{s}));
    absl::StrAppend(&sql, " AND state IN (", absl::StrJoin(states, ","), ")");
  }
  absl::StrAppend(&sql, " ORDER BY seq DESC");

  absl::MutexLock lock(&mu_);
  Stmt list(db_, sql.c_str());
  list.Bind(1, query.tenant).Bind(2, before);
  ListTasksPage page;
  int64_t last_seq = 0;
  while (list.Step()) {
    ASSIGN_OR_RETURN(Task task, ParseTask(list.Blob(1)));
    bool match = true;
    for (const auto& [key, value] : query.labels) {
      auto it = task.spec().labels().find(key);
      if (it == task.spec().labels().end() || it->second != value) {
        match = false;
        break;
      }
    }
    if (!match) continue;
    if (static_cast<int>(page.tasks.size()) == query.page_size) {
      page.next_page_token = absl::StrCat(kPageTokenPrefix, last_seq);
      break;
    }
    last_seq = list.Int(0);
    page.tasks.push_back(std::move(task));
  }
  RETURN_IF_ERROR(list.status());
  return page;
}

absl::Status SqliteTaskStore::UpdateTask(const Task& task) {
  absl::MutexLock lock(&mu_);
  Stmt update(db_, "UPDATE tasks SET state = ?, task = ? WHERE id = ?");
  update.Bind(1, static_cast<int64_t>(task.state()))
      .BindBlob(2, task.SerializeAsString())
      .Bind(3, task.id());
  RETURN_IF_ERROR(update.Run());
  if (sqlite3_changes(db_) == 0) {
    return absl::NotFoundError(absl::StrCat("task ", task.id(), " not found"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Task>> SqliteTaskStore::LoadActiveTasks() {
  absl::MutexLock lock(&mu_);
  Stmt list(db_, "SELECT task FROM tasks WHERE state IN (?, ?, ?) ORDER BY seq");
  list.Bind(1, int64_t{crucible::v1::TASK_STATE_QUEUED})
      .Bind(2, int64_t{crucible::v1::TASK_STATE_LEASED})
      .Bind(3, int64_t{crucible::v1::TASK_STATE_RUNNING});
  std::vector<Task> tasks;
  while (list.Step()) {
    ASSIGN_OR_RETURN(Task task, ParseTask(list.Blob(0)));
    if (!IsTerminal(task.state())) tasks.push_back(std::move(task));
  }
  RETURN_IF_ERROR(list.status());
  return tasks;
}

absl::StatusOr<AppendOutputResult> SqliteTaskStore::AppendOutput(
    const std::string& task_id, const OutputChunk& chunk, int64_t max_bytes) {
  absl::MutexLock lock(&mu_);
  Transaction tx(db_);
  RETURN_IF_ERROR(tx.status());
  AppendOutputResult result;
  result.stored = chunk;
  result.stored.clear_data();
  {
    Stmt dup(db_,
             "SELECT 1 FROM output_chunks WHERE task_id = ? AND attempt = ? "
             "AND byte_offset = ?");
    dup.Bind(1, task_id).Bind(2, chunk.attempt()).Bind(3, chunk.offset());
    if (dup.Step()) return result;
    RETURN_IF_ERROR(dup.status());
  }
  int64_t used = 0;
  {
    Stmt sum(db_,
             "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM output_chunks "
             "WHERE task_id = ? AND attempt = ?");
    sum.Bind(1, task_id).Bind(2, chunk.attempt());
    if (sum.Step()) used = sum.Int(0);
    RETURN_IF_ERROR(sum.status());
  }
  int64_t room = std::max<int64_t>(0, max_bytes - used);
  int64_t keep = std::min<int64_t>(room, chunk.data().size());
  result.truncated = keep < static_cast<int64_t>(chunk.data().size());
  if (keep == 0) return result;
  result.stored.set_data(chunk.data().substr(0, keep));
  RETURN_IF_ERROR(Stmt(db_,
                       "INSERT INTO output_chunks (task_id, attempt, "
                       "byte_offset, stream, data) VALUES (?, ?, ?, ?, ?)")
                      .Bind(1, task_id)
                      .Bind(2, chunk.attempt())
                      .Bind(3, chunk.offset())
                      .Bind(4, static_cast<int64_t>(chunk.stream()))
                      .BindBlob(5, result.stored.data())
                      .Run());
  RETURN_IF_ERROR(tx.Commit());
  return result;
}

absl::StatusOr<std::vector<OutputChunk>> SqliteTaskStore::ReadOutput(
    const std::string& task_id, int32_t attempt, int64_t offset,
    OutputStream stream, int64_t max_bytes) {
  std::string sql =
      "SELECT byte_offset, stream, data FROM output_chunks WHERE task_id = ? "
      "AND attempt = ? AND byte_offset + LENGTH(data) > ?";
  if (stream != crucible::v1::OUTPUT_STREAM_UNSPECIFIED) {
    absl::StrAppend(&sql, " AND stream = ", int{stream});
  }
  absl::StrAppend(&sql, " ORDER BY byte_offset");
  absl::MutexLock lock(&mu_);
  Stmt read(db_, sql.c_str());
  read.Bind(1, task_id).Bind(2, attempt).Bind(3, offset);
  std::vector<OutputChunk> chunks;
  int64_t total = 0;
  while (total < max_bytes && read.Step()) {
    OutputChunk chunk;
    chunk.set_attempt(attempt);
    chunk.set_offset(read.Int(0));
    chunk.set_stream(static_cast<OutputStream>(read.Int(1)));
    std::string data = read.Blob(2);
    if (chunk.offset() < offset) {
      data.erase(0, offset - chunk.offset());
      chunk.set_offset(offset);
    }
    total += data.size();
    chunk.set_data(std::move(data));
    chunks.push_back(std::move(chunk));
  }
  RETURN_IF_ERROR(read.status());
  return chunks;
}

}  // namespace server
