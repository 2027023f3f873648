// `crucible artifacts`, and the download of artifacts it shares with
// `submit --out`.
#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/artifact_file.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "common/grpc_status.h"
#include "common/retry.h"
#include "common/task_state.h"

namespace cli {
namespace {

using crucible::v1::ArtifactInfo;

// The error of a download, saying which artifact it was about unless the
// message already starts by naming it (ArtifactFile's do).
absl::Status About(const std::string& path, const absl::Status& status) {
  if (status.ok() ||
      absl::StartsWith(status.message(), absl::StrCat("artifact ", path)) ||
      absl::StartsWith(status.message(), "artifact path \"")) {
    return status;
  }
  return absl::Status(status.code(),
                      absl::StrCat("artifact ", path, ": ", status.message()));
}

}  // namespace

int Commands::Artifacts(const Args& args) {
  absl::StatusOr<Task> task = GetTask(args.task_id);
  if (!task.ok()) return Fail(task.status());
  if (task->spec().artifacts().empty()) {
    output_.Err(absl::StrCat("crucible: task ", task->id(),
                             " asked for no artifacts (submit --artifact)\n"));
    return kExitOk;
  }
  if (!task->has_result()) {
    return Fail(absl::FailedPreconditionError(absl::StrCat(
        "task ", task->id(), " is ", StateName(task->state()),
        common::IsTerminal(task->state())
            ? " and none of its attempts ran to the end: no artifacts"
            : " and none of its attempts has ended yet: no artifacts yet")));
  }
  if (!args.artifacts.out_dir.empty()) {
    return DownloadArtifacts(*task, args.artifacts.out_dir,
                             args.artifacts.attempt, args.output,
                             /*on_stdout=*/true);
  }
  for (const ArtifactInfo& a : task->result().artifacts()) {
    output_.Out(args.output == OutputFormat::kJson
                    ? ToJson(a) + "\n"
                    : FormatArtifact(a, /*sha256=*/true) + "\n");
  }
  return kExitOk;
}

int Commands::DownloadArtifacts(const Task& task, const std::string& dir,
                                int32_t attempt, OutputFormat format,
                                bool on_stdout) {
  int code = kExitOk;
  // Two patterns may match one file: it is fetched once.
  std::set<std::string> seen;
  for (const ArtifactInfo& a : task.result().artifacts()) {
    if (!seen.insert(a.path()).second) continue;
    if (a.status() != crucible::v1::ARTIFACT_STATUS_COLLECTED) {
      output_.Err(
          absl::StrCat("crucible: not collected: ", FormatArtifact(a), "\n"));
      continue;
    }
    // Refused before asking: nothing is created for such a path.
    absl::Status fetched = CheckArtifactPath(a.path());
    std::string written;
    absl::StatusOr<ArtifactInfo> info = ArtifactInfo();
    if (fetched.ok()) {
      info = DownloadArtifact(task.id(), a.path(), attempt, dir, &written);
      fetched = info.status();
    }
    if (Interrupted()) {
      output_.Err(
          absl::StrCat("crucible: stopped fetching the artifacts of "
                       "task ",
                       task.id(), " (crucible artifacts ", task.id(),
                       " --out DIR fetches them)\n"));
      return kExitInterrupted;
    }
    if (!fetched.ok()) {
      const int failed = Fail(About(a.path(), fetched));
      if (code == kExitOk) code = failed;
      continue;
    }
    if (!on_stdout) {
      output_.Err(absl::StrCat("crucible: wrote ", written, " (",
                               info->size_bytes(), " bytes)\n"));
    } else if (format == OutputFormat::kJson) {
      nlohmann::ordered_json line =
          nlohmann::ordered_json::parse(ToJson(*info), nullptr, false);
      if (line.is_discarded()) line = nlohmann::ordered_json::object();
      line["file"] = written;
      output_.Out(line.dump() + "\n");
    } else {
      output_.Out(written + "\n");
    }
  }
  return code;
}

absl::StatusOr<crucible::v1::ArtifactInfo> Commands::DownloadArtifact(
    const std::string& task_id, const std::string& path, int32_t attempt,
    const std::string& dir, std::string* written) {
  crucible::v1::GetArtifactRequest request;
  request.set_task_id(task_id);
  request.set_path(path);
  request.set_attempt(attempt);
  absl::Duration backoff = kArtifactInitialBackoff;
  for (int tries = 1;; ++tries) {
    std::unique_ptr<grpc::ClientContext> ctx = connection_.StreamContext();
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + kArtifactDeadline));
    Interrupts::Scope scope(interrupts_, ctx.get());
    std::unique_ptr<grpc::ClientReader<crucible::v1::GetArtifactResponse>>
        reader = stub_->GetArtifact(ctx.get(), request);
    // Created at the first message; removes its temporary file if it is
    // not committed.
    std::unique_ptr<ArtifactFile> file;
    absl::Status local = absl::OkStatus();
    crucible::v1::GetArtifactResponse response;
    while (local.ok() && reader->Read(&response)) {
      if (file == nullptr) {
        if (!response.has_info() || response.info().path() != path) {
          local = absl::DataLossError(
              "the stream did not start with the artifact's info");
          continue;
        }
        absl::StatusOr<std::unique_ptr<ArtifactFile>> created =
            ArtifactFile::Create(dir, response.info());
        if (created.ok()) {
          file = *std::move(created);
        } else {
          local = created.status();
        }
      } else if (!response.has_chunk()) {
        local = absl::DataLossError("a second info in the artifact's stream");
      } else {
        local = file->Append(response.chunk());
      }
    }
    if (!local.ok()) {
      ctx->TryCancel();
      (void)reader->Finish();  // CANCELLED, by us
      return local;
    }
    const grpc::Status status = reader->Finish();
    if (status.ok()) {
      if (file == nullptr) {
        return absl::DataLossError("the stream ended without the artifact");
      }
      if (absl::Status committed = file->Commit(); !committed.ok()) {
        return committed;
      }
      *written = file->path();
      return file->info();
    }
    // Only an outage is worth another try: the read is the same each time.
    if (!common::RetryCall(static_cast<absl::StatusCode>(status.error_code()),
                           /*idempotent=*/false) ||
        tries >= kArtifactAttempts || Interrupted()) {
      return common::FromGrpcStatus(status);
    }
    file.reset();
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, kArtifactMaxBackoff);
  }
}

}  // namespace cli
