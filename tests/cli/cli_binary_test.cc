// Runs the built `crucible` binary against an in-process fake TaskService
// (real gRPC on 127.0.0.1, ephemeral port).
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/sha256.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"
#include "tests/testing/test_stack.h"

namespace {

using crucible::v1::Task;
using testing::HasSubstr;
using testing::StartsWith;

using common::Sha256Hex;

// An artifact as GetArtifact serves it: `info`, then `chunks` in order.
struct FakeArtifact {
  crucible::v1::ArtifactInfo info;
  std::vector<std::string> chunks;
};

// The info of a collected artifact of these bytes.
crucible::v1::ArtifactInfo Collected(const std::string& path,
                                     const std::string& bytes) {
  crucible::v1::ArtifactInfo info;
  info.set_path(path);
  info.set_status(crucible::v1::ARTIFACT_STATUS_COLLECTED);
  info.set_size_bytes(static_cast<int64_t>(bytes.size()));
  info.set_sha256(Sha256Hex(bytes));
  return info;
}

// Serves one task: CreateTask returns it, StreamTaskOutput replays
// `chunks`, GetTask returns `final`, GetArtifact serves `artifacts`.
// Thread-safe.
class FakeTasks final : public crucible::v1::TaskService::Service {
 public:
  grpc::Status CreateTask(grpc::ServerContext*,
                          const crucible::v1::CreateTaskRequest* request,
                          crucible::v1::CreateTaskResponse* response) override {
    absl::MutexLock lock(&mu_);
    created_.push_back(*request);
    if (!create_error_.ok()) return create_error_;
    // As if stored, but the answer was lost.
    if (lost_answers_ > 0) {
      --lost_answers_;
      return lost_answer_status_;
    }
    response->mutable_task()->set_id(final_.id());
    *response->mutable_task()->mutable_spec() = request->spec();
    response->mutable_task()->set_state(crucible::v1::TASK_STATE_QUEUED);
    return grpc::Status::OK;
  }
  grpc::Status GetTask(grpc::ServerContext* ctx,
                       const crucible::v1::GetTaskRequest* request,
                       crucible::v1::GetTaskResponse* response) override {
    absl::MutexLock lock(&mu_);
    auto auth = ctx->client_metadata().find("authorization");
    last_authorization_ =
        auth == ctx->client_metadata().end()
            ? "(none)"
            : std::string(auth->second.data(), auth->second.size());
    if (request->task_id() != final_.id())
      return grpc::Status(grpc::NOT_FOUND, "no such task");
    *response->mutable_task() = final_;
    return grpc::Status::OK;
  }
  grpc::Status ListTasks(grpc::ServerContext*,
                         const crucible::v1::ListTasksRequest* request,
                         crucible::v1::ListTasksResponse* response) override {
    absl::MutexLock lock(&mu_);
    *response->add_tasks() = final_;
    return grpc::Status::OK;
  }
  grpc::Status StreamTaskOutput(
      grpc::ServerContext*,
      const crucible::v1::StreamTaskOutputRequest* request,
      grpc::ServerWriter<crucible::v1::StreamTaskOutputResponse>* writer)
      override {
    std::vector<crucible::v1::OutputChunk> chunks;
    {
      absl::MutexLock lock(&mu_);
      if (request->task_id() != final_.id() || !request->follow()) {
        return grpc::Status(grpc::INVALID_ARGUMENT,
                            "expected follow on the created task");
      }
      chunks = chunks_;
    }
    for (const auto& c : chunks) {
      crucible::v1::StreamTaskOutputResponse r;
      *r.mutable_chunk() = c;
      writer->Write(r);
    }
    return grpc::Status::OK;
  }

