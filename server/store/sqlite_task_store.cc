#include "server/store/sqlite_task_store.h"

#include <sqlite3.h>

#include <filesystem>
#include <memory>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "glog/logging.h"
#include "server/store/sqlite_schema.h"
#include "server/store/sqlite_util.h"

namespace server {
namespace {

using crucible::v1::ArtifactChunk;
using crucible::v1::OutputChunk;
using crucible::v1::OutputStream;
using crucible::v1::Task;
using crucible::v1::TaskState;

absl::StatusOr<sqlite3*> OpenConnection(const SqliteTaskStoreOptions& options) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      options.path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  if (rc != SQLITE_OK) {
    absl::Status s = absl::UnavailableError(
        absl::StrCat("cannot open ", options.path, ": ",
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

// Binds a task's changing columns: state, end_time_us, task blob,
// callback_pending (NULL unless a completion callback is owed).
void BindRow(Stmt& stmt, const TaskRow& row, int first) {
  stmt.Bind(first, static_cast<int64_t>(row.state));
  if (row.end_time_us.has_value()) {
    stmt.Bind(first + 1, *row.end_time_us);
  } else {
    stmt.BindNull(first + 1);
  }
  stmt.BindBlob(first + 2, row.blob);
  if (row.callback_pending) {
    stmt.Bind(first + 3, int64_t{1});
  } else {
    stmt.BindNull(first + 3);
  }
}

}  // namespace

int SqliteTaskStore::CurrentSchemaVersion() { return SqliteSchemaVersion(); }

// A read connection of the pool, for one read.
class SqliteTaskStore::ReadConnection {
 public:
  explicit ReadConnection(SqliteTaskStore* store)
      : store_(store), db_(store->AcquireRead()) {}
  ~ReadConnection() { store_->ReleaseRead(db_); }
  ReadConnection(const ReadConnection&) = delete;
  ReadConnection& operator=(const ReadConnection&) = delete;
  sqlite3* get() const { return db_; }

 private:
  SqliteTaskStore* const store_;
  sqlite3* const db_;
};

absl::StatusOr<std::unique_ptr<SqliteTaskStore>> SqliteTaskStore::Open(
    const SqliteTaskStoreOptions& options) {
  if (options.read_connections < 1) {
    return absl::InvalidArgumentError("store: read_connections must be >= 1");
  }
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
  if (s.ok()) s = MigrateSqliteSchema(write_db);
  std::vector<sqlite3*> read_dbs;
  while (s.ok() &&
         static_cast<int>(read_dbs.size()) < options.read_connections) {
    absl::StatusOr<sqlite3*> read_db = OpenConnection(options);
    s = read_db.status();
    if (s.ok()) read_dbs.push_back(*read_db);
  }
  if (!s.ok()) {
    for (sqlite3* db : read_dbs) sqlite3_close(db);
    sqlite3_close(write_db);
    return s;
  }
  return std::unique_ptr<SqliteTaskStore>(
      new SqliteTaskStore(options, write_db, std::move(read_dbs)));
}

SqliteTaskStore::SqliteTaskStore(const SqliteTaskStoreOptions& options,
                                 sqlite3* write_db,
                                 std::vector<sqlite3*> read_dbs)
    : options_(options),
      write_db_(write_db),
      idle_reads_(read_dbs),
      read_dbs_(read_dbs) {}

SqliteTaskStore::~SqliteTaskStore() {
  {
    absl::MutexLock lock(&write_mu_);
    // Finalized before their connection closes.
    insert_task_.reset();
    update_task_.reset();
    insert_output_.reset();
    insert_label_.reset();
    insert_artifact_chunk_.reset();
    insert_artifact_.reset();
    sqlite3_close(write_db_);
  }
  absl::MutexLock lock(&read_mu_);
  CHECK_EQ(idle_reads_.size(), read_dbs_.size())
      << "store destroyed during a read";
  for (sqlite3* db : read_dbs_) sqlite3_close(db);
}

sqlite3* SqliteTaskStore::AcquireRead() {
  absl::MutexLock lock(&read_mu_);
  read_mu_.Await(absl::Condition(this, &SqliteTaskStore::ReadFree));
  sqlite3* db = idle_reads_.back();
  idle_reads_.pop_back();
  return db;
}

void SqliteTaskStore::ReleaseRead(sqlite3* db) {
  absl::MutexLock lock(&read_mu_);
  idle_reads_.push_back(db);
}

absl::Status SqliteTaskStore::Commit(absl::Span<const TaskWrite> writes) {
  if (writes.empty()) return absl::OkStatus();
  absl::MutexLock lock(&write_mu_);
  absl::Status s = ApplyBatch(writes);  // rolled back if it failed
  ResetStatements();
  return s.ok() ? s : FullError(s);
}

absl::Status SqliteTaskStore::FullError(const absl::Status& s) const {
  std::filesystem::path dir =
      std::filesystem::path(options_.path).parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  const std::filesystem::space_info space = std::filesystem::space(dir, ec);
  // SQLite says SQLITE_FULL for ENOSPC on its files, but a full disk can
  // also surface as SQLITE_IOERR (say, growing the WAL index).
  constexpr uintmax_t kNearlyFull = 1 << 20;
  const bool no_space = !ec && space.available < kNearlyFull;
  if (!absl::IsResourceExhausted(s) && !(absl::IsInternal(s) && no_space)) {
    return s;
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "the task store is full: no space left on the disk of ", options_.path,
      ec ? "" : absl::StrCat(" (", space.available, " bytes free)"),
      "; writes wait and resume by themselves once space is freed (",
      s.message(), ")"));
}

void SqliteTaskStore::ResetStatements() {
  for (std::unique_ptr<Stmt>* stmt :
       {&insert_task_, &update_task_, &insert_output_, &insert_label_,
        &insert_artifact_chunk_, &insert_artifact_}) {
    if (*stmt != nullptr) (*stmt)->Reset();
  }
}

absl::Status SqliteTaskStore::ApplyBatch(absl::Span<const TaskWrite> writes) {
  Transaction tx(write_db_);
  RETURN_IF_ERROR(tx.status());
  const FoldedBatch batch = FoldBatch(writes);
  auto prepared = [this](std::unique_ptr<Stmt>& stmt, const char* sql)
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) -> Stmt& {
    if (stmt == nullptr) stmt = std::make_unique<Stmt>(write_db_, sql);
    return *stmt;
  };
  Stmt& insert =
      prepared(insert_task_,
               "INSERT OR IGNORE INTO tasks (id, tenant, request_id, "
               "create_time_us, priority, state, end_time_us, task, "
               "callback_pending) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  Stmt& update =
      prepared(update_task_,
               "UPDATE tasks SET state = ?, end_time_us = ?, task = ?, "
               "callback_pending = ? WHERE id = ?");
  for (const FoldedBatch::Row& row : batch.rows) {
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
      // Not ignored (a new id and request_id): label the new row.
      if (sqlite3_changes(write_db_) == 1) {
        RETURN_IF_ERROR(InsertLabels(t, sqlite3_last_insert_rowid(write_db_)));
      }
    } else {
      update.Reset();
      BindRow(update, *row.last, 1);
      update.Bind(5, t.id);
      RETURN_IF_ERROR(update.Run());
    }
  }
  if (!batch.outputs.empty()) {
    Stmt& out =
        prepared(insert_output_,
                 "INSERT OR IGNORE INTO output_chunks (task_id, attempt, "
                 "byte_offset, stream, data) VALUES (?, ?, ?, ?, ?)");
    for (const TaskWrite* w : batch.outputs) {
      out.Reset();
      out.Bind(1, w->task_id)
          .Bind(2, w->chunk.attempt())
          .Bind(3, w->chunk.offset())
          .Bind(4, static_cast<int64_t>(w->chunk.stream()))
          .BindBlob(5, w->chunk.data());
      RETURN_IF_ERROR(out.Run());
    }
  }
  if (!batch.artifact_chunks.empty()) {
    Stmt& chunk = prepared(
        insert_artifact_chunk_,
        "INSERT OR IGNORE INTO artifact_chunks (task_id, attempt, path, "
        "byte_offset, data) VALUES (?, ?, ?, ?, ?)");
    for (const TaskWrite* w : batch.artifact_chunks) {
      chunk.Reset();
      chunk.Bind(1, w->task_id)
          .Bind(2, w->attempt)
          .Bind(3, w->artifact_chunk.path())
          .Bind(4, w->artifact_chunk.offset())
          .BindBlob(5, w->artifact_chunk.data());
      RETURN_IF_ERROR(chunk.Run());
    }
  }
  if (!batch.artifacts.empty()) {
    Stmt& artifact =
        prepared(insert_artifact_,
                 "INSERT OR IGNORE INTO artifacts (task_id, attempt, path, "
                 "size_bytes, sha256) VALUES (?, ?, ?, ?, ?)");
    for (const TaskWrite* w : batch.artifacts) {
      artifact.Reset();
      artifact.Bind(1, w->task_id)
          .Bind(2, w->attempt)
          .Bind(3, w->artifact.path())
          .Bind(4, w->artifact.size_bytes())
          .Bind(5, w->artifact.sha256());
      RETURN_IF_ERROR(artifact.Run());
    }
  }
  return tx.Commit();
}

absl::Status SqliteTaskStore::InsertLabels(const TaskRow& row, int64_t seq) {
  if (row.labels.empty()) return absl::OkStatus();
  if (insert_label_ == nullptr) {
    insert_label_ = std::make_unique<Stmt>(
        write_db_,
        "INSERT OR IGNORE INTO task_labels (key, value, seq) VALUES (?, ?, ?)");
  }
  for (const auto& [key, value] : row.labels) {
    insert_label_->Reset();
    RETURN_IF_ERROR(
        insert_label_->Bind(1, key).Bind(2, value).Bind(3, seq).Run());
  }
  return absl::OkStatus();
}

absl::StatusOr<Task> SqliteTaskStore::GetTask(const std::string& task_id) {
  ReadConnection db(this);
  Stmt get(db.get(), "SELECT task FROM tasks WHERE id = ?");
  get.Bind(1, task_id);
  if (get.Step()) return ParseStoredTask(get.Blob(0));
  RETURN_IF_ERROR(get.status());
  return absl::NotFoundError(absl::StrCat("task ", task_id, " not found"));
}

absl::StatusOr<Task> SqliteTaskStore::FindByRequestId(
    const std::string& tenant, const std::string& request_id) {
  ReadConnection db(this);
  Stmt find(db.get(),
            "SELECT task FROM tasks WHERE tenant = ? AND request_id = ?");
  find.Bind(1, tenant).Bind(2, request_id);
  if (find.Step()) return ParseStoredTask(find.Blob(0));
  RETURN_IF_ERROR(find.status());
  return absl::NotFoundError(
      absl::StrCat("request_id ", request_id, " not found"));
}

absl::StatusOr<ListTasksPage> SqliteTaskStore::ListTasks(
    const ListTasksQuery& query) {
  ASSIGN_OR_RETURN(const int64_t before, SeqOfPageToken(query.page_token));
  // With labels, the first one drives the scan (its rows, newest first) and
  // the others are looked up by (key, value, seq): only matching tasks are
  // read, however many others there are.
  std::string sql;
  if (query.labels.empty()) {
    sql = "SELECT t.seq, t.task FROM tasks t WHERE t.seq < ?1";
  } else {
    sql =
        "SELECT t.seq, t.task FROM task_labels l JOIN tasks t ON t.seq = l.seq "
        "WHERE l.key = ?3 AND l.value = ?4 AND l.seq < ?1";
    for (size_t i = 1; i < query.labels.size(); ++i) {
      absl::StrAppend(
          &sql, " AND EXISTS (SELECT 1 FROM task_labels m WHERE m.key = ?",
          3 + 2 * i, " AND m.value = ?", 4 + 2 * i, " AND m.seq = t.seq)");
    }
  }
  if (!query.tenant.empty()) absl::StrAppend(&sql, " AND t.tenant = ?2");
  if (!query.states.empty()) {
    std::vector<std::string> states;
    for (TaskState s : query.states) states.push_back(absl::StrCat(int{s}));
    absl::StrAppend(&sql, " AND t.state IN (", absl::StrJoin(states, ","), ")");
  }
  absl::StrAppend(
      &sql,
      query.labels.empty() ? " ORDER BY t.seq DESC" : " ORDER BY l.seq DESC",
      " LIMIT ", int64_t{query.page_size} + 1);

  ReadConnection db(this);
  Stmt list(db.get(), sql.c_str());
  list.Bind(1, before);
  if (!query.tenant.empty()) list.Bind(2, query.tenant);
  int param = 3;
  for (const auto& [key, value] : query.labels) {
    list.Bind(param, key).Bind(param + 1, value);
    param += 2;
  }
  ListTasksPage page;
  int64_t last_seq = 0;
  while (list.Step()) {
    if (static_cast<int>(page.tasks.size()) == query.page_size) {
      page.next_page_token = PageToken(last_seq);
      break;
    }
    ASSIGN_OR_RETURN(Task task, ParseStoredTask(list.Blob(1)));
    last_seq = list.Int(0);
    page.tasks.push_back(std::move(task));
  }
  RETURN_IF_ERROR(list.status());
  return page;
}

absl::StatusOr<std::vector<std::string>>
SqliteTaskStore::LoadActiveTaskBytes() {
  ReadConnection db(this);
  Stmt list(db.get(),
            "SELECT task FROM tasks WHERE state IN (?, ?, ?) ORDER BY seq");
  list.Bind(1, int64_t{crucible::v1::TASK_STATE_QUEUED})
      .Bind(2, int64_t{crucible::v1::TASK_STATE_LEASED})
      .Bind(3, int64_t{crucible::v1::TASK_STATE_RUNNING});
  std::vector<std::string> tasks;
  while (list.Step()) tasks.push_back(list.Blob(0));
  RETURN_IF_ERROR(list.status());
  return tasks;
}

absl::StatusOr<std::vector<std::string>>
SqliteTaskStore::LoadPendingCallbackBytes(int limit) {
  ReadConnection db(this);
  Stmt list(db.get(),
            "SELECT task FROM tasks WHERE callback_pending = 1 ORDER BY seq "
            "LIMIT ?");
  list.Bind(1, int64_t{limit});
  std::vector<std::string> tasks;
  while (list.Step()) tasks.push_back(list.Blob(0));
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
  ReadConnection db(this);
  Stmt read(db.get(), sql.c_str());
  read.Bind(1, task_id).Bind(2, attempt).Bind(3, offset);
  std::vector<OutputChunk> chunks;
  int64_t total = 0;
  while (total < max_bytes && read.Step()) {
    OutputChunk chunk;
    chunk.set_attempt(attempt);
    chunk.set_offset(read.Int(0));
    chunk.set_stream(static_cast<OutputStream>(read.Int(1)));
    chunk.set_data(read.Blob(2));
    CutChunkTo(offset, chunk);
    total += chunk.data().size();
    chunks.push_back(std::move(chunk));
  }
  RETURN_IF_ERROR(read.status());
  return chunks;
}

absl::StatusOr<StoredArtifact> SqliteTaskStore::FindArtifact(
    const std::string& task_id, const std::string& path, int32_t attempt) {
  ReadConnection db(this);
  Stmt find(db.get(),
            "SELECT attempt, size_bytes, sha256 FROM artifacts WHERE task_id = "
            "?1 AND path = ?2 AND (?3 = 0 OR attempt = ?3) ORDER BY attempt "
            "DESC LIMIT 1");
  find.Bind(1, task_id).Bind(2, path).Bind(3, attempt);
  if (find.Step()) {
    StoredArtifact found;
    found.attempt = static_cast<int32_t>(find.Int(0));
    found.info.set_path(path);
    found.info.set_status(crucible::v1::ARTIFACT_STATUS_COLLECTED);
    found.info.set_size_bytes(find.Int(1));
    found.info.set_sha256(find.Blob(2));
    return found;
  }
  RETURN_IF_ERROR(find.status());
  return absl::NotFoundError(
      absl::StrCat("task ", task_id, " has no collected artifact ", path,
                   attempt == 0 ? "" : absl::StrCat(" of attempt ", attempt)));
}

absl::StatusOr<std::vector<ArtifactChunk>> SqliteTaskStore::ReadArtifact(
    const std::string& task_id, int32_t attempt, const std::string& path,
    int64_t offset, int64_t max_bytes) {
  ReadConnection db(this);
  Stmt read(db.get(),
            "SELECT byte_offset, data FROM artifact_chunks WHERE task_id = ? "
            "AND attempt = ? AND path = ? AND byte_offset + LENGTH(data) > ? "
            "ORDER BY byte_offset");
  read.Bind(1, task_id).Bind(2, attempt).Bind(3, path).Bind(4, offset);
  std::vector<ArtifactChunk> chunks;
  int64_t total = 0;
  while (total < max_bytes && read.Step()) {
    ArtifactChunk chunk;
    chunk.set_path(path);
    chunk.set_offset(read.Int(0));
    chunk.set_data(read.Blob(1));
    CutChunkTo(offset, chunk);
    total += chunk.data().size();
    chunks.push_back(std::move(chunk));
  }
  RETURN_IF_ERROR(read.status());
  return chunks;
}

absl::StatusOr<int> SqliteTaskStore::PurgeEndedBefore(absl::Time cutoff,
                                                      int limit) {
  absl::MutexLock lock(&write_mu_);
  int purged = 0;
  Transaction tx(write_db_);
  absl::Status s = tx.status();
  if (s.ok()) s = PurgeLocked(cutoff, limit, purged);
  if (s.ok()) s = tx.Commit();
  if (!s.ok()) return FullError(s);  // rolled back
  return purged;
}

absl::Status SqliteTaskStore::PurgeLocked(absl::Time cutoff, int limit,
                                          int& purged) {
  std::vector<std::pair<int64_t, std::string>> old;
  {
    Stmt find(write_db_,
              "SELECT seq, id FROM tasks WHERE end_time_us IS NOT NULL AND "
              "end_time_us < ? LIMIT ?");
    find.Bind(1, absl::ToUnixMicros(cutoff)).Bind(2, int64_t{limit});
    while (find.Step()) old.emplace_back(find.Int(0), find.Blob(1));
    RETURN_IF_ERROR(find.status());
  }
  Stmt chunks(write_db_, "DELETE FROM output_chunks WHERE task_id = ?");
  Stmt artifact_chunks(write_db_,
                       "DELETE FROM artifact_chunks WHERE task_id = ?");
  Stmt artifacts(write_db_, "DELETE FROM artifacts WHERE task_id = ?");
  Stmt labels(write_db_, "DELETE FROM task_labels WHERE seq = ?");
  Stmt tasks(write_db_, "DELETE FROM tasks WHERE seq = ?");
  for (const auto& [seq, id] : old) {
    for (Stmt* by_task : {&chunks, &artifact_chunks, &artifacts}) {
      by_task->Reset();
      RETURN_IF_ERROR(by_task->Bind(1, id).Run());
    }
    labels.Reset();
    RETURN_IF_ERROR(labels.Bind(1, seq).Run());
    tasks.Reset();
    RETURN_IF_ERROR(tasks.Bind(1, seq).Run());
  }
  purged = static_cast<int>(old.size());
  return absl::OkStatus();
}

}  // namespace server
