#include "server/store/pg_task_store.h"

#include <cstdint>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "glog/logging.h"
#include "server/store/pg_schema.h"

namespace server {
namespace {

using crucible::v1::ArtifactChunk;
using crucible::v1::OutputChunk;
using crucible::v1::OutputStream;
using crucible::v1::Task;
using crucible::v1::TaskState;

// The callback_pending column: 1 while a completion callback is owed.
std::optional<int64_t> CallbackPending(const TaskRow& row) {
  if (!row.callback_pending) return std::nullopt;
  return 1;
}

absl::Status FullError(const absl::Status& s) {
  if (!absl::IsResourceExhausted(s)) return s;
  return absl::ResourceExhaustedError(absl::StrCat(
      "the task store is full: PostgreSQL has no space left; writes wait and "
      "resume by themselves once space is freed (",
      s.message(), ")"));
}

std::optional<int64_t> MicrosOrNull(absl::Time t) {
  if (t == absl::InfiniteFuture()) return std::nullopt;
  return absl::ToUnixMicros(t);
}

// The session settings of the store's connections.
std::string Settings(const PgTaskStoreOptions& o) {
  return absl::StrCat("-c idle_in_transaction_session_timeout=",
                      absl::ToInt64Milliseconds(o.idle_in_transaction_timeout),
                      " -c synchronous_commit=on");
}

}  // namespace

int PgTaskStore::CurrentSchemaVersion() { return PgSchemaVersion(); }

absl::StatusOr<std::unique_ptr<PgTaskStore>> PgTaskStore::Open(
    const PgTaskStoreOptions& options) {
  if (options.read_connections < 1) {
    return absl::InvalidArgumentError("store: read_connections must be >= 1");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> writer,
                   PgConnection::Connect(options.uri, Settings(options)));
  RETURN_IF_ERROR(MigratePgSchema(*writer));
  std::vector<std::unique_ptr<PgConnection>> readers;
  for (int i = 0; i < options.read_connections; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> r,
                     PgConnection::Connect(options.uri, Settings(options)));
    readers.push_back(std::move(r));
  }
  return std::unique_ptr<PgTaskStore>(
      new PgTaskStore(options, std::move(writer), std::move(readers)));
}

PgTaskStore::PgTaskStore(const PgTaskStoreOptions& options,
                         std::unique_ptr<PgConnection> writer,
                         std::vector<std::unique_ptr<PgConnection>> readers)
    : options_(options),
      writer_(std::move(writer)),
      readers_(std::move(readers)) {
  for (const auto& r : readers_) idle_reads_.push_back(r.get());
}

PgTaskStore::~PgTaskStore() {
  absl::MutexLock lock(&read_mu_);
  CHECK_EQ(idle_reads_.size(), readers_.size())
      << "store destroyed during a read";
}

void PgTaskStore::SetFence(PgFence fence) {
  absl::MutexLock lock(&write_mu_);
  fence_ = std::move(fence);
}

PgConnection* PgTaskStore::AcquireRead() {
  absl::MutexLock lock(&read_mu_);
  read_mu_.Await(absl::Condition(this, &PgTaskStore::ReadFree));
  PgConnection* c = idle_reads_.back();
  idle_reads_.pop_back();
  return c;
}

void PgTaskStore::ReleaseRead(PgConnection* c) {
  absl::MutexLock lock(&read_mu_);
  idle_reads_.push_back(c);
}

template <typename T, typename F>
absl::StatusOr<T> PgTaskStore::Read(F read) {
  PgConnection* c = AcquireRead();
  absl::StatusOr<T> out = read(*c);
  if (absl::IsUnavailable(out.status()) && c->EnsureConnected()) {
    out = read(*c);
  }
  ReleaseRead(c);
  return out;
}

absl::Status PgTaskStore::CheckFence() {
  if (!fence_.has_value()) return absl::OkStatus();
  ASSIGN_OR_RETURN(
      PgResult lease,
      writer_->Exec("SELECT holder, epoch FROM crucible_leader WHERE id = 1 "
                    "FOR SHARE",
                    PgParams()));
  if (lease.rows() == 1 && lease.Bytes(0, 0) == fence_->holder &&
      lease.Int64(0, 1) == fence_->epoch) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "fenced: this server (", fence_->holder, ", epoch ", fence_->epoch,
      ") no longer holds the leader lease",
      lease.rows() == 1
          ? absl::StrCat("; ", lease.Bytes(0, 0), " holds it (epoch ",
                         lease.Int64(0, 1), ")")
          : ""));
}

