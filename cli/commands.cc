// Dispatch, the unary commands (get, list, cancel) and the calls they share.
// submit.cc follows tasks; health.cc asks grpc.health.v1.
#include "cli/commands.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "common/grpc_status.h"
#include "common/task_state.h"

namespace cli {

Commands::Commands(Connection connection, Interrupts* interrupts,
                   Terminal terminal)
    : connection_(std::move(connection)),
      stub_(crucible::v1::TaskService::NewStub(connection_.channel())),
      interrupts_(interrupts),
      terminal_(terminal),
      output_(terminal.out, terminal.err, terminal.err_is_tty) {}

int Commands::Run(const Args& args) {
  switch (args.command) {
    case Command::kSubmit:
      return Submit(args);
    case Command::kGet:
      return Get(args);
    case Command::kList:
      return args.list.watch ? ListWatch(args) : List(args);
    case Command::kCancel:
      return Cancel(args);
    case Command::kLogs:
      return Logs(args);
    case Command::kWatch:
      return Watch(args);
    case Command::kHealth:
      return Health(args);
    case Command::kToken:
      return Token(args);
    case Command::kArtifacts:
      return Artifacts(args);
    case Command::kHelp:
      output_.Out(HelpText());
      return kExitOk;
  }
  return kExitUsage;
}

int Commands::Fail(const absl::Status& status) {
  output_.Err(ErrorLine(status) + "\n");
  return ExitCodeForStatus(status);
}

bool Commands::Interrupted() const {
  return interrupts_ != nullptr && interrupts_->interrupted();
}

absl::StatusOr<crucible::v1::Task> Commands::GetTask(
    const std::string& task_id) {
  std::unique_ptr<grpc::ClientContext> ctx = connection_.UnaryContext();
  crucible::v1::GetTaskRequest request;
  request.set_task_id(task_id);
  crucible::v1::GetTaskResponse response;
  grpc::Status status = stub_->GetTask(ctx.get(), request, &response);
  if (!status.ok()) return common::FromGrpcStatus(status);
  return response.task();
}

absl::StatusOr<crucible::v1::Task> Commands::CancelTask(
    const std::string& task_id, const std::string& reason) {
  std::unique_ptr<grpc::ClientContext> ctx = connection_.UnaryContext();
  crucible::v1::CancelTaskRequest request;
  request.set_task_id(task_id);
  request.set_reason(reason);
  crucible::v1::CancelTaskResponse response;
  grpc::Status status = stub_->CancelTask(ctx.get(), request, &response);
  if (!status.ok()) return common::FromGrpcStatus(status);
  return response.task();
}

int Commands::Get(const Args& args) {
  absl::StatusOr<Task> task = GetTask(args.task_id);
  if (!task.ok()) return Fail(task.status());
  output_.Out(args.output == OutputFormat::kJson
                  ? TaskToJson(*task) + "\n"
                  : FormatTask(*task, absl::Now()));
  return kExitOk;
}

absl::StatusOr<crucible::v1::ListTasksResponse> Commands::ListPage(
    const ListArgs& list, const std::string& token, int size) {
  crucible::v1::ListTasksRequest request;
  request.set_page_size(std::min(size, 1000));
  request.set_page_token(token);
  request.set_all_tenants(list.all_tenants);
  for (crucible::v1::TaskState s : list.states) request.add_states(s);
  for (const auto& [k, v] : list.labels) (*request.mutable_labels())[k] = v;
  std::unique_ptr<grpc::ClientContext> ctx = connection_.UnaryContext();
  crucible::v1::ListTasksResponse response;
  grpc::Status status = stub_->ListTasks(ctx.get(), request, &response);
  if (!status.ok()) return common::FromGrpcStatus(status);
  return response;
}

int Commands::List(const Args& args) {
  std::vector<Task> tasks;
  std::string token = args.list.page_token;
  do {
    absl::StatusOr<crucible::v1::ListTasksResponse> page = ListPage(
        args.list, token, args.list.limit - static_cast<int>(tasks.size()));
    if (!page.ok()) return Fail(page.status());
    for (const Task& t : page->tasks()) {
      if (static_cast<int>(tasks.size()) < args.list.limit) tasks.push_back(t);
    }
    token = page->next_page_token();
  } while (!token.empty() && static_cast<int>(tasks.size()) < args.list.limit);
  if (args.output == OutputFormat::kJson) {
    for (const Task& t : tasks) output_.Out(TaskToJson(t) + "\n");
  } else {
    output_.Out(FormatTable(tasks, absl::Now(), /*header=*/true,
                            /*tenant_column=*/args.list.all_tenants));
  }
  // More than --limit: say how to go on, apart from the listing itself.
  if (!token.empty())
    output_.Err(
        absl::StrCat("crucible: more tasks: --page-token ", token, "\n"));
  return kExitOk;
}

int Commands::ListWatch(const Args& args) {
  // ListTasks is the only way to see many tasks, so --watch polls it and
  // prints a task again when its state or attempt changed.
  std::map<std::string, std::pair<crucible::v1::TaskState, int>> seen;
  bool first = true;  // nothing printed yet
  do {
    absl::StatusOr<crucible::v1::ListTasksResponse> page =
        ListPage(args.list, args.list.page_token, args.list.limit);
    if (!page.ok()) return Fail(page.status());
    std::vector<Task> changed;
    // Oldest first, so that lines read in the order things happened.
    for (auto it = page->tasks().rbegin(); it != page->tasks().rend(); ++it) {
      std::pair<crucible::v1::TaskState, int> now = {it->state(),
                                                     it->attempt()};
      auto [where, inserted] = seen.emplace(it->id(), now);
      if (!inserted && where->second == now) continue;
      where->second = now;
      changed.push_back(*it);
    }
    if (args.output == OutputFormat::kJson) {
      for (const Task& t : changed) output_.Out(TaskToJson(t) + "\n");
    } else if (!changed.empty()) {
      // The header once, above the first rows.
      output_.Out(FormatTable(changed, absl::Now(), /*header=*/first,
                              /*tenant_column=*/args.list.all_tenants));
      first = false;
    }
  } while (interrupts_ == nullptr
               ? false
               : !interrupts_->WaitForInterrupt(args.list.interval));
  return kExitOk;
}

int Commands::Cancel(const Args& args) {
  absl::StatusOr<Task> task = CancelTask(args.task_id, args.cancel.reason);
  if (!task.ok()) return Fail(task.status());
  if (args.cancel.wait) {
    absl::StatusOr<Task> ended =
        WaitForEnd(args.task_id, /*if_interrupted=*/true);
    if (!ended.ok()) {
      if (Interrupted()) return kExitInterrupted;
      return Fail(ended.status());
    }
    output_.Out(args.output == OutputFormat::kJson
                    ? TaskToJson(*ended) + "\n"
                    : absl::StrCat("task ", ended->id(), " ",
                                   StateName(ended->state()), "\n"));
    return ExitCodeForTask(*ended);
  }
  if (args.output == OutputFormat::kJson) {
    output_.Out(TaskToJson(*task) + "\n");
  } else if (common::IsTerminal(task->state())) {
    output_.Out(
        absl::StrCat("task ", task->id(), " ", StateName(task->state()), "\n"));
  } else {
    output_.Out(absl::StrCat(
        "task ", task->id(), " ", StateName(task->state()),
        ": cancel requested; it ends once its container is gone\n"));
  }
  return kExitOk;
}

int Commands::Ended(const Task& task, OutputFormat format) {
  if (format == OutputFormat::kJson) {
    output_.Out(TaskToJson(task) + "\n");
  } else if (std::string line = EndingLine(task); !line.empty()) {
    output_.Err(line + "\n");
  }
  return ExitCodeForTask(task);
}

}  // namespace cli