  grpc::Status GetArtifact(
      grpc::ServerContext*, const crucible::v1::GetArtifactRequest* request,
      grpc::ServerWriter<crucible::v1::GetArtifactResponse>* writer) override {
    FakeArtifact artifact;
    {
      absl::MutexLock lock(&mu_);
      artifact_requests_.push_back(*request);
      if (artifact_outages_ > 0) {
        --artifact_outages_;
        return grpc::Status(grpc::UNAVAILABLE, "try again");
      }
      auto it = artifacts_.find(request->path());
      if (request->task_id() != final_.id() || it == artifacts_.end())
        return grpc::Status(grpc::NOT_FOUND, "no such artifact");
      artifact = it->second;
    }
    crucible::v1::GetArtifactResponse response;
    *response.mutable_info() = artifact.info;
    writer->Write(response);
    int64_t offset = 0;
    for (const std::string& data : artifact.chunks) {
      response.Clear();
      response.mutable_chunk()->set_path(artifact.info.path());
      response.mutable_chunk()->set_offset(offset);
      response.mutable_chunk()->set_data(data);
      offset += static_cast<int64_t>(data.size());
      writer->Write(response);
    }
    return grpc::Status::OK;
  }

  void AddArtifact(FakeArtifact artifact) {
    absl::MutexLock lock(&mu_);
    std::string path = artifact.info.path();
    artifacts_[path] = std::move(artifact);
  }
  // The next `n` GetArtifact calls fail UNAVAILABLE.
  void set_artifact_outages(int n) {
    absl::MutexLock lock(&mu_);
    artifact_outages_ = n;
  }
  std::vector<crucible::v1::GetArtifactRequest> artifact_requests() {
    absl::MutexLock lock(&mu_);
    return artifact_requests_;
  }

  void AddChunk(crucible::v1::OutputStream stream, const std::string& data) {
    absl::MutexLock lock(&mu_);
    crucible::v1::OutputChunk c;
    c.set_stream(stream);
    c.set_data(data);
    chunks_.push_back(c);
  }
  void set_final(Task t) {
    absl::MutexLock lock(&mu_);
    final_ = std::move(t);
  }
  // The next `n` creates fail with `status` (after being recorded).
  void LoseAnswers(int n, grpc::Status status) {
    absl::MutexLock lock(&mu_);
    lost_answers_ = n;
    lost_answer_status_ = std::move(status);
  }
  void set_create_error(grpc::Status s) {
    absl::MutexLock lock(&mu_);
    create_error_ = std::move(s);
  }
  std::string last_authorization() {
    absl::MutexLock lock(&mu_);
    return last_authorization_;
  }
  std::vector<crucible::v1::CreateTaskRequest> created() {
    absl::MutexLock lock(&mu_);
    return created_;
  }

 private:
  absl::Mutex mu_;
  Task final_ ABSL_GUARDED_BY(mu_);
  std::vector<crucible::v1::OutputChunk> chunks_ ABSL_GUARDED_BY(mu_);
  grpc::Status create_error_ ABSL_GUARDED_BY(mu_);
  int lost_answers_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::Status lost_answer_status_ ABSL_GUARDED_BY(mu_);
  std::vector<crucible::v1::CreateTaskRequest> created_ ABSL_GUARDED_BY(mu_);
  std::string last_authorization_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, FakeArtifact> artifacts_ ABSL_GUARDED_BY(mu_);
  int artifact_outages_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<crucible::v1::GetArtifactRequest> artifact_requests_
      ABSL_GUARDED_BY(mu_);
};

Task Final(crucible::v1::TaskState state,
           crucible::v1::TerminationReason reason, int code) {
  Task t;
  t.set_id("task-1");
  t.set_state(state);
  t.mutable_spec()->set_image("busybox");
  t.mutable_result()->set_reason(reason);
  t.mutable_result()->set_exit_code(code);
  return t;
}

class CliBinaryTest : public testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&tasks_);
    server_ = builder.BuildAndStart();
    ASSERT_GT(port, 0);
    address_ = absl::StrCat("127.0.0.1:", port);
  }
  void TearDown() override {
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  }

  testing_util::CommandResult Crucible(std::vector<std::string> args) {
    args.insert(args.begin(), testing_util::BinaryPath("crucible"));
    absl::StatusOr<testing_util::CommandResult> r =
        testing_util::RunCommand(args, absl::Seconds(30));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : testing_util::CommandResult{};
  }

  FakeTasks tasks_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

