#ifndef CRUCIBLE_SERVER_ARTIFACT_STREAM_H_
#define CRUCIBLE_SERVER_ARTIFACT_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>

#include "absl/synchronization/mutex.h"
#include "common/stream_write_queue.h"
#include "crucible/v1/task_service.pb.h"
#include "server/blocking_pool.h"
#include "server/scheduler/scheduler.h"

namespace server {

// The reactor of TaskService.GetArtifact: the artifact's info, then its
// stored bytes in order, a page at a time (one page read ahead of the
// client at most). Owns itself (see ReactorJobs); store reads run on the
// pool.
class ArtifactStream final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  ArtifactStream(Scheduler& scheduler, BlockingPool& pool, TenantScope scope,
                 const crucible::v1::GetArtifactRequest& request);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // Bytes read from the store per page.
  static constexpr int64_t kPageBytes = 1 << 20;

  // Finds the artifact and writes its info. On the pool.
  void Start();
  // Reads the next page once the last one is written, or finishes. On the
  // pool.
  void Pump();

  Scheduler& scheduler_;
  const TenantScope scope_;
  const crucible::v1::GetArtifactRequest request_;
  absl::Mutex mu_;
  int32_t attempt_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t size_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_offset_ ABSL_GUARDED_BY(mu_) = 0;
  common::StreamWriteQueue<ArtifactStream, grpc::ByteBuffer> out_
      ABSL_GUARDED_BY(mu_){this};
  ReactorJobs jobs_;  // last: its cleanup reads the fields above
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_ARTIFACT_STREAM_H_
