// Artifacts relayed by a worker: kept only when the completion lists them
// COLLECTED with the size and SHA-256 of the bytes received, and read back
// by FindArtifact/ReadArtifact per attempt and tenant.
#include <string>
#include <vector>

#include "common/sha256.h"
#include "gmock/gmock.h"
#include "tests/server/scheduler_fixture.h"

namespace server {
namespace {

using crucible::v1::ArtifactChunk;
using crucible::v1::ArtifactInfo;
using crucible::v1::AttemptCompletion;

class SchedulerArtifactsTest : public SchedulerTest {
 protected:
  // A task asking for out/* and report.txt, leased to a worker.
  std::string Lease(int max_artifact_bytes = 0, int max_attempts = 1) {
    crucible::v1::TaskSpec spec = Spec();
    spec.add_artifacts("out/*");
    spec.add_artifacts("report.txt");
    spec.set_max_artifact_bytes(max_artifact_bytes);
    spec.mutable_retry_policy()->set_max_attempts(max_attempts);
    spec.mutable_retry_policy()->set_retry_on_nonzero_exit(true);
    id_ = Create(spec);
    if (session_ == 0) session_ = Connect(sink_, 1);
    std::vector<crucible::v1::Assignment> got = sink_.TakeAssignments();
    EXPECT_EQ(got.size(), 1u);
    return got.empty() ? "" : got[0].lease_id();
  }
  // Reports `data` of `path` in chunks of `piece` bytes.
  absl::Status Send(const std::string& lease, const std::string& path,
                    const std::string& data, size_t piece = 4) {
    size_t off = 0;
    do {
      ArtifactChunk chunk;
      chunk.set_path(path);
      chunk.set_offset(static_cast<int64_t>(off));
      chunk.set_data(data.substr(off, piece));
      absl::Status s = scheduler_->ReportArtifact(lease, chunk);
      if (!s.ok()) return s;
      off += piece;
    } while (off < data.size());
    return absl::OkStatus();
  }
  static ArtifactInfo Collected(const std::string& path,
                                const std::string& data) {
    ArtifactInfo info;
    info.set_path(path);
    info.set_status(crucible::v1::ARTIFACT_STATUS_COLLECTED);
    info.set_size_bytes(static_cast<int64_t>(data.size()));
    info.set_sha256(common::Sha256Hex(data));
    return info;
  }
  // The bytes GetArtifact would stream, or the status of finding them.
  absl::StatusOr<std::string> Fetch(const std::string& path,
                                    int32_t attempt = 0,
                                    const TenantScope& scope = kTenant) {
    absl::StatusOr<StoredArtifact> found =
        scheduler_->FindArtifact(scope, id_, path, attempt);
    if (!found.ok()) return found.status();
    std::string got;
    while (static_cast<int64_t>(got.size()) < found->info.size_bytes()) {
      auto chunks = scheduler_->ReadArtifact(
          id_, found->attempt, path, static_cast<int64_t>(got.size()), 10);
      if (!chunks.ok()) return chunks.status();
      if (chunks->empty()) break;
      for (const ArtifactChunk& c : *chunks) got += c.data();
    }
    EXPECT_EQ(common::Sha256Hex(got), found->info.sha256());
    return got;
  }
  std::vector<ArtifactInfo> Artifacts() {
    crucible::v1::Task task = Get(id_);
    return {task.result().artifacts().begin(), task.result().artifacts().end()};
  }