absl::Status PgTaskStore::Commit(absl::Span<const TaskWrite> writes) {
  if (writes.empty()) return absl::OkStatus();
  absl::MutexLock lock(&write_mu_);
  if (!writer_->EnsureConnected()) {
    return absl::UnavailableError("PostgreSQL: the connection is lost");
  }
  return FullError(ApplyBatch(writes));
}

absl::Status PgTaskStore::ApplyBatch(absl::Span<const TaskWrite> writes) {
  const FoldedBatch batch = FoldBatch(writes);
  // One pipeline: the transaction, the fence and the whole batch in one
  // round trip.
  std::vector<PgStatement> statements;
  statements.reserve(batch.rows.size() + batch.outputs.size() +
                     batch.artifact_chunks.size() + batch.artifacts.size() + 3);
  statements.push_back({.sql = "BEGIN"});
  if (fence_.has_value()) {
    // Locks the lease row (a takeover waits for this commit) and fails
    // with a division by zero unless it still names this holder and epoch.
    PgStatement& st = statements.emplace_back();
    st.sql =
        "SELECT 1 / (SELECT count(*)::integer FROM (SELECT 1 FROM "
        "crucible_leader WHERE id = 1 AND holder = $1 AND epoch = $2 FOR "
        "SHARE) AS held)";
    st.name = "crucible_fence";
    st.params.Text(fence_->holder).Int64(fence_->epoch);
  }
  constexpr char kInsert[] =
      "INSERT INTO tasks (id, tenant, request_id, create_time_us, priority, "
      "state, end_time_us, task, callback_pending) VALUES ($1, $2, $3, $4, $5, "
      "$6, $7, $8, $9) ON CONFLICT DO NOTHING";
  for (const FoldedBatch::Row& row : batch.rows) {
    const TaskRow& t = *row.first;
    const TaskRow& now = *row.last;
    PgStatement& st = statements.emplace_back();
    if (row.insert) {
      st.params.Text(t.id)
          .Text(t.tenant)
          .TextOrNull(t.request_id)
          .Int64(t.create_time_us)
          .Int32(t.priority)
          .Int32(now.state)
          .Int64OrNull(now.end_time_us)
          .Bytes(now.blob)
          .Int64OrNull(CallbackPending(now));
      if (t.labels.empty()) {
        st.sql = kInsert;
        st.name = "crucible_insert_task";
      } else {
        // Labels only on a new row (not an ignored insert of a taken id or
        // request_id), with the seq it got.
        std::vector<std::string> keys, values;
        for (const auto& [key, value] : t.labels) {
          keys.push_back(key);
          values.push_back(value);
        }
        st.params.TextArray(keys).TextArray(values);
        st.sql = absl::StrCat(
            "WITH t AS (", kInsert,
            " RETURNING seq) INSERT INTO task_labels (key, value, seq) SELECT "
            "l.k, l.v, t.seq FROM t, unnest($10::text[], $11::text[]) AS l(k, "
            "v) ON CONFLICT DO NOTHING");
        st.name = "crucible_insert_labelled_task";
      }
    } else {
      st.sql =
          "UPDATE tasks SET state = $1, end_time_us = $2, task = $3, "
          "callback_pending = $4 WHERE id = $5";
      st.name = "crucible_update_task";
      st.params.Int32(now.state)
          .Int64OrNull(now.end_time_us)
          .Bytes(now.blob)
          .Int64OrNull(CallbackPending(now))
          .Text(t.id);
    }
  }
  for (const TaskWrite* w : batch.outputs) {
    PgStatement& st = statements.emplace_back();
    st.sql =
        "INSERT INTO output_chunks (task_id, attempt, byte_offset, stream, "
        "data) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
    st.name = "crucible_insert_output";
    st.params.Text(w->task_id)
        .Int32(w->chunk.attempt())
        .Int64(w->chunk.offset())
        .Int32(static_cast<int32_t>(w->chunk.stream()))
        .Bytes(w->chunk.data());
  }
  for (const TaskWrite* w : batch.artifact_chunks) {
    PgStatement& st = statements.emplace_back();
    st.sql =
        "INSERT INTO artifact_chunks (task_id, attempt, path, byte_offset, "
        "data) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
    st.name = "crucible_insert_artifact_chunk";
    st.params.Text(w->task_id)
        .Int32(w->attempt)
        .Text(w->artifact_chunk.path())
        .Int64(w->artifact_chunk.offset())
        .Bytes(w->artifact_chunk.data());
  }
  for (const TaskWrite* w : batch.artifacts) {
    PgStatement& st = statements.emplace_back();
    st.sql =
        "INSERT INTO artifacts (task_id, attempt, path, size_bytes, sha256) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
    st.name = "crucible_insert_artifact";
    st.params.Text(w->task_id)
        .Int32(w->attempt)
        .Text(w->artifact.path())
        .Int64(w->artifact.size_bytes())
        .Text(w->artifact.sha256());
  }
  statements.push_back({.sql = "COMMIT"});
  absl::Status s = writer_->ExecPipeline(statements);
  if (s.ok()) return s;
  // Whatever ran of it is rolled back (statements after an error in a
  // pipeline are not run, COMMIT included).
  (void)writer_->ExecScript("ROLLBACK");
  if (fence_.has_value() && absl::StrContains(s.message(), "SQLSTATE 22012")) {
    absl::Status fenced = CheckFence();  // says who holds the lease now
    return fenced.ok() ? s : fenced;
  }
  return s;
}