TEST_F(CliBinaryTest, SubmitWritesStreamsApartAndExitsWithTheTaskExitCode) {
  tasks_.set_final(Final(crucible::v1::TASK_STATE_FAILED,
                         crucible::v1::TERMINATION_REASON_EXITED, 3));
  tasks_.AddChunk(crucible::v1::OUTPUT_STREAM_STDOUT, "hi\n");
  tasks_.AddChunk(crucible::v1::OUTPUT_STREAM_STDERR, "oops\n");
  tasks_.AddChunk(crucible::v1::OUTPUT_STREAM_STDOUT, "bye\n");
  testing_util::CommandResult r = Crucible(
      {"--server", address_, "submit", "--image", "busybox", "--timeout", "30s",
       "--env", "A=1", "--", "sh", "-c", "echo hi; exit 3"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(r.out, "hi\nbye\n");
  EXPECT_EQ(r.err, "oops\n");
  ASSERT_EQ(tasks_.created().size(), 1u);
  const crucible::v1::TaskSpec spec = tasks_.created()[0].spec();
  EXPECT_EQ(spec.image(), "busybox");
  EXPECT_THAT(spec.command(),
              testing::ElementsAre("sh", "-c", "echo hi; exit 3"));
  EXPECT_EQ(spec.timeout().seconds(), 30);
  EXPECT_EQ(spec.env().at("A"), "1");
}

TEST_F(CliBinaryTest, SubmitSucceededExitsZero) {
  tasks_.set_final(Final(crucible::v1::TASK_STATE_SUCCEEDED,
                         crucible::v1::TERMINATION_REASON_EXITED, 0));
  tasks_.AddChunk(crucible::v1::OUTPUT_STREAM_STDOUT, "ok\n");
  testing_util::CommandResult r = Crucible(
      {"--server=" + address_, "submit", "--image", "busybox", "--", "true"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ok\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(CliBinaryTest, SubmitTimedOutExits124WithALineOnStderr) {
  Task t = Final(crucible::v1::TASK_STATE_TIMED_OUT,
                 crucible::v1::TERMINATION_REASON_TIMEOUT, 137);
  t.mutable_result()->set_error_message("killed after 1s");
  tasks_.set_final(t);
  testing_util::CommandResult r =
      Crucible({"--server", address_, "submit", "--image", "busybox", "--",
                "sleep", "9"});
  EXPECT_EQ(r.exit_code, 124);
  EXPECT_THAT(r.err,
              HasSubstr("crucible: task task-1 TIMED_OUT: killed after 1s"));
}

TEST_F(CliBinaryTest, SubmitDetachPrintsTheId) {
  tasks_.set_final(Final(crucible::v1::TASK_STATE_QUEUED,
                         crucible::v1::TERMINATION_REASON_UNSPECIFIED, 0));
  testing_util::CommandResult r =
      Crucible({"--server", address_, "submit", "--detach", "--image",
                "busybox", "true"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "task-1\n");
}

// --file reads each local file into spec.files (0755 when executable),
// --artifact and --scratch fill their fields; a missing file is a usage
// error and sends nothing.
TEST_F(CliBinaryTest, SubmitSendsFilesArtifactsAndScratch) {
  tasks_.set_final(Final(crucible::v1::TASK_STATE_QUEUED,
                         crucible::v1::TERMINATION_REASON_UNSPECIFIED, 0));
  const std::string dir = ::testing::TempDir() + "/cli-files";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/data.txt", std::ios::binary) << std::string("a\0b", 3);
  std::ofstream(dir + "/run.sh") << "#!/bin/sh\necho hi\n";
  std::filesystem::permissions(dir + "/run.sh",
                               std::filesystem::perms::owner_all);
  testing_util::CommandResult r =
      Crucible({"--server", address_, "submit", "--detach", "--image",
                "busybox", "--file", dir + "/data.txt=in/data.txt",
                "--file=" + dir + "/run.sh=run.sh", "--artifact", "out/*.json",
                "--artifact=report.txt", "--scratch", "8Mi", "sh", "run.sh"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_FALSE(tasks_.created().empty());
  const crucible::v1::TaskSpec spec = tasks_.created().back().spec();
  ASSERT_EQ(spec.files_size(), 2);
  EXPECT_EQ(spec.files(0).path(), "in/data.txt");
  EXPECT_EQ(spec.files(0).content(), std::string("a\0b", 3));
  EXPECT_EQ(spec.files(0).mode(), 0644u);
  EXPECT_EQ(spec.files(1).path(), "run.sh");
  EXPECT_EQ(spec.files(1).content(), "#!/bin/sh\necho hi\n");
  EXPECT_EQ(spec.files(1).mode(), 0755u);
  EXPECT_THAT(spec.artifacts(),
              testing::ElementsAre("out/*.json", "report.txt"));
  EXPECT_EQ(spec.resources().scratch_bytes(), 8 << 20);

  const size_t before = tasks_.created().size();
  r = Crucible({"--server", address_, "submit", "--detach", "--image",
                "busybox", "--file", dir + "/missing=x", "true"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err,
              testing::HasSubstr("cannot read --file " + dir + "/missing"));
  EXPECT_EQ(tasks_.created().size(), before);
}

// One submit, one task: a lost answer (UNAVAILABLE, DEADLINE_EXCEEDED) is
// retried with the same generated request_id.
TEST_F(CliBinaryTest, SubmitRetriesCreateWithTheSameRequestId) {
  tasks_.set_final(Final(crucible::v1::TASK_STATE_QUEUED,
                         crucible::v1::TERMINATION_REASON_UNSPECIFIED, 0));
  for (grpc::StatusCode code : {grpc::UNAVAILABLE, grpc::DEADLINE_EXCEEDED}) {
    SCOPED_TRACE(code);
    const size_t before = tasks_.created().size();
    tasks_.LoseAnswers(2, grpc::Status(code, "lost"));
    testing_util::CommandResult r =
        Crucible({"--server", address_, "submit", "--detach", "--image",
                  "busybox", "true"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "task-1\n");
    std::vector<crucible::v1::CreateTaskRequest> created = tasks_.created();
    ASSERT_EQ(created.size(), before + 3);
    EXPECT_FALSE(created[before].request_id().empty());
    EXPECT_EQ(created[before + 1].request_id(), created[before].request_id());
    EXPECT_EQ(created[before + 2].request_id(), created[before].request_id());
  }
  // Two submits are two tasks: each has its own request_id.
  ASSERT_GE(tasks_.created().size(), 6u);
  EXPECT_NE(tasks_.created()[0].request_id(), tasks_.created()[3].request_id());
}

TEST_F(CliBinaryTest, SubmitGivesUpAfterAFewAttemptsAndNeverRetriesAUserError) {
  tasks_.LoseAnswers(100, grpc::Status(grpc::UNAVAILABLE, "down"));
  testing_util::CommandResult r =
      Crucible({"--server", address_, "submit", "--detach", "--image",
                "busybox", "--request-id", "mine", "true"});
  EXPECT_NE(r.exit_code, 0);
  std::vector<crucible::v1::CreateTaskRequest> created = tasks_.created();
  EXPECT_EQ(created.size(), 4u);
  for (const auto& c : created) EXPECT_EQ(c.request_id(), "mine");

  tasks_.LoseAnswers(0, grpc::Status::OK);
  tasks_.set_create_error(
      grpc::Status(grpc::ALREADY_EXISTS, "request_id reused"));
  r = Crucible({"--server", address_, "submit", "--detach", "--image",
                "busybox", "true"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(tasks_.created().size(), created.size() + 1);
}

TEST_F(CliBinaryTest, ServerRefusalIsPrintedWithItsCodeName) {
  tasks_.set_create_error(
      grpc::Status(grpc::INVALID_ARGUMENT, "image is required"));
  testing_util::CommandResult r =
      Crucible({"--server", address_, "submit", "--image", "x", "--", "true"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "crucible: INVALID_ARGUMENT: image is required\n");
}

TEST_F(CliBinaryTest, GetJsonAndNotFound) {
  tasks_.set_final(Final(crucible::v1::TASK_STATE_SUCCEEDED,
                         crucible::v1::TERMINATION_REASON_EXITED, 0));
  testing_util::CommandResult r =
      Crucible({"--server", address_, "get", "task-1", "-o", "json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("{\"id\":\"task-1\""));
  EXPECT_THAT(r.out, HasSubstr("\"state\":\"TASK_STATE_SUCCEEDED\""));
  r = Crucible({"--server", address_, "get", "nope"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "crucible: NOT_FOUND: no such task\n");
}

TEST_F(CliBinaryTest, TokenIsSentAsBearerMetadataFromFlagOrEnvironment) {
  tasks_.set_final(Final(crucible::v1::TASK_STATE_SUCCEEDED,
                         crucible::v1::TERMINATION_REASON_EXITED, 0));
  testing_util::CommandResult r =
      Crucible({"--server", address_, "get", "task-1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(tasks_.last_authorization(), "(none)");
  r = Crucible({"--server", address_, "--token", "s3cret", "get", "task-1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(tasks_.last_authorization(), "Bearer s3cret");
  absl::StatusOr<testing_util::CommandResult> env = testing_util::RunCommand(
      {testing_util::BinaryPath("crucible"), "get", "task-1"},
      absl::Seconds(30),
      {"CRUCIBLE_SERVER=" + address_, "CRUCIBLE_TOKEN=from-env"});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->exit_code, 0) << env->err;
  EXPECT_EQ(tasks_.last_authorization(), "Bearer from-env");
}

TEST_F(CliBinaryTest,
       TlsToAPlaintextServerFailsAndAMissingCaFileIsAUsageError) {
  testing_util::CommandResult r =
      Crucible({"--server", address_, "--tls", "get", "task-1"});
  EXPECT_EQ(r.exit_code, 69) << r.err;
  EXPECT_THAT(r.err, StartsWith("crucible: UNAVAILABLE: "));
  r = Crucible(
      {"--server", address_, "--ca-cert", "/nonexistent.pem", "get", "task-1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("/nonexistent.pem"));
}

TEST_F(CliBinaryTest, ListPrintsATable) {
  tasks_.set_final(Final(crucible::v1::TASK_STATE_SUCCEEDED,
                         crucible::v1::TERMINATION_REASON_EXITED, 0));
  testing_util::CommandResult r = Crucible({"--server", address_, "list"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("ID "));
  EXPECT_THAT(r.out, HasSubstr("task-1  SUCCEEDED  0 "));
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A task that ended with three artifacts asked for: out/a.txt collected
// (served in two chunks), big.bin over the limit, missing.txt not found.
Task TaskWithArtifacts(const std::string& a_txt) {
  Task t = Final(crucible::v1::TASK_STATE_SUCCEEDED,
                 crucible::v1::TERMINATION_REASON_EXITED, 0);
  t.mutable_spec()->add_artifacts("out/*");
  t.mutable_spec()->add_artifacts("big.bin");
  t.mutable_spec()->add_artifacts("missing.txt");
  crucible::v1::TaskResult* r = t.mutable_result();
  *r->add_artifacts() = Collected("out/a.txt", a_txt);
  crucible::v1::ArtifactInfo* big = r->add_artifacts();
  big->set_path("big.bin");
  big->set_status(crucible::v1::ARTIFACT_STATUS_SKIPPED_OVER_LIMIT);
  big->set_size_bytes(9000000);
  crucible::v1::ArtifactInfo* missing = r->add_artifacts();
  missing->set_path("missing.txt");
  missing->set_status(crucible::v1::ARTIFACT_STATUS_NOT_FOUND);
  return t;
}

TEST_F(CliBinaryTest, ArtifactsListsWhatBecameOfEachWithItsChecksum) {
  tasks_.set_final(TaskWithArtifacts("hello\n"));
  testing_util::CommandResult r =
      Crucible({"--server", address_, "artifacts", "task-1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            absl::StrCat("out/a.txt (6 bytes, sha256 ", Sha256Hex("hello\n"),
                         ")\n"
                         "big.bin (9000000 bytes, skipped: over the "
                         "limit)\n"
                         "missing.txt (not found)\n"));
  EXPECT_EQ(r.err, "");
  r = Crucible({"--server", address_, "-o", "json", "artifacts", "task-1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("{\"path\":\"out/a.txt\",\"status\":"
                                "\"ARTIFACT_STATUS_COLLECTED\",\"sizeBytes\":"
                                "\"6\",\"sha256\":\""));
  EXPECT_TRUE(tasks_.artifact_requests().empty());

  // A task that asked for none, or whose attempt has not ended.
  tasks_.set_final(Final(crucible::v1::TASK_STATE_SUCCEEDED,
                         crucible::v1::TERMINATION_REASON_EXITED, 0));
  r = Crucible({"--server", address_, "artifacts", "task-1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, HasSubstr("asked for no artifacts"));
  Task running = TaskWithArtifacts("x");
  running.set_state(crucible::v1::TASK_STATE_RUNNING);
  running.clear_result();
  tasks_.set_final(running);
  r = Crucible({"--server", address_, "artifacts", "task-1", "--out",
                ::testing::TempDir() + "/never"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("crucible: FAILED_PRECONDITION: task task-1 "
                                "is RUNNING"));
  EXPECT_FALSE(std::filesystem::exists(::testing::TempDir() + "/never"));
}

// --out writes each collected artifact under DIR (the chunks in order),
// prints its path, says on stderr which were not collected and exits 0;
// --attempt is passed on; an outage is retried.
TEST_F(CliBinaryTest, ArtifactsOutWritesTheCollectedOnesAndWarnsOfTheRest) {
  const std::string bytes = std::string(100000, 'a') + "tail";
  tasks_.set_final(TaskWithArtifacts(bytes));
  tasks_.AddArtifact({Collected("out/a.txt", bytes),
                      {bytes.substr(0, 65536), bytes.substr(65536)}});
  tasks_.set_artifact_outages(1);
  const std::string dir = ::testing::TempDir() + "/cli-artifacts-out";
  std::filesystem::remove_all(dir);
  testing_util::CommandResult r =
      Crucible({"--server", address_, "artifacts", "task-1", "--out", dir,
                "--attempt", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, dir + "/out/a.txt\n");
  EXPECT_EQ(r.err,
            "crucible: not collected: big.bin (9000000 bytes, skipped: over "
            "the limit)\n"
            "crucible: not collected: missing.txt (not found)\n");
  EXPECT_EQ(ReadAll(dir + "/out/a.txt"), bytes);
  std::vector<crucible::v1::GetArtifactRequest> asked =
      tasks_.artifact_requests();
  ASSERT_EQ(asked.size(), 2u);  // the outage, then the download
  for (const auto& request : asked) {
    EXPECT_EQ(request.task_id(), "task-1");
    EXPECT_EQ(request.path(), "out/a.txt");
    EXPECT_EQ(request.attempt(), 2);
  }

  r = Crucible({"--server", address_, "-o", "json", "artifacts", "task-1",
                "--out", dir});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"path\":\"out/a.txt\""));
  EXPECT_THAT(r.out, HasSubstr("\"file\":\"" + dir + "/out/a.txt\"}\n"));
  EXPECT_EQ(tasks_.artifact_requests().back().attempt(), 0);
}

// Bytes that do not match the announced SHA-256 or size, a path out of
// DIR, an artifact the server does not have: each an error, no file left,
// the others still written, exit 1.
TEST_F(CliBinaryTest, ArtifactsOutRefusesBadBytesAndPathsAndLeavesNoFile) {
  Task t = TaskWithArtifacts("good\n");
  for (const char* path :
       {"sha.bin", "short.bin", "gone.bin", "../evil", "/tmp/evil"}) {
    *t.mutable_result()->add_artifacts() = Collected(path, "right");
  }
  tasks_.set_final(t);
  tasks_.AddArtifact({Collected("out/a.txt", "good\n"), {"go", "od\n"}});
  tasks_.AddArtifact({Collected("sha.bin", "right"), {"wrong"}});
  tasks_.AddArtifact({Collected("short.bin", "right"), {"righ"}});
  tasks_.AddArtifact({Collected("../evil", "right"), {"right"}});
  tasks_.AddArtifact({Collected("/tmp/evil", "right"), {"right"}});
  const std::string parent = ::testing::TempDir() + "/cli-artifacts-bad";
  std::filesystem::remove_all(parent);
  const std::string dir = parent + "/out-dir";
  testing_util::CommandResult r =
      Crucible({"--server", address_, "artifacts", "task-1", "--out", dir});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.out, dir + "/out/a.txt\n");
  EXPECT_EQ(ReadAll(dir + "/out/a.txt"), "good\n");
  EXPECT_THAT(r.err, HasSubstr("crucible: DATA_LOSS: artifact sha.bin: "));
  EXPECT_THAT(r.err, HasSubstr("crucible: DATA_LOSS: artifact short.bin: "));
  EXPECT_THAT(r.err,
              HasSubstr("crucible: NOT_FOUND: artifact gone.bin: no such"));
  EXPECT_THAT(r.err, HasSubstr("crucible: INVALID_ARGUMENT: artifact path "
                               "\"../evil\" has an empty"));
  EXPECT_THAT(r.err, HasSubstr("crucible: INVALID_ARGUMENT: artifact path "
                               "\"/tmp/evil\" is absolute"));
  // Only out/a.txt under DIR, nothing beside it; the refused paths were
  // never asked for.
  std::vector<std::string> tree;
  for (const auto& e : std::filesystem::recursive_directory_iterator(parent))
    tree.push_back(std::filesystem::relative(e.path(), parent).string());
  std::sort(tree.begin(), tree.end());
  EXPECT_THAT(tree, testing::ElementsAre("out-dir", "out-dir/out",
                                         "out-dir/out/a.txt"));
  for (const auto& request : tasks_.artifact_requests()) {
    EXPECT_THAT(request.path(), testing::Not(HasSubstr("evil")));
  }
}

// submit --out: once the task has ended, its artifacts are written; the
// files written are said on stderr (stdout is the task's); the task's exit
// code wins.
TEST_F(CliBinaryTest, SubmitOutFetchesTheArtifactsOnceTheTaskHasEnded) {
  Task t = TaskWithArtifacts("report\n");
  t.set_state(crucible::v1::TASK_STATE_FAILED);
  t.mutable_result()->set_exit_code(3);
  tasks_.set_final(t);
  tasks_.AddChunk(crucible::v1::OUTPUT_STREAM_STDOUT, "hi\n");
  tasks_.AddArtifact({Collected("out/a.txt", "report\n"), {"report\n"}});
  const std::string dir = ::testing::TempDir() + "/cli-submit-out";
  std::filesystem::remove_all(dir);
  testing_util::CommandResult r =
      Crucible({"--server", address_, "submit", "--image", "busybox",
                "--artifact", "out/*", "--out", dir, "--", "true"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(r.out, "hi\n");
  EXPECT_THAT(r.err,
              HasSubstr("crucible: wrote " + dir + "/out/a.txt (7 bytes)\n"));
  EXPECT_THAT(r.err, HasSubstr("crucible: not collected: missing.txt"));
  EXPECT_EQ(ReadAll(dir + "/out/a.txt"), "report\n");

  // A download that fails makes a succeeded task's submit exit 1.
  t.set_state(crucible::v1::TASK_STATE_SUCCEEDED);
  t.mutable_result()->set_exit_code(0);
  *t.mutable_result()->add_artifacts() = Collected("gone.bin", "x");
  tasks_.set_final(t);
  r = Crucible({"--server", address_, "submit", "--image", "busybox",
                "--artifact", "out/*", "--out", dir, "--", "true"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("crucible: NOT_FOUND: artifact gone.bin"));
}

TEST(CliBinaryNoServerTest, UnavailableServerExits69) {
  // Port 1 on loopback: nothing listens there.
  absl::StatusOr<testing_util::CommandResult> r =
      testing_util::RunCommand({testing_util::BinaryPath("crucible"),
                                "--server", "127.0.0.1:1", "get", "x"},
                               absl::Seconds(30));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 69);
  EXPECT_THAT(r->err, StartsWith("crucible: UNAVAILABLE: "));
}

TEST(CliBinaryUsageTest, UsageErrorExits2AndHelpExits0) {
  absl::StatusOr<testing_util::CommandResult> r = testing_util::RunCommand(
      {testing_util::BinaryPath("crucible"), "submit"}, absl::Seconds(30));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 2);
  EXPECT_THAT(r->err, HasSubstr("submit needs --image"));
  r = testing_util::RunCommand({testing_util::BinaryPath("crucible"), "--help"},
                               absl::Seconds(30));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_THAT(r->out, HasSubstr("Exit codes:"));
}

}  // namespace
