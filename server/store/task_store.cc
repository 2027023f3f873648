#include "server/store/task_store.h"

#include <utility>

#include "common/proto_time.h"

namespace server {
namespace {

using crucible::v1::OutputChunk;
using crucible::v1::Task;

int64_t Micros(const google::protobuf::Timestamp& t) {
  return absl::ToUnixMicros(common::FromProtoTime(t));
}

}  // namespace

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

}  // namespace server