absl::StatusOr<Task> PgTaskStore::GetTask(const std::string& task_id) {
  return Read<Task>([&](PgConnection& c) -> absl::StatusOr<Task> {
    ASSIGN_OR_RETURN(PgResult r, c.Exec("SELECT task FROM tasks WHERE id = $1",
                                        PgParams().Text(task_id)));
    if (r.rows() == 0) {
      return absl::NotFoundError(absl::StrCat("task ", task_id, " not found"));
    }
    return ParseStoredTask(r.Bytes(0, 0));
  });
}

absl::StatusOr<Task> PgTaskStore::FindByRequestId(
    const std::string& tenant, const std::string& request_id) {
  return Read<Task>([&](PgConnection& c) -> absl::StatusOr<Task> {
    ASSIGN_OR_RETURN(
        PgResult r,
        c.Exec("SELECT task FROM tasks WHERE tenant = $1 AND request_id = $2",
               PgParams().Text(tenant).Text(request_id)));
    if (r.rows() == 0) {
      return absl::NotFoundError(
          absl::StrCat("request_id ", request_id, " not found"));
    }
    return ParseStoredTask(r.Bytes(0, 0));
  });
}

absl::StatusOr<ListTasksPage> PgTaskStore::ListTasks(
    const ListTasksQuery& query) {
  ASSIGN_OR_RETURN(const int64_t before, SeqOfPageToken(query.page_token));
  // As in SqliteTaskStore::ListTasks: with labels, the first one drives the
  // scan and the others are looked up by (key, value, seq).
  PgParams params;
  int n = 0;
  auto next = [&n] { return absl::StrCat("$", ++n); };
  std::string sql;
  params.Int64(before);
  if (query.labels.empty()) {
    sql = absl::StrCat("SELECT t.seq, t.task FROM tasks t WHERE t.seq < ",
                       next());
  } else {
    const std::string seq = next();
    auto it = query.labels.begin();
    params.Text(it->first).Text(it->second);
    const std::string key = next(), value = next();
    sql = absl::StrCat(
        "SELECT t.seq, t.task FROM task_labels l JOIN tasks t ON t.seq = l.seq "
        "WHERE l.key = ",
        key, " AND l.value = ", value, " AND l.seq < ", seq);
    for (++it; it != query.labels.end(); ++it) {
      params.Text(it->first).Text(it->second);
      const std::string k = next(), v = next();
      absl::StrAppend(
          &sql, " AND EXISTS (SELECT 1 FROM task_labels m WHERE m.key = ", k,
          " AND m.value = ", v, " AND m.seq = t.seq)");
    }
  }
  if (!query.tenant.empty()) {
    params.Text(query.tenant);
    absl::StrAppend(&sql, " AND t.tenant = ", next());
  }
  if (!query.states.empty()) {
    std::vector<std::string> states;
    for (TaskState s : query.states) states.push_back(absl::StrCat(int{s}));
    absl::StrAppend(&sql, " AND t.state IN (", absl::StrJoin(states, ","), ")");
  }
  absl::StrAppend(
      &sql,
      query.labels.empty() ? " ORDER BY t.seq DESC" : " ORDER BY l.seq DESC",
      " LIMIT ", int64_t{query.page_size} + 1);
  return Read<ListTasksPage>(
      [&](PgConnection& c) -> absl::StatusOr<ListTasksPage> {
        ASSIGN_OR_RETURN(PgResult r, c.Exec(sql, params));
        ListTasksPage page;
        int64_t last_seq = 0;
        for (int i = 0; i < r.rows(); ++i) {
          if (static_cast<int>(page.tasks.size()) == query.page_size) {
            page.next_page_token = PageToken(last_seq);
            break;
          }
          ASSIGN_OR_RETURN(Task task, ParseStoredTask(r.Bytes(i, 1)));
          last_seq = r.Int64(i, 0);
          page.tasks.push_back(std::move(task));
        }
        return page;
      });
}

