#include "server/artifact_stream.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "server/raw_messages.h"

namespace server {

ArtifactStream::ArtifactStream(Scheduler& scheduler, BlockingPool& pool,
                               TenantScope scope,
                               const crucible::v1::GetArtifactRequest& request)
    : scheduler_(scheduler),
      scope_(std::move(scope)),
      request_(request),
      jobs_(pool, [this] { delete this; }) {
  jobs_.Run([this] { Start(); });
}

void ArtifactStream::Start() {
  absl::StatusOr<StoredArtifact> found = scheduler_.FindArtifact(
      scope_, request_.task_id(), request_.path(), request_.attempt());
  {
    absl::MutexLock lock(&mu_);
    if (!found.ok()) {
      out_.Finish(common::ToGrpcStatus(found.status()));
      return;
    }
    attempt_ = found->attempt;
    size_ = found->info.size_bytes();
    crucible::v1::GetArtifactResponse response;
    *response.mutable_info() = std::move(found->info);
    out_.Push(SerializeMessage(response));
  }
  Pump();
}

void ArtifactStream::Pump() {
  int32_t attempt;
  int64_t from;
  {
    absl::MutexLock lock(&mu_);
    // What is queued goes first; OnWriteDone pumps again once it is out.
    if (out_.finishing() || out_.Write()) return;
    if (next_offset_ >= size_) {
      out_.Finish(grpc::Status::OK);
      return;
    }
    attempt = attempt_;
    from = next_offset_;
  }
  absl::StatusOr<std::vector<crucible::v1::ArtifactChunk>> chunks =
      scheduler_.ReadArtifact(request_.task_id(), attempt, request_.path(),
                              from, kPageBytes);
  absl::MutexLock lock(&mu_);
  if (!chunks.ok()) {
    out_.Finish(common::ToGrpcStatus(chunks.status()));
    return;
  }
  for (crucible::v1::ArtifactChunk& chunk : *chunks) {
    const int64_t end =
        chunk.offset() + static_cast<int64_t>(chunk.data().size());
    if (chunk.offset() != next_offset_ || end > size_) break;
    next_offset_ = end;
    crucible::v1::GetArtifactResponse response;
    *response.mutable_chunk() = std::move(chunk);
    out_.Push(SerializeMessage(response));
  }
  if (next_offset_ == from) {
    // Recorded whole, stored otherwise: nothing to send but the truth.
    out_.Finish(grpc::Status(
        grpc::StatusCode::DATA_LOSS,
        absl::StrCat("artifact ", request_.path(), " of task ",
                     request_.task_id(), ": its stored bytes end at byte ",
                     from, " of ", size_)));
    return;
  }
  out_.Write();
}

void ArtifactStream::OnWriteDone(bool ok) {
  {
    absl::MutexLock lock(&mu_);
    // Finished, broken, or the next queued write started: nothing to pump.
    if (!out_.OnWriteDone(ok) || out_.writing()) return;
  }
  jobs_.Run([this] { Pump(); });
}

void ArtifactStream::OnCancel() {
  absl::MutexLock lock(&mu_);
  out_.Finish(grpc::Status::CANCELLED);
}

void ArtifactStream::OnDone() { jobs_.Done(); }

}  // namespace server