  FakeSink sink_;
  int64_t session_ = 0;
  std::string id_;
};

TEST_F(SchedulerArtifactsTest, KeepsWhatArrivedWholeAndReadsItBack) {
  const std::string lease = Lease();
  const std::string big(1000, 'x');
  ASSERT_TRUE(Send(lease, "out/a.json", "{\"ok\":true}\n").ok());
  ASSERT_TRUE(Send(lease, "out/big", big, 64).ok());
  ASSERT_TRUE(Send(lease, "report.txt", "").ok());  // an empty file
  AttemptCompletion done = Exited(lease, 0);
  *done.mutable_result()->add_artifacts() =
      Collected("out/a.json", "{\"ok\":true}\n");
  *done.mutable_result()->add_artifacts() = Collected("out/big", big);
  *done.mutable_result()->add_artifacts() = Collected("report.txt", "");
  ASSERT_TRUE(scheduler_->ReportCompletion(done).ok());

  for (const ArtifactInfo& a : Artifacts()) {
    EXPECT_EQ(a.status(), crucible::v1::ARTIFACT_STATUS_COLLECTED) << a.path();
  }
  EXPECT_EQ(*Fetch("out/a.json"), "{\"ok\":true}\n");
  EXPECT_EQ(*Fetch("out/big"), big);
  EXPECT_EQ(*Fetch("report.txt"), "");
  // Another tenant sees no such task; a path never collected is NOT_FOUND.
  EXPECT_EQ(Fetch("out/big", 0, TenantScope{.tenant = "other"}).status().code(),
            absl::StatusCode::kNotFound);
  absl::Status missing = Fetch("out/none").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.message()),
              testing::HasSubstr("has no collected artifact \"out/none\""));
  EXPECT_EQ(Fetch("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SchedulerArtifactsTest, ReplayedChunksAddNothing) {
  const std::string lease = Lease();
  ASSERT_TRUE(Send(lease, "out/r", "abcdefgh").ok());
  ASSERT_TRUE(Send(lease, "out/r", "abcdefgh").ok());  // a worker's replay
  AttemptCompletion done = Exited(lease, 0);
  *done.mutable_result()->add_artifacts() = Collected("out/r", "abcdefgh");
  ASSERT_TRUE(scheduler_->ReportCompletion(done).ok());
  EXPECT_EQ(Artifacts()[0].status(), crucible::v1::ARTIFACT_STATUS_COLLECTED);
  EXPECT_EQ(*Fetch("out/r"), "abcdefgh");
}

TEST_F(SchedulerArtifactsTest, BytesThatDoNotMatchTheResultAreIncomplete) {
  const std::string lease = Lease();
  // A gap (a report lost on the way), other bytes than the checksum says,
  // fewer bytes than the size says, and nothing at all.
  ArtifactChunk late;
  late.set_path("out/gap");
  late.set_offset(4);
  late.set_data("efgh");
  ASSERT_TRUE(scheduler_->ReportArtifact(lease, late).ok());
  ASSERT_TRUE(Send(lease, "out/other", "EVIL").ok());
  ASSERT_TRUE(Send(lease, "out/short", "abc").ok());
  AttemptCompletion done = Exited(lease, 0);
  *done.mutable_result()->add_artifacts() = Collected("out/gap", "abcdefgh");
  *done.mutable_result()->add_artifacts() = Collected("out/other", "good");
  *done.mutable_result()->add_artifacts() = Collected("out/short", "abcd");
  *done.mutable_result()->add_artifacts() = Collected("out/none", "xyz");
  ASSERT_TRUE(scheduler_->ReportCompletion(done).ok());

  for (const ArtifactInfo& a : Artifacts()) {
    EXPECT_EQ(a.status(), crucible::v1::ARTIFACT_STATUS_INCOMPLETE) << a.path();
    EXPECT_TRUE(a.sha256().empty()) << a.path();
    EXPECT_EQ(Fetch(a.path()).status().code(), absl::StatusCode::kNotFound)
        << a.path();
  }
  EXPECT_EQ(Get(id_).state(), crucible::v1::TASK_STATE_SUCCEEDED);
}

TEST_F(SchedulerArtifactsTest, BytesPastTheSpecsLimitAreNotKept) {
  const std::string lease = Lease(/*max_artifact_bytes=*/10);
  ASSERT_TRUE(Send(lease, "out/fits", "12345678").ok());
  ASSERT_TRUE(Send(lease, "out/past", "abcdefgh").ok());
  AttemptCompletion done = Exited(lease, 0);
  *done.mutable_result()->add_artifacts() = Collected("out/fits", "12345678");
  *done.mutable_result()->add_artifacts() = Collected("out/past", "abcdefgh");
  ASSERT_TRUE(scheduler_->ReportCompletion(done).ok());
  std::vector<ArtifactInfo> got = Artifacts();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].status(), crucible::v1::ARTIFACT_STATUS_COLLECTED);
  EXPECT_EQ(got[1].status(), crucible::v1::ARTIFACT_STATUS_INCOMPLETE);
  EXPECT_EQ(*Fetch("out/fits"), "12345678");
}

TEST_F(SchedulerArtifactsTest, PathsTheSpecDoesNotAskForAreRefused) {
  const std::string lease = Lease();
  for (const std::string path : {"../etc/passwd", "/etc/passwd", "notes.txt",
                                 "out/sub/deep", "", "out/../x"}) {
    EXPECT_EQ(Send(lease, path, "x").code(), absl::StatusCode::kInvalidArgument)
        << path;
  }
  ArtifactChunk negative;
  negative.set_path("out/x");
  negative.set_offset(-1);
  EXPECT_EQ(scheduler_->ReportArtifact(lease, negative).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Send("not-a-lease", "out/x", "x").code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(SchedulerArtifactsTest, EachAttemptKeepsItsOwn) {
  std::string lease = Lease(0, /*max_attempts=*/2);
  ASSERT_TRUE(Send(lease, "report.txt", "first").ok());
  AttemptCompletion failed = Exited(lease, 1);
  *failed.mutable_result()->add_artifacts() = Collected("report.txt", "first");
  ASSERT_TRUE(scheduler_->ReportCompletion(failed).ok());
  clock_.Advance(absl::Minutes(5));  // past the retry's backoff
  scheduler_->ExpireLeases();
  ASSERT_TRUE(scheduler_->AddCredits(session_, 1).ok());
  std::vector<crucible::v1::Assignment> again = sink_.TakeAssignments();
  ASSERT_EQ(again.size(), 1u);
  lease = again[0].lease_id();
  // The second attempt's bytes of a path start afresh.
  ASSERT_TRUE(Send(lease, "report.txt", "second").ok());
  AttemptCompletion done = Exited(lease, 0);
  *done.mutable_result()->add_artifacts() = Collected("report.txt", "second");
  ASSERT_TRUE(scheduler_->ReportCompletion(done).ok());

  EXPECT_EQ(*Fetch("report.txt"), "second");
  EXPECT_EQ(*Fetch("report.txt", 2), "second");
  EXPECT_EQ(*Fetch("report.txt", 1), "first");
  EXPECT_EQ(Fetch("report.txt", 3).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace server
