#include "server/task_output_stream.h"

#include <string>
#include <utility>

#include "common/grpc_status.h"
#include "common/task_state.h"
#include "glog/logging.h"
#include "server/raw_messages.h"
#include "server/scheduler/request_validation.h"

namespace server {

grpc::Status GoingAwayStatus(const std::string& reason) {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, GoingAwayMessage(reason));
}

using crucible::v1::OutputChunk;

TaskOutputStream::TaskOutputStream(
    Scheduler& scheduler, BlockingPool& pool, TenantScope scope,
    const crucible::v1::StreamTaskOutputRequest& request,
    int64_t max_live_bytes)
    : scheduler_(scheduler),
      scope_(std::move(scope)),
      request_(request),
      max_live_bytes_(max_live_bytes),
      jobs_(pool, [this] {
        int64_t sub;
        {
          absl::MutexLock lock(&mu_);
          sub = subscription_;
        }
        if (sub != 0) scheduler_.Unsubscribe(sub);
        delete this;
      }) {
  jobs_.Run([this] { Start(); });
}

void TaskOutputStream::Start() {
  if (absl::Status valid = ValidateOutputRequest(
          request_.stream(), request_.offset(), request_.attempt());
      !valid.ok()) {
    absl::MutexLock lock(&mu_);
    out_.Finish(common::ToGrpcStatus(valid));
    return;
  }
  // Subscribing before reading the store means a chunk stored after the
  // last page we read still reaches us live (duplicates are cut by offset).
  absl::StatusOr<crucible::v1::Task> task;
  int64_t subscription = 0;
  if (request_.follow()) {
    absl::StatusOr<TaskSubscription> sub =
        scheduler_.Subscribe(scope_, request_.task_id(), this);
    if (sub.ok()) {
      subscription = sub->id;
      task = std::move(sub->task);
    } else {
      task = sub.status();
    }
  } else {
    task = scheduler_.GetTask(scope_, request_.task_id());
  }
  {
    absl::MutexLock lock(&mu_);
    if (!task.ok()) {
      out_.Finish(common::ToGrpcStatus(task.status()));
      return;
    }
    subscription_ = subscription;
    attempt_ = request_.attempt() > 0 ? request_.attempt() : task->attempt();
    next_offset_ = request_.offset();
    task_ended_ = !request_.follow() || common::IsTerminal(task->state());
    backlog_done_ = attempt_ == 0;
    started_ = true;
  }
  Pump(/*may_read=*/true);
}

void TaskOutputStream::OnEvent(const crucible::v1::TaskEvent& event) {
  if (!common::IsTerminal(event.state())) return;
  {
    absl::MutexLock lock(&mu_);
    task_ended_ = true;
  }
  Pump(/*may_read=*/false);
}

void TaskOutputStream::OnOutput(const OutputChunk& chunk) {
  {
    absl::MutexLock lock(&mu_);
    live_bytes_ += chunk.data().size();
    live_.push_back(chunk);
    if (live_bytes_ > max_live_bytes_ && started_ &&
        (out_.writing() || reading_)) {
      // The reader is slow (a write or a read is in flight, which resumes
      // the pump): drop what piled up and read it again from the store,
      // where it is, instead of holding it here.
      VLOG(1) << "output follower of " << request_.task_id()
              << " fell behind; reading again from the store";
      live_.clear();
      live_bytes_ = 0;
      backlog_done_ = false;
    }
  }
  Pump(/*may_read=*/false);  // never touches the store from a delivery
}

void TaskOutputStream::Pump(bool may_read) {
  while (true) {
    int32_t attempt;
    int64_t from;
    {
      absl::MutexLock lock(&mu_);
      if (out_.finishing() || !started_ || reading_ || out_.writing()) return;
      if (out_.Write()) return;
      if (!backlog_done_) {
        if (!may_read) return;  // the reader or OnWriteDone carries on
        reading_ = true;
        attempt = attempt_;
        from = next_offset_;
      } else {
        std::vector<OutputChunk> live;
        live.swap(live_);
        live_bytes_ = 0;
        for (const OutputChunk& c : live) AcceptLocked(c);
        if (out_.Write()) return;
        if (task_ended_) out_.Finish(grpc::Status::OK);
        return;
      }
    }
    absl::StatusOr<std::vector<OutputChunk>> chunks =
        scheduler_.ReadOutput(scope_, request_.task_id(), attempt, from,
                              request_.stream(), kPageBytes);
    absl::MutexLock lock(&mu_);
    reading_ = false;
    if (!chunks.ok()) {
      out_.Finish(common::ToGrpcStatus(chunks.status()));
      return;
    }
    if (chunks->empty()) backlog_done_ = true;
    for (const OutputChunk& c : *chunks) AcceptLocked(c);
  }
}

void TaskOutputStream::AcceptLocked(const OutputChunk& chunk) {
  if (request_.stream() != crucible::v1::OUTPUT_STREAM_UNSPECIFIED &&
      chunk.stream() != request_.stream()) {
    return;
  }
  if (chunk.attempt() != attempt_) {
    // "Latest attempt": a retry started; follow it from its beginning.
    if (request_.attempt() != 0 || chunk.attempt() < attempt_) return;
    attempt_ = chunk.attempt();
    next_offset_ = 0;
  }
  int64_t end = chunk.offset() + static_cast<int64_t>(chunk.data().size());
  if (end <= next_offset_) return;
  crucible::v1::StreamTaskOutputResponse response;
  OutputChunk* out = response.mutable_chunk();
  *out = chunk;
  if (chunk.offset() < next_offset_) {
    out->set_data(chunk.data().substr(next_offset_ - chunk.offset()));
    out->set_offset(next_offset_);
  }
  next_offset_ = end;
  out_.Push(SerializeMessage(response));
}

void TaskOutputStream::OnWriteDone(bool ok) {
  {
    absl::MutexLock lock(&mu_);
    // Finished, broken, or the next queued write started: nothing to pump.
    if (!out_.OnWriteDone(ok) || out_.writing()) return;
  }
  jobs_.Run([this] { Pump(/*may_read=*/true); });
}

void TaskOutputStream::OnGoingAway(const std::string& reason) {
  absl::MutexLock lock(&mu_);
  out_.Finish(GoingAwayStatus(reason));
}

void TaskOutputStream::OnCancel() {
  absl::MutexLock lock(&mu_);
  out_.Finish(grpc::Status::CANCELLED);
}

void TaskOutputStream::OnDone() { jobs_.Done(); }

}  // namespace server