absl::StatusOr<std::vector<std::string>> PgTaskStore::LoadActiveTaskBytes() {
  return Read<std::vector<std::string>>(
      [&](PgConnection& c) -> absl::StatusOr<std::vector<std::string>> {
        ASSIGN_OR_RETURN(
            PgResult r,
            c.Exec("SELECT task FROM tasks WHERE state IN ($1, $2, $3) "
                   "ORDER BY seq",
                   PgParams()
                       .Int32(crucible::v1::TASK_STATE_QUEUED)
                       .Int32(crucible::v1::TASK_STATE_LEASED)
                       .Int32(crucible::v1::TASK_STATE_RUNNING)));
        std::vector<std::string> tasks;
        tasks.reserve(r.rows());
        for (int i = 0; i < r.rows(); ++i) tasks.push_back(r.Bytes(i, 0));
        return tasks;
      });
}

absl::StatusOr<std::vector<std::string>> PgTaskStore::LoadPendingCallbackBytes(
    int limit) {
  return Read<std::vector<std::string>>(
      [&](PgConnection& c) -> absl::StatusOr<std::vector<std::string>> {
        ASSIGN_OR_RETURN(
            PgResult r,
            c.Exec("SELECT task FROM tasks WHERE callback_pending = 1 "
                   "ORDER BY seq LIMIT $1",
                   PgParams().Int32(limit)));
        std::vector<std::string> tasks;
        tasks.reserve(r.rows());
        for (int i = 0; i < r.rows(); ++i) tasks.push_back(r.Bytes(i, 0));
        return tasks;
      });
}

absl::StatusOr<std::vector<OutputChunk>> PgTaskStore::ReadOutput(
    const std::string& task_id, int32_t attempt, int64_t offset,
    OutputStream stream, int64_t max_bytes) {
  std::string sql =
      "SELECT byte_offset, stream, data FROM output_chunks WHERE task_id = $1 "
      "AND attempt = $2 AND byte_offset + length(data) > $3";
  if (stream != crucible::v1::OUTPUT_STREAM_UNSPECIFIED) {
    absl::StrAppend(&sql, " AND stream = ", int{stream});
  }
  absl::StrAppend(&sql, " ORDER BY byte_offset");
  return Read<std::vector<OutputChunk>>(
      [&](PgConnection& c) -> absl::StatusOr<std::vector<OutputChunk>> {
        // A cursor would bound what is fetched; output is read in pages of
        // max_bytes, so whole rows up to that are fine.
        ASSIGN_OR_RETURN(
            PgResult r,
            c.Exec(sql, PgParams().Text(task_id).Int32(attempt).Int64(offset)));
        std::vector<OutputChunk> chunks;
        int64_t total = 0;
        for (int i = 0; i < r.rows() && total < max_bytes; ++i) {
          OutputChunk chunk;
          chunk.set_attempt(attempt);
          chunk.set_offset(r.Int64(i, 0));
          chunk.set_stream(static_cast<OutputStream>(r.Int32(i, 1)));
          chunk.set_data(r.Bytes(i, 2));
          CutChunkTo(offset, chunk);
          total += chunk.data().size();
          chunks.push_back(std::move(chunk));
        }
        return chunks;
      });
}

