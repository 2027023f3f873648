#include "server/store/sqlite_task_store.h"

#include <pthread.h>
#include <sqlite3.h>

#include <filesystem>
#include <memory>
#include <system_error>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "glog/logging.h"
#include "server/store/sqlite_util.h"

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
    // 2: when a task ended, for retention.
    R"sql(
ALTER TABLE tasks ADD COLUMN end_time_us INTEGER;
CREATE INDEX tasks_by_end ON tasks(end_time_us) WHERE end_time_us IS NOT NULL;
)sql",
};
constexpr int kNumMigrations = sizeof(kMigrations) / sizeof(kMigrations[0]);
constexpr absl::string_view kPageTokenPrefix = "v1:seq:";

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

int64_t Micros(const google::protobuf::Timestamp& t) {
  return absl::ToUnixMicros(common::FromProtoTime(t));
}

absl::StatusOr<sqlite3*> OpenConnection(const SqliteTaskStoreOptions& options) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(options.path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                               SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    absl::Status s = absl::UnavailableError(absl::StrCat(
        "cannot open ", options.path, ": ",
        db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    sqlite3_close(db);
    return s;
  }
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  // Keep the WAL and its index (-shm) when the last connection closes: a
  // WAL database cannot even be read without them, and on a full disk they
  // could not be made again, so a restart there would fail to open.
  int persist = 1;
  sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
  return db;
}

absl::Status Migrate(sqlite3* db) {
  RETURN_IF_ERROR(ExecSql(
      db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));
  int64_t version = 0;
  {
    Stmt get(db, "SELECT MAX(version) FROM schema_version");
    if (get.Step()) version = get.Int(0);
    RETURN_IF_ERROR(get.status());
  }
  if (version > kNumMigrations) {
    return absl::FailedPreconditionError(absl::StrCat(
        "database schema version ", version, " is newer than this binary (",
        kNumMigrations, ")"));
  }
  for (int64_t v = version; v < kNumMigrations; ++v) {
    Transaction tx(db);
    RETURN_IF_ERROR(tx.status());
    RETURN_IF_ERROR(ExecSql(db, kMigrations[v]));
    RETURN_IF_ERROR(Stmt(db, "INSERT INTO schema_version (version) VALUES (?)")
                        .Bind(1, v + 1)
                        .Run());
    RETURN_IF_ERROR(tx.Commit());
  }
  return absl::OkStatus();
}

// Binds a task's changing columns: state, end_time_us, task blob.
void BindRow(Stmt& stmt, const TaskRow& row, int first) {
  stmt.Bind(first, static_cast<int64_t>(row.state));
  if (row.end_time_us.has_value()) {
    stmt.Bind(first + 1, *row.end_time_us);
  } else {
    stmt.BindNull(first + 1);
  }
  stmt.BindBlob(first + 2, row.blob);
}

}  // namespace

TaskRow TaskRow::Of(const Task& task) {
  TaskRow row;
  row.id = task.id();
  row.state = task.state();
  if (task.has_end_time()) row.end_time_us = Micros(task.end_time());
  row.blob = task.SerializeAsString();
  return row;
}

TaskWrite TaskWrite::Insert(const Task& task) {
  TaskWrite w;
  w.kind = Kind::kInsert;
  w.row = TaskRow::Of(task);
  w.row.tenant = task.tenant();
  w.row.request_id = task.request_id();
  w.row.create_time_us = Micros(task.create_time());
  w.row.priority = task.spec().priority();
  return w;
}

TaskWrite TaskWrite::Update(const Task& task) {
  TaskWrite w;
  w.kind = Kind::kUpdate;
  w.row = TaskRow::Of(task);
  return w;
}

TaskWrite TaskWrite::Output(std::string task_id, OutputChunk chunk) {
  TaskWrite w;
  w.kind = Kind::kOutput;
  w.task_id = std::move(task_id);
  w.chunk = std::move(chunk);
  return w;
}

int SqliteTaskStore::CurrentSchemaVersion() { return kNumMigrations; }

