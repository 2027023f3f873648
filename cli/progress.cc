#include "cli/progress.h"

#include "cli/format.h"

namespace cli {

Progress::Progress(const Connection& connection,
                   crucible::v1::TaskService::Stub& stub, Output& output,
                   std::string task_id)
    : stub_(stub),
      output_(output),
      task_id_(std::move(task_id)),
      ctx_(connection.StreamContext()) {
  Draw();
  watcher_ = std::thread([this] { Watch(); });
  ticker_ = std::thread([this] { Tick(); });
}

Progress::~Progress() { Stop(); }

void Progress::Stop() {
  if (!stop_.HasBeenNotified()) {
    stop_.Notify();
    ctx_->TryCancel();
  }
  if (watcher_.joinable()) watcher_.join();
  if (ticker_.joinable()) ticker_.join();
  output_.SetStatus("");
}

void Progress::Watch() {
  crucible::v1::WatchTaskRequest request;
  request.set_task_id(task_id_);
  std::unique_ptr<grpc::ClientReader<crucible::v1::WatchTaskResponse>> reader =
      stub_.WatchTask(ctx_.get(), request);
  crucible::v1::WatchTaskResponse response;
  while (reader->Read(&response)) {
    {
      absl::MutexLock lock(&mu_);
      if (response.event().state() != state_ ||
          response.event().attempt() != attempt_) {
        state_ = response.event().state();
        attempt_ = response.event().attempt();
        since_ = absl::Now();
      }
    }
    if (!stop_.HasBeenNotified()) Draw();
  }
  // The status line is only a help: a failed watch just stops updating it.
  (void)reader->Finish();
}

void Progress::Tick() {
  while (!stop_.WaitForNotificationWithTimeout(absl::Seconds(1))) Draw();
}

void Progress::Draw() {
  std::string line;
  {
    absl::MutexLock lock(&mu_);
    line = ProgressLine(task_id_, state_, attempt_, absl::Now() - since_);
  }
  output_.SetStatus("crucible: " + line);
}

}  // namespace cli