absl::StatusOr<StoredArtifact> PgTaskStore::FindArtifact(
    const std::string& task_id, const std::string& path, int32_t attempt) {
  return Read<StoredArtifact>(
      [&](PgConnection& c) -> absl::StatusOr<StoredArtifact> {
        ASSIGN_OR_RETURN(
            PgResult r,
            c.Exec("SELECT attempt, size_bytes, sha256 FROM artifacts WHERE "
                   "task_id = $1 AND path = $2 AND ($3 = 0 OR attempt = $3) "
                   "ORDER BY attempt DESC LIMIT 1",
                   PgParams().Text(task_id).Text(path).Int32(attempt)));
        if (r.rows() == 0) {
          return absl::NotFoundError(absl::StrCat(
              "task ", task_id, " has no collected artifact ", path,
              attempt == 0 ? "" : absl::StrCat(" of attempt ", attempt)));
        }
        StoredArtifact found;
        found.attempt = r.Int32(0, 0);
        found.info.set_path(path);
        found.info.set_status(crucible::v1::ARTIFACT_STATUS_COLLECTED);
        found.info.set_size_bytes(r.Int64(0, 1));
        found.info.set_sha256(r.Bytes(0, 2));
        return found;
      });
}

absl::StatusOr<std::vector<ArtifactChunk>> PgTaskStore::ReadArtifact(
    const std::string& task_id, int32_t attempt, const std::string& path,
    int64_t offset, int64_t max_bytes) {
  return Read<std::vector<ArtifactChunk>>(
      [&](PgConnection& c) -> absl::StatusOr<std::vector<ArtifactChunk>> {
        // A page of rows, not the whole file: the caller reads on from
        // where the page ended (executors send 64 KiB chunks).
        ASSIGN_OR_RETURN(
            PgResult r,
            c.Exec("SELECT byte_offset, data FROM artifact_chunks WHERE "
                   "task_id = $1 AND attempt = $2 AND path = $3 AND "
                   "byte_offset + length(data) > $4 ORDER BY byte_offset "
                   "LIMIT 16",
                   PgParams().Text(task_id).Int32(attempt).Text(path).Int64(
                       offset)));
        std::vector<ArtifactChunk> chunks;
        int64_t total = 0;
        for (int i = 0; i < r.rows() && total < max_bytes; ++i) {
          ArtifactChunk chunk;
          chunk.set_path(path);
          chunk.set_offset(r.Int64(i, 0));
          chunk.set_data(r.Bytes(i, 1));
          CutChunkTo(offset, chunk);
          total += chunk.data().size();
          chunks.push_back(std::move(chunk));
        }
        return chunks;
      });
}

absl::StatusOr<int> PgTaskStore::PurgeEndedBefore(absl::Time cutoff,
                                                  int limit) {
  absl::MutexLock lock(&write_mu_);
  auto purge =
      [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) -> absl::StatusOr<int> {
    PgTransaction tx(*writer_);
    RETURN_IF_ERROR(tx.status());
    RETURN_IF_ERROR(CheckFence());
    ASSIGN_OR_RETURN(
        PgResult old,
        writer_->Exec(
            "DELETE FROM tasks WHERE seq IN (SELECT seq FROM tasks "
            "WHERE end_time_us IS NOT NULL AND end_time_us < $1 "
            "LIMIT $2) RETURNING seq, id",
            PgParams().Int64(absl::ToUnixMicros(cutoff)).Int64(limit)));
    for (int i = 0; i < old.rows(); ++i) {
      for (const char* sql : {"DELETE FROM output_chunks WHERE task_id = $1",
                              "DELETE FROM artifact_chunks WHERE task_id = $1",
                              "DELETE FROM artifacts WHERE task_id = $1"}) {
        RETURN_IF_ERROR(
            writer_->Exec(sql, PgParams().Text(old.Bytes(i, 1))).status());
      }
      RETURN_IF_ERROR(writer_
                          ->Exec("DELETE FROM task_labels WHERE seq = $1",
                                 PgParams().Int64(old.Int64(i, 0)))
                          .status());
    }
    RETURN_IF_ERROR(tx.Commit());
    return old.rows();
  };
  absl::StatusOr<int> purged = purge();
  if (!purged.ok()) return FullError(purged.status());
  return purged;
}

