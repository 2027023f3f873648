// The commands that follow a task: submit, logs, watch; and what Ctrl-C does
// while following.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "cli/progress.h"
#include "common/grpc_status.h"
#include "common/proto_time.h"
#include "common/retry.h"
#include "common/task_state.h"

namespace cli {
namespace {

using crucible::v1::OutputChunk;
using crucible::v1::TaskEvent;

absl::StatusOr<std::string> ReadStdin(const std::string& path, FILE* in) {
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
        absl::StrCat("cannot read --stdin ", path));
  std::stringstream ss;
  ss << file.rdbuf();
  return ss.str();
}

// --file LOCAL=REMOTE: LOCAL's bytes at REMOTE, executable (0755) if LOCAL
// is executable by its owner, else 0644.
absl::StatusOr<crucible::v1::InputFile> ReadInputFile(
    const std::string& local, const std::string& remote) {
  std::error_code error;
  const std::filesystem::file_status status =
      std::filesystem::status(local, error);
  if (error || !std::filesystem::is_regular_file(status)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot read --file ", local,
        error ? absl::StrCat(": ", error.message()) : ": not a regular file"));
  }
  std::ifstream in(local, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read --file ", local));
  }
  crucible::v1::InputFile file;
  file.set_path(remote);
  file.set_content(bytes.str());
  const bool executable =
      (status.permissions() & std::filesystem::perms::owner_exec) !=
      std::filesystem::perms::none;
  file.set_mode(executable ? 0755 : 0644);
  return file;
}

// 128 random bits, in hex, after a prefix that says who made it up.
std::string NewRequestId() {
  std::random_device random;
  return absl::StrFormat("crucible-cli-%08x%08x%08x%08x", random(), random(),
                         random(), random());
}

absl::StatusOr<crucible::v1::CreateTaskRequest> BuildRequest(
    const SubmitArgs& s, FILE* in) {
  crucible::v1::CreateTaskRequest request;
  crucible::v1::TaskSpec* spec = request.mutable_spec();
  spec->set_image(s.image);
  for (const std::string& word : s.command) spec->add_command(word);
  for (const auto& [k, v] : s.env) (*spec->mutable_env())[k] = v;
  for (const auto& [k, v] : s.labels) (*spec->mutable_labels())[k] = v;
  if (s.stdin_path.has_value()) {
    absl::StatusOr<std::string> data = ReadStdin(*s.stdin_path, in);
    if (!data.ok()) return data.status();
    spec->set_stdin(*std::move(data));
  }
  spec->set_working_dir(s.working_dir);
  for (const auto& [local, remote] : s.files) {
    absl::StatusOr<crucible::v1::InputFile> file = ReadInputFile(local, remote);
    if (!file.ok()) return file.status();
    *spec->add_files() = *std::move(file);
  }
  for (const std::string& a : s.artifacts) spec->add_artifacts(a);
  crucible::v1::Resources* r = spec->mutable_resources();
  r->set_scratch_bytes(s.scratch_bytes);
  r->set_memory_bytes(s.memory_bytes);
  r->set_cpu_millis(s.cpu_millis);
  r->set_pids_limit(s.pids_limit);
  r->set_tmpfs_bytes(s.tmpfs_bytes);
  if (s.timeout.has_value())
    *spec->mutable_timeout() = common::ToProtoDuration(*s.timeout);
  spec->set_max_output_bytes(s.max_output_bytes);
  spec->set_priority(s.priority);
  if (s.max_attempts > 0 || s.retry_on_nonzero_exit) {
    spec->mutable_retry_policy()->set_max_attempts(s.max_attempts);
    spec->mutable_retry_policy()->set_retry_on_nonzero_exit(
        s.retry_on_nonzero_exit);
  }
  // Without --request-id, one made up here: every attempt of this submit
  // carries it (see Commands::CreateTask).
  request.set_request_id(s.request_id.empty() ? NewRequestId() : s.request_id);
  return request;
}

}  // namespace

int Commands::Submit(const Args& args) {
  if (args.submit.from_file.has_value()) return SubmitFromFile(args);
  absl::StatusOr<crucible::v1::CreateTaskRequest> request =
      BuildRequest(args.submit, terminal_.in);
  if (!request.ok()) {
    output_.Err(absl::StrCat("crucible: ", request.status().message(), "\n"));
    return kExitUsage;
  }
  crucible::v1::CreateTaskResponse response;
  absl::Status created = CreateTask(*request, &response);
  if (!created.ok()) return Fail(created);
  if (args.submit.detach) {
    output_.Out(args.output == OutputFormat::kJson
                    ? TaskToJson(response.task()) + "\n"
                    : response.task().id() + "\n");
    return kExitOk;
  }
  return Follow(args, response.task().id());
}