absl::StatusOr<std::unique_ptr<SqliteTaskStore>> SqliteTaskStore::Open(
    const SqliteTaskStoreOptions& options) {
  ASSIGN_OR_RETURN(sqlite3 * write_db, OpenConnection(options));
  // WAL keeps readers off the writer's back; FULL syncs the WAL on every
  // commit, which is what makes a committed batch survive a crash.
  absl::Status s = [&]() -> absl::Status {
    Stmt wal(write_db, "PRAGMA journal_mode=WAL");
    if (!wal.Step() || wal.Blob(0) != "wal") {
      RETURN_IF_ERROR(wal.status());
      return absl::FailedPreconditionError(
          absl::StrCat(options.path, ": cannot switch to WAL mode"));
    }
    return absl::OkStatus();
  }();
  if (s.ok()) s = ExecSql(write_db, "PRAGMA synchronous=FULL");
  if (s.ok()) s = Migrate(write_db);
  if (!s.ok()) {
    sqlite3_close(write_db);
    return s;
  }
  absl::StatusOr<sqlite3*> read_db = OpenConnection(options);
  if (!read_db.ok()) {
    sqlite3_close(write_db);
    return read_db.status();
  }
  return std::unique_ptr<SqliteTaskStore>(
      new SqliteTaskStore(options, write_db, *read_db));
}

SqliteTaskStore::SqliteTaskStore(const SqliteTaskStoreOptions& options,
                                 sqlite3* write_db, sqlite3* read_db)
    : options_(options), write_db_(write_db), read_db_(read_db) {
  // Named for top -H and perf.
  writer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "store-writer");
    WriterLoop();
  });
  callback_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "store-callback");
    CallbackLoop();
  });
}

SqliteTaskStore::~SqliteTaskStore() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  writer_.join();
  callback_thread_.join();
  insert_task_.reset();  // finalized before their connection closes
  update_task_.reset();
  insert_output_.reset();
  sqlite3_close(write_db_);
  absl::MutexLock lock(&read_mu_);
  sqlite3_close(read_db_);
}

WriteTicket SqliteTaskStore::Enqueue(Pending pending) {
  absl::MutexLock lock(&mu_);
  pending.ticket = ++last_ticket_;
  WriteTicket ticket = pending.ticket;
  queue_.push_back(std::move(pending));
  return ticket;
}

WriteTicket SqliteTaskStore::Submit(TaskWrite write) {
  Pending p;
  p.write = std::move(write);
  return Enqueue(std::move(p));
}

WriteTicket SqliteTaskStore::LastTicket() {
  absl::MutexLock lock(&mu_);
  return last_ticket_;
}

void SqliteTaskStore::AfterDurable(WriteTicket ticket,
                                   std::function<void(absl::Status)> fn) {
  absl::MutexLock lock(&mu_);
  callbacks_.push_back(Callback{ticket, std::move(fn)});
}

absl::Status SqliteTaskStore::AwaitDurable(WriteTicket ticket) {
  absl::MutexLock lock(&mu_);
  DurableArg arg{this, ticket};
  mu_.Await(absl::Condition(&SqliteTaskStore::IsDurableOrFull, &arg));
  if (durable_ >= ticket) return absl::OkStatus();
  return failed_.ok() ? full_ : failed_;
}

void SqliteTaskStore::DrainCallbacks() {
  absl::MutexLock lock(&mu_);
  ++drain_waiters_;  // a writer waiting for space tries once more, then gives up
  mu_.Await(absl::Condition(this, &SqliteTaskStore::Drained));
  --drain_waiters_;
}

absl::Status SqliteTaskStore::health() {
  // Asked on every dispatch: no lock while all is well.
  if (!unhealthy_.load(std::memory_order_acquire)) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  return failed_.ok() ? full_ : failed_;
}

int64_t SqliteTaskStore::batches_committed() {
  absl::MutexLock lock(&mu_);
  return batches_;
}

bool SqliteTaskStore::IsDurable(DurableArg* arg) {
  arg->store->mu_.AssertHeld();
  return arg->store->Durable(arg->ticket);
}

bool SqliteTaskStore::IsDurableOrFull(DurableArg* arg) {
  arg->store->mu_.AssertHeld();
  return arg->store->Durable(arg->ticket) || !arg->store->full_.ok();
}

