#include "server/store/task_store.h"

#include <cstdint>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "common/task_state.h"

namespace server {
namespace {

using crucible::v1::OutputChunk;
using crucible::v1::Task;

int64_t Micros(const google::protobuf::Timestamp& t) {
  return absl::ToUnixMicros(common::FromProtoTime(t));
}

constexpr absl::string_view kPageTokenPrefix = "v1:seq:";

}  // namespace

FoldedBatch FoldBatch(absl::Span<const TaskWrite> writes) {
  FoldedBatch batch;
  absl::flat_hash_map<absl::string_view, size_t> row_of;
  for (const TaskWrite& w : writes) {
    switch (w.kind) {
      case TaskWrite::Kind::kOutput:
        batch.outputs.push_back(&w);
        continue;
      case TaskWrite::Kind::kArtifactChunk:
        batch.artifact_chunks.push_back(&w);
        continue;
      case TaskWrite::Kind::kArtifact:
        batch.artifacts.push_back(&w);
        continue;
      case TaskWrite::Kind::kInsert:
      case TaskWrite::Kind::kUpdate:
        break;
    }
    auto [it, fresh] = row_of.try_emplace(w.row.id, batch.rows.size());
    if (fresh) {
      batch.rows.push_back({.insert = w.kind == TaskWrite::Kind::kInsert,
                            .first = &w.row,
                            .last = &w.row});
    } else {
      batch.rows[it->second].last = &w.row;
    }
  }
  return batch;
}

std::string PageToken(int64_t seq) {
  return absl::WebSafeBase64Escape(absl::StrCat(kPageTokenPrefix, seq));
}

absl::StatusOr<int64_t> SeqOfPageToken(const std::string& token) {
  if (token.empty()) return INT64_MAX;
  std::string decoded;
  absl::string_view rest;
  if (absl::WebSafeBase64Unescape(token, &decoded)) rest = decoded;
  int64_t seq = 0;
  if (!absl::ConsumePrefix(&rest, kPageTokenPrefix) ||
      !absl::SimpleAtoi(rest, &seq)) {
    return absl::InvalidArgumentError("page_token: malformed");
  }
  return seq;
}

namespace {

template <typename Chunk>
void CutTo(int64_t offset, Chunk& chunk) {
  if (chunk.offset() >= offset) return;
  chunk.mutable_data()->erase(0, offset - chunk.offset());
  chunk.set_offset(offset);
}

}  // namespace

void CutChunkTo(int64_t offset, OutputChunk& chunk) { CutTo(offset, chunk); }
void CutChunkTo(int64_t offset, crucible::v1::ArtifactChunk& chunk) {
  CutTo(offset, chunk);
}

absl::StatusOr<Task> ParseStoredTask(const std::string& bytes) {
  Task task;
  if (!task.ParseFromString(bytes)) {
    return absl::DataLossError("stored task does not parse");
  }
  return task;
}

TaskRow TaskRow::Of(const Task& task) {
  TaskRow row;
  row.id = task.id();
  row.state = task.state();
  if (task.has_end_time()) row.end_time_us = Micros(task.end_time());
  row.callback_pending =
      common::IsTerminal(task.state()) && task.has_callback() &&
      task.callback().state() == crucible::v1::CALLBACK_STATE_PENDING;
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
  w.row.labels.assign(task.spec().labels().begin(), task.spec().labels().end());
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

TaskWrite TaskWrite::ArtifactChunk(std::string task_id, int32_t attempt,
                                   crucible::v1::ArtifactChunk chunk) {
  TaskWrite w;
  w.kind = Kind::kArtifactChunk;
  w.task_id = std::move(task_id);
  w.attempt = attempt;
  w.artifact_chunk = std::move(chunk);
  return w;
}

TaskWrite TaskWrite::Artifact(std::string task_id, int32_t attempt,
                              crucible::v1::ArtifactInfo info) {
  TaskWrite w;
  w.kind = Kind::kArtifact;
  w.task_id = std::move(task_id);
  w.attempt = attempt;
  w.artifact = std::move(info);
  return w;
}

absl::StatusOr<std::vector<crucible::v1::Task>> TaskStore::LoadActiveTasks() {
  ASSIGN_OR_RETURN(std::vector<std::string> stored, LoadActiveTaskBytes());
  std::vector<crucible::v1::Task> tasks;
  tasks.reserve(stored.size());
  for (const std::string& bytes : stored) {
    ASSIGN_OR_RETURN(crucible::v1::Task task, ParseStoredTask(bytes));
    tasks.push_back(std::move(task));
  }
  return tasks;
}

}  // namespace server
