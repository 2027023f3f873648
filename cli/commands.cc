#include "cli/commands.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "common/grpc_status.h"
#include "common/proto_time.h"

namespace cli {
namespace {

void SetUnaryDeadline(grpc::ClientContext& ctx) {
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + Commands::kUnaryDeadline));
}

void WriteAll(FILE* f, const std::string& data) {
  fwrite(data.data(), 1, data.size(), f);
  fflush(f);
}

}  // namespace

Commands::Commands(std::shared_ptr<grpc::ChannelInterface> channel, FILE* out, FILE* err)
    : stub_(crucible::v1::TaskService::NewStub(std::move(channel))), out_(out), err_(err) {}

int Commands::Run(const Args& args) {
  switch (args.command) {
    case Command::kSubmit:
      return Submit(args);
    case Command::kGet:
      return Get(args);
    case Command::kList:
      return List(args);
    case Command::kHelp:
      WriteAll(out_, HelpText());
      return kExitOk;
  }
  return kExitUsage;
}

int Commands::Fail(const absl::Status& status) {
  WriteAll(err_, ErrorLine(status) + "\n");
  return ExitCodeForStatus(status);
}

int Commands::Submit(const Args& args) {
  const SubmitArgs& s = args.submit;
  crucible::v1::CreateTaskRequest request;
  crucible::v1::TaskSpec* spec = request.mutable_spec();
  spec->set_image(s.image);
  for (const std::string& word : s.command) spec->add_command(word);
  for (const auto& [k, v] : s.env) (*spec->mutable_env())[k] = v;
  for (const auto& [k, v] : s.labels) (*spec->mutable_labels())[k] = v;
  if (s.timeout.has_value()) *spec->mutable_timeout() = common::ToProtoDuration(*s.timeout);
  if (s.memory_bytes > 0) spec->mutable_resources()->set_memory_bytes(s.memory_bytes);
  spec->set_priority(s.priority);
  request.set_request_id(s.request_id);

  grpc::ClientContext ctx;
  SetUnaryDeadline(ctx);
  crucible::v1::CreateTaskResponse response;
  grpc::Status created = stub_->CreateTask(&ctx, request, &response);
  if (!created.ok()) return Fail(common::FromGrpcStatus(created));
  const std::string id = response.task().id();
  if (s.detach) {
    WriteAll(out_, id + "\n");
    return kExitOk;
  }
  if (absl::Status followed = FollowOutput(id); !followed.ok()) {
    WriteAll(err_, absl::StrCat("crucible: following the output of task ", id,
                                " failed; `crucible get ", id, "` shows it\n"));
    return Fail(followed);
  }
  absl::StatusOr<crucible::v1::Task> task = WaitForEnd(id);
  if (!task.ok()) return Fail(task.status());
  if (std::string line = EndingLine(*task); !line.empty()) WriteAll(err_, line + "\n");
  return ExitCodeForTask(*task);
}

absl::Status Commands::FollowOutput(const std::string& task_id) {
  // No deadline: a task may run for long. The call ends when the task ends,
  // or when the user interrupts the process.
  grpc::ClientContext ctx;
  crucible::v1::StreamTaskOutputRequest request;
  request.set_task_id(task_id);
  request.set_follow(true);
  std::unique_ptr<grpc::ClientReader<crucible::v1::StreamTaskOutputResponse>> reader =
      stub_->StreamTaskOutput(&ctx, request);
  crucible::v1::StreamTaskOutputResponse chunk;
  while (reader->Read(&chunk)) {
    FILE* to = chunk.chunk().stream() == crucible::v1::OUTPUT_STREAM_STDERR ? err_ : out_;
    WriteAll(to, chunk.chunk().data());
  }
  return common::FromGrpcStatus(reader->Finish());
}

absl::StatusOr<crucible::v1::Task> Commands::GetTask(const std::string& task_id) {
  grpc::ClientContext ctx;
  SetUnaryDeadline(ctx);
  crucible::v1::GetTaskRequest request;
  request.set_task_id(task_id);
  crucible::v1::GetTaskResponse response;
  grpc::Status status = stub_->GetTask(&ctx, request, &response);
  if (!status.ok()) return common::FromGrpcStatus(status);
  return response.task();
}

absl::StatusOr<crucible::v1::Task> Commands::WaitForEnd(const std::string& task_id) {
  absl::StatusOr<crucible::v1::Task> task = GetTask(task_id);
  if (!task.ok() || IsTerminal(task->state())) return task;
  // The output stream ended first: watch until the task is terminal.
  grpc::ClientContext ctx;
  crucible::v1::WatchTaskRequest request;
  request.set_task_id(task_id);
  std::unique_ptr<grpc::ClientReader<crucible::v1::WatchTaskResponse>> reader =
      stub_->WatchTask(&ctx, request);
  crucible::v1::WatchTaskResponse event;
  while (reader->Read(&event)) {
    if (IsTerminal(event.event().state())) {
      ctx.TryCancel();
      break;
    }
  }
  grpc::Status status = reader->Finish();
  if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
    return common::FromGrpcStatus(status);
  }
  return GetTask(task_id);
}

int Commands::Get(const Args& args) {
  absl::StatusOr<crucible::v1::Task> task = GetTask(args.task_id);
  if (!task.ok()) return Fail(task.status());
  WriteAll(out_, args.output == OutputFormat::kJson ? TaskToJson(*task) + "\n"
                                                    : FormatTask(*task, absl::Now()));
  return kExitOk;
}

int Commands::List(const Args& args) {
  std::vector<crucible::v1::Task> tasks;
  std::string page_token;
  do {
    crucible::v1::ListTasksRequest request;
    request.set_page_size(std::min(args.list.limit - static_cast<int>(tasks.size()), 1000));
    request.set_page_token(page_token);
    for (crucible::v1::TaskState s : args.list.states) request.add_states(s);
    for (const auto& [k, v] : args.list.labels) (*request.mutable_labels())[k] = v;
    grpc::ClientContext ctx;
    SetUnaryDeadline(ctx);
    crucible::v1::ListTasksResponse response;
    grpc::Status status = stub_->ListTasks(&ctx, request, &response);
    if (!status.ok()) return Fail(common::FromGrpcStatus(status));
    for (const crucible::v1::Task& t : response.tasks()) {
      if (static_cast<int>(tasks.size()) < args.list.limit) tasks.push_back(t);
    }
    page_token = response.next_page_token();
  } while (!page_token.empty() && static_cast<int>(tasks.size()) < args.list.limit);
  if (args.output == OutputFormat::kJson) {
    for (const crucible::v1::Task& t : tasks) WriteAll(out_, TaskToJson(t) + "\n");
  } else {
    WriteAll(out_, FormatTable(tasks, absl::Now()));
  }
  return kExitOk;
}

}  // namespace cli