bool SqliteTaskStore::CallbackReady() const {
  if (!callbacks_.empty()) return Durable(callbacks_.front().ticket);
  return stopping_ && writer_done_;
}

void SqliteTaskStore::WriterLoop() {
  while (true) {
    std::vector<Pending> batch = NextBatch();
    if (batch.empty()) return;
    absl::Status s = CommitBatch(batch);
    absl::MutexLock lock(&mu_);
    if (s.ok()) {
      durable_ = batch.back().ticket;
      ++batches_;
    } else if (failed_.ok()) {
      LOG(ERROR) << "store: commit failed, the store is now read-only: " << s;
      failed_ = absl::UnavailableError(absl::StrCat("store failed: ", s.message()));
      unhealthy_.store(true, std::memory_order_release);
    }
  }
}

std::vector<SqliteTaskStore::Pending> SqliteTaskStore::NextBatch() {
  std::vector<Pending> batch;
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(this, &SqliteTaskStore::WriterReady));
  if (queue_.empty()) {  // stopping, and everything is written
    writer_done_ = true;
    return batch;
  }
  // A job runs alone; writes are taken up to the next job.
  if (queue_.front().job) {
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
    return batch;
  }
  while (!queue_.empty() && !queue_.front().job &&
         static_cast<int>(batch.size()) < options_.max_batch) {
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return batch;
}

absl::Status SqliteTaskStore::CommitBatch(std::vector<Pending>& batch) {
  bool last_try = false;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (!failed_.ok()) return failed_;
    }
    absl::Status s = ApplyBatch(batch);  // rolled back if it failed
    ResetStatements();
    absl::Status full = s.ok() ? absl::OkStatus() : FullError(s);
    absl::MutexLock lock(&mu_);
    if (s.ok() && !full_.ok()) {
      LOG(WARNING) << "store: writes succeed again on " << options_.path;
      full_ = absl::OkStatus();
      unhealthy_.store(false, std::memory_order_release);
    }
    if (s.ok() || full.ok()) return s;
    // The disk is full: nothing is lost yet (the batch is rolled back and
    // kept, later writes queue behind it), so wait for space instead of
    // breaking the store. Memory stays ahead of the file meanwhile.
    if (full_.ok()) {
      LOG(ERROR) << "store: " << full.message() << " (" << batch.size() + queue_.size()
                 << " writes waiting)";
      full_ = full;
      unhealthy_.store(true, std::memory_order_release);
    }
    if (last_try) {  // stopping or draining: no one will wait for space
      LOG(ERROR) << "store: giving up with the disk still full; "
                 << batch.size() + queue_.size() << " writes not stored";
      return absl::UnavailableError(
          absl::StrCat("stopped while the disk was full: ", full.message()));
    }
    // Real time, not a Clock: this waits on the disk, not on the domain.
    if (!RetryNow()) {
      mu_.AwaitWithTimeout(absl::Condition(this, &SqliteTaskStore::RetryNow),
                           options_.full_retry_interval);
    }
    last_try = RetryNow();
  }
}

absl::Status SqliteTaskStore::FullError(const absl::Status& s) const {
  std::filesystem::path dir = std::filesystem::path(options_.path).parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  const std::filesystem::space_info space = std::filesystem::space(dir, ec);
  // SQLite says SQLITE_FULL for ENOSPC on its files, but a full disk can
  // also surface as SQLITE_IOERR (say, growing the WAL index).
  constexpr uintmax_t kNearlyFull = 1 << 20;
  const bool no_space = !ec && space.available < kNearlyFull;
  if (!absl::IsResourceExhausted(s) && !(absl::IsInternal(s) && no_space)) {
    return absl::OkStatus();
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "the task store is full: no space left on the disk of ", options_.path,
      ec ? "" : absl::StrCat(" (", space.available, " bytes free)"),
      "; writes wait and resume by themselves once space is freed (",
      s.message(), ")"));
}