absl::Status Commands::CreateTask(
    const crucible::v1::CreateTaskRequest& request,
    crucible::v1::CreateTaskResponse* response) {
  // A create whose answer was lost (DEADLINE_EXCEEDED) may have been stored;
  // one refused as UNAVAILABLE may be retried. Every attempt carries the same
  // request_id, so the server answers a repeat with the task it stored: one
  // submit never makes two tasks.
  absl::Duration backoff = kCreateInitialBackoff;
  for (int attempt = 1;; ++attempt) {
    std::unique_ptr<grpc::ClientContext> ctx = connection_.UnaryContext();
    grpc::Status status = stub_->CreateTask(ctx.get(), request, response);
    if (status.ok()) return absl::OkStatus();
    const bool retryable =
        common::RetryCall(static_cast<absl::StatusCode>(status.error_code()),
                          /*idempotent=*/!request.request_id().empty());
    if (!retryable || attempt >= kCreateAttempts || Interrupted()) {
      return common::FromGrpcStatus(status);
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, kCreateMaxBackoff);
  }
}

int Commands::Follow(const Args& args, const std::string& id) {
  absl::Status followed = absl::OkStatus();
  if (args.output == OutputFormat::kText) {
    std::optional<Progress> progress;
    if (terminal_.err_is_tty)
      progress.emplace(connection_, *stub_, output_, id);
    crucible::v1::StreamTaskOutputRequest request;
    request.set_task_id(id);
    request.set_follow(true);
    // Established: the server has just stored the task.
    followed = StreamOutput(
        request,
        [this](const OutputChunk& chunk) {
          if (chunk.stream() == crucible::v1::OUTPUT_STREAM_STDERR) {
            output_.Err(chunk.data());
          } else {
            output_.Out(chunk.data());
          }
        },
        /*established=*/true);
    if (progress.has_value()) progress->Stop();
  }
  if (Interrupted()) return OnInterrupt(args.submit, id);
  if (!followed.ok()) {
    output_.Err(absl::StrCat("crucible: following the output of task ", id,
                             " failed; `crucible get ", id, "` shows it\n"));
    return Fail(followed);
  }
  absl::StatusOr<Task> task = WaitForEnd(id, /*if_interrupted=*/true);
  if (Interrupted()) return OnInterrupt(args.submit, id);
  if (!task.ok()) return Fail(task.status());
  const int code = Ended(*task, args.output);
  // --out: the artifacts of whatever attempt ended last, whatever its end
  // (a failed test run's reports are wanted most). The task's own exit code
  // wins over a failed download's, which is said on stderr.
  if (args.submit.out_dir.empty() || !task->has_result()) return code;
  const int fetched =
      DownloadArtifacts(*task, args.submit.out_dir, /*attempt=*/0, args.output,
                        /*on_stdout=*/false);
  return code != kExitOk ? code : fetched;
}

int Commands::OnInterrupt(const SubmitArgs& submit, const std::string& id) {
  bool cancel = submit.cancel_on_interrupt;
  // Ask only someone who can answer: stdin is a terminal and not the task's.
  if (!cancel && terminal_.in_is_tty && submit.stdin_path != "-") {
    output_.Err(absl::StrCat("\ncrucible: cancel task ", id, "? [y/N] "));
    char answer[64] = {0};
    if (fgets(answer, sizeof(answer), terminal_.in) != nullptr) {
      cancel =
          absl::ascii_tolower(static_cast<unsigned char>(answer[0])) == 'y';
    }
  }
  if (!cancel) {
    output_.Err(absl::StrCat("crucible: stopped following task ", id,
                             "; it keeps running (crucible logs -f ", id,
                             ", crucible cancel ", id, ")\n"));
    return kExitInterrupted;
  }
  absl::StatusOr<Task> cancelled =
      CancelTask(id, "interrupted in the crucible CLI");
  // An ended task cannot be cancelled any more; it is reported as it ended.
  if (!cancelled.ok() && !absl::IsFailedPrecondition(cancelled.status())) {
    return Fail(cancelled.status());
  }
  if (cancelled.ok())
    output_.Err(absl::StrCat("crucible: cancelling task ", id, "\n"));
  absl::StatusOr<Task> task = WaitForEnd(id, /*if_interrupted=*/false);
  if (!task.ok()) return Fail(task.status());
  return Ended(*task, OutputFormat::kText);
}

bool Commands::Resume(const grpc::Status& status, const std::string& task_id,
                      bool established, absl::Time& outage,
                      absl::Duration& backoff) {
  if (!established || status.error_code() != grpc::StatusCode::UNAVAILABLE ||
      Interrupted()) {
    return false;
  }
  const absl::Time now = absl::Now();
  if (outage == absl::InfiniteFuture()) {
    outage = now;
    backoff = kResumeInitialBackoff;
    output_.Err(absl::StrCat("crucible: the stream of task ", task_id,
                             " ended (UNAVAILABLE: ", status.error_message(),
                             "); following it again\n"));
  } else if (now - outage > kResumeFor) {
    return false;
  }
  absl::SleepFor(backoff);
  backoff = std::min(backoff * 2, kResumeMaxBackoff);
  return !Interrupted();
}