absl::Status PgTaskStore::Insert(const auth::TokenRecord& token) {
  absl::MutexLock lock(&write_mu_);
  PgTransaction tx(*writer_);
  RETURN_IF_ERROR(tx.status());
  RETURN_IF_ERROR(CheckFence());
  absl::Status s =
      writer_
          ->Exec(
              "INSERT INTO api_tokens (id, name, tenant, role, "
              "secret_sha256, created_by, create_time_us, expire_time_us) "
              "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
              PgParams()
                  .Text(token.id)
                  .Text(token.name)
                  .Text(token.tenant)
                  .Int32(static_cast<int32_t>(token.role))
                  .Bytes(token.secret_sha256)
                  .Text(token.created_by)
                  .Int64(absl::ToUnixMicros(token.create_time))
                  .Int64OrNull(MicrosOrNull(token.expire_time)))
          .status();
  if (absl::IsAlreadyExists(s)) {
    return absl::AlreadyExistsError(
        absl::StrCat("token id ", token.id, " exists"));
  }
  if (!s.ok()) return FullError(s);
  return FullError(tx.Commit());
}

absl::StatusOr<std::vector<auth::TokenRecord>> PgTaskStore::LoadAll() {
  return Read<std::vector<auth::TokenRecord>>(
      [&](PgConnection& c) -> absl::StatusOr<std::vector<auth::TokenRecord>> {
        ASSIGN_OR_RETURN(
            PgResult r,
            c.Exec("SELECT id, name, tenant, role, secret_sha256, created_by, "
                   "create_time_us, expire_time_us, revoke_time_us FROM "
                   "api_tokens ORDER BY create_time_us DESC, id"));
        std::vector<auth::TokenRecord> tokens;
        for (int i = 0; i < r.rows(); ++i) {
          auth::TokenRecord& t = tokens.emplace_back();
          t.id = r.Bytes(i, 0);
          t.name = r.Bytes(i, 1);
          t.tenant = r.Bytes(i, 2);
          t.role = static_cast<crucible::v1::Role>(r.Int32(i, 3));
          t.secret_sha256 = r.Bytes(i, 4);
          t.created_by = r.Bytes(i, 5);
          t.create_time = absl::FromUnixMicros(r.Int64(i, 6));
          if (!r.IsNull(i, 7))
            t.expire_time = absl::FromUnixMicros(r.Int64(i, 7));
          if (!r.IsNull(i, 8))
            t.revoke_time = absl::FromUnixMicros(r.Int64(i, 8));
        }
        return tokens;
      });
}

absl::Status PgTaskStore::Revoke(const std::string& id, absl::Time when) {
  absl::MutexLock lock(&write_mu_);
  PgTransaction tx(*writer_);
  RETURN_IF_ERROR(tx.status());
  RETURN_IF_ERROR(CheckFence());
  ASSIGN_OR_RETURN(PgResult known,
                   writer_->Exec("SELECT 1 FROM api_tokens WHERE id = $1",
                                 PgParams().Text(id)));
  if (known.rows() == 0) {
    return absl::NotFoundError(absl::StrCat("no token ", id));
  }
  RETURN_IF_ERROR(FullError(
      writer_
          ->Exec("UPDATE api_tokens SET revoke_time_us = $1 WHERE id = $2 AND "
                 "revoke_time_us IS NULL",
                 PgParams().Int64(absl::ToUnixMicros(when)).Text(id))
          .status()));
  return FullError(tx.Commit());
}

}  // namespace server