void SqliteTaskStore::ResetStatements() {
  for (std::unique_ptr<Stmt>* stmt : {&insert_task_, &update_task_, &insert_output_}) {
    if (*stmt != nullptr) (*stmt)->Reset();
  }
}

void SqliteTaskStore::SetBurstEnd(std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  burst_end_ = std::move(fn);
}

void SqliteTaskStore::CallbackLoop() {
  bool in_burst = false;  // callbacks ran since the last burst end
  while (true) {
    Callback cb;
    absl::Status status;
    std::function<void()> burst_end;
    {
      absl::MutexLock lock(&mu_);
      callback_running_ = false;
      const bool next_ready = !callbacks_.empty() && Durable(callbacks_.front().ticket);
      if (in_burst && !next_ready) {
        in_burst = false;
        burst_end = burst_end_;  // a copy: SetBurstEnd may run meanwhile
        callback_running_ = burst_end != nullptr;  // so Drained waits for it
      } else {
        mu_.Await(absl::Condition(this, &SqliteTaskStore::CallbackReady));
        if (callbacks_.empty()) return;  // stopping, writer done, all run
        cb = std::move(callbacks_.front());
        callbacks_.pop_front();
        status = durable_ >= cb.ticket ? absl::OkStatus() : failed_;
        callback_running_ = true;
      }
    }
    if (cb.fn) {
      cb.fn(std::move(status));
      in_burst = true;
    } else if (burst_end) {
      burst_end();
    }
  }
}

absl::Status SqliteTaskStore::ApplyBatch(std::vector<Pending>& batch) {
  Transaction tx(write_db_);
  RETURN_IF_ERROR(tx.status());
  if (batch.front().job) {
    RETURN_IF_ERROR(batch.front().job(write_db_));
    return tx.Commit();
  }
  // Several writes of one task in a batch: only the last state is written,
  // in the row the first one made (so creation order, and seq, hold).
  struct Row {
    bool insert;
    const TaskRow* first;  // the insert's columns
    const TaskRow* last;   // the latest state
  };
  std::vector<Row> rows;
  absl::flat_hash_map<absl::string_view, size_t> row_of;
  std::vector<const TaskWrite*> outputs;
  for (const Pending& p : batch) {
    const TaskWrite& w = p.write;
    if (w.kind == TaskWrite::Kind::kOutput) {
      outputs.push_back(&w);
      continue;
    }
    auto [it, fresh] = row_of.try_emplace(w.row.id, rows.size());
    if (fresh) {
      rows.push_back(Row{w.kind == TaskWrite::Kind::kInsert, &w.row, &w.row});
    } else {
      rows[it->second].last = &w.row;
    }
  }
  auto prepared = [this](std::unique_ptr<Stmt>& stmt, const char* sql) -> Stmt& {
    if (stmt == nullptr) stmt = std::make_unique<Stmt>(write_db_, sql);
    return *stmt;
  };
  Stmt& insert = prepared(insert_task_,
                          "INSERT OR IGNORE INTO tasks (id, tenant, request_id, "
                          "create_time_us, priority, state, end_time_us, task) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  Stmt& update = prepared(update_task_,
                          "UPDATE tasks SET state = ?, end_time_us = ?, task = ? "
                          "WHERE id = ?");
  for (const Row& row : rows) {
    const TaskRow& t = *row.first;
    if (row.insert) {
      insert.Reset();
      insert.Bind(1, t.id).Bind(2, t.tenant);
      if (t.request_id.empty()) {
        insert.BindNull(3);
      } else {
        insert.Bind(3, t.request_id);
      }
      insert.Bind(4, t.create_time_us).Bind(5, int64_t{t.priority});
      BindRow(insert, *row.last, 6);
      RETURN_IF_ERROR(insert.Run());
    } else {
      update.Reset();
      BindRow(update, *row.last, 1);
      update.Bind(4, t.id);
      RETURN_IF_ERROR(update.Run());
    }
  }
  if (!outputs.empty()) {
    Stmt& out = prepared(insert_output_,
                         "INSERT OR IGNORE INTO output_chunks (task_id, attempt, "
                         "byte_offset, stream, data) VALUES (?, ?, ?, ?, ?)");
    for (const TaskWrite* w : outputs) {
      out.Reset();
      out.Bind(1, w->task_id)
          .Bind(2, w->chunk.attempt())
          .Bind(3, w->chunk.offset())
          .Bind(4, static_cast<int64_t>(w->chunk.stream()))
          .BindBlob(5, w->chunk.data());
      RETURN_IF_ERROR(out.Run());
    }
  }
  return tx.Commit();
}

