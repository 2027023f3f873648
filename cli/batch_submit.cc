// `crucible submit --from-file`: many tasks from a file, with
// BatchCreateTasks.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "cli/task_file.h"
#include "common/grpc_status.h"
#include "common/retry.h"

namespace cli {
namespace {

absl::StatusOr<std::string> ReadTaskFile(const std::string& path, FILE* in) {
  std::string data;
  if (path == "-") {
    char buffer[1 << 16];
    size_t n;
    while ((n = fread(buffer, 1, sizeof(buffer), in)) > 0)
      data.append(buffer, n);
    if (ferror(in))
      return absl::InvalidArgumentError("cannot read this process's stdin");
    return data;
  }
  std::ifstream file(path, std::ios::binary);
  if (!file)
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read --from-file ", path));
  std::stringstream ss;
  ss << file.rdbuf();
  return ss.str();
}

}  // namespace

int Commands::SubmitFromFile(const Args& args) {
  absl::StatusOr<std::string> content =
      ReadTaskFile(*args.submit.from_file, terminal_.in);
  if (!content.ok()) {
    output_.Err(absl::StrCat("crucible: ", content.status().message(), "\n"));
    return kExitUsage;
  }
  const TaskFile file = ParseTaskFile(*content, args.submit.request_id);
  // A bad line is reported and skipped; the others are submitted. Reports
  // go in line order, among the server's refusals.
  size_t said = 0;  // of file.errors
  auto say_bad_lines_before = [&](int line) {
    for (; said < file.errors.size() && file.errors[said].first < line;
         ++said) {
      output_.Err(absl::StrCat("line ", file.errors[said].first, ": ",
                               file.errors[said].second, "\n"));
    }
  };
  int exit_code = file.errors.empty() ? kExitOk : kExitError;
  const size_t total = file.tasks.size();
  size_t done = 0;
  for (const auto& [begin, end] : SplitBatches(file.tasks)) {
    output_.SetStatus(
        absl::StrCat("crucible: submitted ", done, "/", total, " tasks"));
    crucible::v1::BatchCreateTasksRequest request;
    for (size_t i = begin; i < end; ++i) {
      *request.add_requests() = file.tasks[i].request;
    }
    crucible::v1::BatchCreateTasksResponse response;
    absl::Status sent = BatchCreateTasks(request, &response);
    if (sent.ok() && response.results_size() != static_cast<int>(end - begin)) {
      sent = absl::InternalError(
          absl::StrCat("the server answered ", response.results_size(),
                       " results for ", end - begin, " tasks"));
    }
    if (!sent.ok()) {
      // Nothing more goes: the lines not answered are said, and a run of
      // the same file again makes only what this one did not.
      output_.SetStatus("");
      say_bad_lines_before(file.tasks[begin].line);
      output_.Err(absl::StrCat("lines ", file.tasks[begin].line, "-",
                               file.tasks.back().line, ": not submitted\n"));
      return Fail(sent);
    }
    std::string created;  // one write per batch, not one per task
    for (size_t i = begin; i < end; ++i) {
      say_bad_lines_before(file.tasks[i].line);
      const crucible::v1::BatchCreateTaskResult& result =
          response.results(static_cast<int>(i - begin));
      if (result.has_task()) {
        absl::StrAppend(&created,
                        args.output == OutputFormat::kJson
                            ? TaskToJson(result.task())
                            : result.task().id(),
                        "\n");
      } else {
        const absl::Status refused(
            static_cast<absl::StatusCode>(result.error().code()),
            result.error().message());
        output_.Err(absl::StrCat("line ", file.tasks[i].line, ": ",
                                 absl::StatusCodeToString(refused.code()), ": ",
                                 refused.message(), "\n"));
        exit_code = kExitError;
      }
    }
    if (!created.empty()) output_.Out(created);
    done = end;
    if (Interrupted()) {
      output_.SetStatus("");
      if (end < total) {
        output_.Err(absl::StrCat("crucible: interrupted; lines ",
                                 file.tasks[end].line, "-",
                                 file.tasks.back().line, " not submitted\n"));
      }
      return kExitInterrupted;
    }
  }
  output_.SetStatus("");
  say_bad_lines_before(std::numeric_limits<int>::max());
  return exit_code;
}

absl::Status Commands::BatchCreateTasks(
    const crucible::v1::BatchCreateTasksRequest& request,
    crucible::v1::BatchCreateTasksResponse* response) {
  // As CreateTask: every item carries its request_id, so a batch whose
  // answer was lost is sent again without making any task twice.
  absl::Duration backoff = kCreateInitialBackoff;
  for (int attempt = 1;; ++attempt) {
    std::unique_ptr<grpc::ClientContext> ctx = connection_.UnaryContext();
    grpc::Status status = stub_->BatchCreateTasks(ctx.get(), request, response);
    if (status.ok()) return absl::OkStatus();
    const bool retryable =
        common::RetryCall(static_cast<absl::StatusCode>(status.error_code()),
                          /*idempotent=*/true);
    if (!retryable || attempt >= kCreateAttempts || Interrupted()) {
      return common::FromGrpcStatus(status);
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, kCreateMaxBackoff);
  }
}

}  // namespace cli