absl::Status Commands::StreamOutput(
    const crucible::v1::StreamTaskOutputRequest& first_request,
    const std::function<void(const OutputChunk&)>& on_chunk, bool established) {
  crucible::v1::StreamTaskOutputRequest request = first_request;
  absl::Time outage = absl::InfiniteFuture();
  absl::Duration backoff;
  bool shown = false;  // a chunk, of attempt `shown_attempt`, up to `end`
  int32_t shown_attempt = 0;
  int64_t end = 0;
  for (;;) {
    // No deadline: a task may run for long. The call ends when the task
    // ends or on Ctrl-C.
    std::unique_ptr<grpc::ClientContext> ctx = connection_.StreamContext();
    Interrupts::Scope scope(interrupts_, ctx.get());
    std::unique_ptr<grpc::ClientReader<crucible::v1::StreamTaskOutputResponse>>
        reader = stub_->StreamTaskOutput(ctx.get(), request);
    crucible::v1::StreamTaskOutputResponse response;
    while (reader->Read(&response)) {
      const OutputChunk& chunk = response.chunk();
      shown = established = true;
      shown_attempt = chunk.attempt();
      end = chunk.offset() + static_cast<int64_t>(chunk.data().size());
      outage = absl::InfiniteFuture();
      on_chunk(chunk);
    }
    grpc::Status status = reader->Finish();
    if (!request.follow() ||
        !Resume(status, request.task_id(), established, outage, backoff)) {
      return common::FromGrpcStatus(status);
    }
    if (!shown) continue;  // the same request again
    // On after what was shown; or, when following the latest attempt and
    // the task was retried meanwhile, the new attempt from its start (as
    // the stream would have moved on to it).
    request.set_offset(end);
    if (first_request.attempt() == 0) {
      absl::StatusOr<Task> task = GetTask(request.task_id());
      if (task.ok() && task->attempt() != shown_attempt) request.set_offset(0);
    }
  }
}

absl::Status Commands::WatchEvents(
    const std::string& task_id, bool if_interrupted,
    const std::function<void(const TaskEvent&)>& on_event, bool established) {
  absl::Time outage = absl::InfiniteFuture();
  absl::Duration backoff;
  for (;;) {
    std::unique_ptr<grpc::ClientContext> ctx = connection_.StreamContext();
    Interrupts::Scope scope(interrupts_, ctx.get(), if_interrupted);
    crucible::v1::WatchTaskRequest request;
    request.set_task_id(task_id);
    std::unique_ptr<grpc::ClientReader<crucible::v1::WatchTaskResponse>>
        reader = stub_->WatchTask(ctx.get(), request);
    crucible::v1::WatchTaskResponse response;
    bool ended = false;
    while (!ended && reader->Read(&response)) {
      outage = absl::InfiniteFuture();
      established = true;
      on_event(response.event());
      // The server ends the stream after this; do not depend on it.
      ended = common::IsTerminal(response.event().state());
    }
    if (ended) ctx->TryCancel();
    grpc::Status status = reader->Finish();
    if (ended) return absl::OkStatus();  // whatever our TryCancel made of it
    if (!Resume(status, task_id, established, outage, backoff)) {
      return common::FromGrpcStatus(status);
    }
  }
}

absl::StatusOr<crucible::v1::Task> Commands::WaitForEnd(
    const std::string& task_id, bool if_interrupted) {
  absl::StatusOr<Task> task = GetTask(task_id);
  if (!task.ok() || common::IsTerminal(task->state())) return task;
  absl::Status watched = WatchEvents(
      task_id, if_interrupted, [](const TaskEvent&) {}, /*established=*/true);
  if (!watched.ok()) return watched;
  return GetTask(task_id);
}

int Commands::Logs(const Args& args) {
  crucible::v1::StreamTaskOutputRequest request;
  request.set_task_id(args.task_id);
  request.set_follow(args.logs.follow);
  request.set_stream(args.logs.stream);
  request.set_offset(args.logs.offset);
  request.set_attempt(args.logs.attempt);
  const bool json = args.output == OutputFormat::kJson;
  absl::Status status =
      StreamOutput(request, [this, json](const OutputChunk& chunk) {
        if (json) {
          output_.Out(ToJson(chunk) + "\n");
        } else if (chunk.stream() == crucible::v1::OUTPUT_STREAM_STDERR) {
          output_.Err(chunk.data());
        } else {
          output_.Out(chunk.data());
        }
      });
  if (Interrupted()) return kExitInterrupted;
  if (!status.ok()) return Fail(status);
  return kExitOk;
}

int Commands::Watch(const Args& args) {
  const bool json = args.output == OutputFormat::kJson;
  absl::Status status = WatchEvents(
      args.task_id, /*if_interrupted=*/true,
      [this, json](const TaskEvent& event) {
        output_.Out((json ? ToJson(event) : FormatEvent(event)) + "\n");
      });
  if (Interrupted()) return kExitInterrupted;
  if (!status.ok()) return Fail(status);
  absl::StatusOr<Task> task = GetTask(args.task_id);
  if (!task.ok()) return Fail(task.status());
  if (!common::IsTerminal(task->state())) {
    output_.Err(absl::StrCat("crucible: the watch ended while task ",
                             task->id(), " is ", StateName(task->state()),
                             "\n"));
    return kExitError;
  }
  if (std::string line = EndingLine(*task); !line.empty() && !json)
    output_.Err(line + "\n");
  return ExitCodeForTask(*task);
}

}  // namespace cli