absl::StatusOr<Task> SqliteTaskStore::GetTaskLocked(const std::string& task_id) {
  Stmt get(read_db_, "SELECT task FROM tasks WHERE id = ?");
  get.Bind(1, task_id);
  if (get.Step()) return ParseTask(get.Blob(0));
  RETURN_IF_ERROR(get.status());
  return absl::NotFoundError(absl::StrCat("task ", task_id, " not found"));
}

absl::StatusOr<Task> SqliteTaskStore::GetTask(const std::string& task_id) {
  absl::MutexLock lock(&read_mu_);
  return GetTaskLocked(task_id);
}

absl::StatusOr<Task> SqliteTaskStore::FindByRequestId(
    const std::string& tenant, const std::string& request_id) {
  absl::MutexLock lock(&read_mu_);
  Stmt find(read_db_, "SELECT task FROM tasks WHERE tenant = ? AND request_id = ?");
  find.Bind(1, tenant).Bind(2, request_id);
  if (find.Step()) return ParseTask(find.Blob(0));
  RETURN_IF_ERROR(find.status());
  return absl::NotFoundError(absl::StrCat("request_id ", request_id, " not found"));
}

absl::StatusOr<ListTasksPage> SqliteTaskStore::ListTasks(
    const ListTasksQuery& query) {
  int64_t before = INT64_MAX;
  if (!query.page_token.empty()) {
    std::string decoded;
    absl::string_view token;
    if (absl::WebSafeBase64Unescape(query.page_token, &decoded)) token = decoded;
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

  absl::MutexLock lock(&read_mu_);
  Stmt list(read_db_, sql.c_str());
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
      page.next_page_token = absl::WebSafeBase64Escape(
          absl::StrCat(kPageTokenPrefix, last_seq));
      break;
    }
    last_seq = list.Int(0);
    page.tasks.push_back(std::move(task));
  }
  RETURN_IF_ERROR(list.status());
  return page;
}

absl::StatusOr<std::vector<Task>> SqliteTaskStore::LoadActiveTasks() {
  absl::MutexLock lock(&read_mu_);
  Stmt list(read_db_,
            "SELECT task FROM tasks WHERE state IN (?, ?, ?) ORDER BY seq");
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
  absl::MutexLock lock(&read_mu_);
  Stmt read(read_db_, sql.c_str());
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

absl::StatusOr<int> SqliteTaskStore::PurgeEndedBefore(absl::Time cutoff,
                                                      int limit) {
  // A delete needs room in the WAL too: it would only queue behind the rest.
  RETURN_IF_ERROR(health());
  auto purged = std::make_shared<int>(0);
  Pending p;
  p.job = [purged, cutoff, limit](sqlite3* db) -> absl::Status {
    std::vector<std::string> ids;
    {
      Stmt old(db,
               "SELECT id FROM tasks WHERE end_time_us IS NOT NULL AND "
               "end_time_us < ? LIMIT ?");
      old.Bind(1, absl::ToUnixMicros(cutoff)).Bind(2, int64_t{limit});
      while (old.Step()) ids.push_back(old.Blob(0));
      RETURN_IF_ERROR(old.status());
    }
    Stmt chunks(db, "DELETE FROM output_chunks WHERE task_id = ?");
    Stmt tasks(db, "DELETE FROM tasks WHERE id = ?");
    for (const std::string& id : ids) {
      chunks.Reset();
      RETURN_IF_ERROR(chunks.Bind(1, id).Run());
      tasks.Reset();
      RETURN_IF_ERROR(tasks.Bind(1, id).Run());
    }
    *purged = static_cast<int>(ids.size());
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(AwaitDurable(Enqueue(std::move(p))));
  return *purged;
}

}  // namespace server
