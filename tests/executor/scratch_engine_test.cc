// Files in and artifacts out (issue 25) through the real docker-proxy and
// engine guard to the real engine: a task reads its input files and writes
// artifacts that come back byte-identical with their sha256; an artifact
// past the limit is reported SKIPPED_OVER_LIMIT; names a result cannot
// carry and files past the most listed are counted; the scratch area is
// noexec; and nothing is left afterwards: no container, no volume (listed
// on the engine's own socket) and no tmpfs mount in the engine's mount
// namespace.

#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/proto_time.h"
#include "common/sha256.h"
#include "executor/docker/engine_client.h"
#include "executor/policy/container_policy.h"
#include "executor/policy/scratch.h"
#include "executor/runner/runner.h"
#include "gtest/gtest.h"
#include "tests/executor/engine_env.h"
#include "tests/testing/test_stack.h"

namespace runner {
namespace {

using common::Sha256Hex;
using crucible::v1::TerminationReason;

// Keeps output and artifact bytes. Thread-safe.
class Sink : public RunSink {
 public:
  void OnStarted(const crucible::v1::RunStarted&) override {}
  void OnOutput(crucible::v1::OutputChunk chunk) override {
    absl::MutexLock lock(&mu_);
    out_ += chunk.data();
  }
  void OnArtifact(crucible::v1::ArtifactChunk chunk) override {
    absl::MutexLock lock(&mu_);
    std::string& file = artifacts_[chunk.path()];
    EXPECT_EQ(chunk.offset(), static_cast<int64_t>(file.size()));
    file += chunk.data();
  }
  std::string out() {
    absl::MutexLock lock(&mu_);
    return out_;
  }
  std::map<std::string, std::string> artifacts() {
    absl::MutexLock lock(&mu_);
    return artifacts_;
  }

 private:
  absl::Mutex mu_;
  std::string out_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> artifacts_ ABSL_GUARDED_BY(mu_);
};

class ScratchEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_ = testing_util::TestStackFromEnv();
    REQUIRE_TEST_STACK(stack_);
    docker::EngineClientOptions eo;
    eo.docker_host = stack_.docker_host;  // through the proxy and the guard
    auto engine = docker::EngineClient::Create(eo);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
    eo.docker_host = absl::StrCat("unix://", stack_.engine_socket);
    auto raw = docker::EngineClient::Create(eo);
    ASSERT_TRUE(raw.ok()) << raw.status();
    raw_ = *std::move(raw);
    policy::ContainerPolicyOptions po;
    po.executor_id = executor_id_;
    auto policy = policy::ContainerPolicy::Create(po);
    ASSERT_TRUE(policy.ok()) << policy.status();
    policy_ = std::make_unique<policy::ContainerPolicy>(*policy);
    runner_ = std::make_unique<Runner>(*engine_, *policy_,
                                       common::Clock::Real(), RunnerOptions{});
  }

  crucible::v1::RunRequest Request(const std::string& script) {
    crucible::v1::RunRequest r;
    r.set_run_id(absl::StrCat(executor_id_, "-s", ++runs_));
    r.set_task_id("task");
    r.set_attempt(1);
    r.mutable_spec()->set_image(executor_testing::kBusybox);
    r.mutable_spec()->add_command("sh");
    r.mutable_spec()->add_command("-c");
    r.mutable_spec()->add_command(script);
    *r.mutable_spec()->mutable_timeout() =
        common::ToProtoDuration(absl::Seconds(30));
    return r;
  }

  // Nothing of the run `run_id` is left on the engine: its container and
  // volume (asked on the engine's own socket) and any mount of it in the
  // engine's mount namespace.
  void ExpectNothingLeft(const std::string& run_id) {
    const std::string name = policy::ContainerName(run_id);
    auto left = raw_->ListContainers("crucible.executor", executor_id_);
    ASSERT_TRUE(left.ok()) << left.status();
    EXPECT_TRUE(left->empty()) << left->size() << " containers left";
    // RemoveVolume answers OK for a volume that is gone (404): ask directly.
    absl::Status archive = raw_->StreamArchive(
        name, "/work", [](absl::string_view) { return true; });
    EXPECT_EQ(archive.code(), absl::StatusCode::kNotFound);
    std::string volumes = RawGet("/v1.41/volumes");
    EXPECT_FALSE(absl::StrContains(volumes, name)) << volumes;
    const std::string dir =
        stack_.engine_socket.substr(0, stack_.engine_socket.rfind('/'));
    std::ifstream pid_file(dir + "/engine.pid");
    std::string pid;
    if (pid_file >> pid) {
      std::ifstream mounts("/proc/" + pid + "/mountinfo");
      std::stringstream text;
      text << mounts.rdbuf();
      EXPECT_FALSE(absl::StrContains(text.str(), name))
          << "a mount of " << name << " is left in the engine's namespace";
    } else {
      ADD_FAILURE() << "no " << dir << "/engine.pid to check mounts with";
    }
  }

  std::string RawGet(const std::string& path) {
    // The volume list is not part of the Engine interface: curl it.
    std::string cmd = absl::StrCat("curl -s --unix-socket ",
                                   stack_.engine_socket, " http://d", path);
    std::string out;
    if (FILE* p = popen(cmd.c_str(), "r")) {
      char buf[4096];
      size_t n;
      while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
      pclose(p);
    }
    return out;
  }

  testing_util::TestStack stack_;
  const std::string executor_id_ = executor_testing::UniqueExecutorId();
  int runs_ = 0;
  std::unique_ptr<docker::EngineClient> engine_, raw_;
  std::unique_ptr<policy::ContainerPolicy> policy_;
  std::unique_ptr<Runner> runner_;
};

TEST_F(ScratchEngineTest, TaskReadsFilesAndWritesArtifactsByteIdentical) {
  crucible::v1::RunRequest req = Request(
      "cat in/a.txt; ls -ln in/a.txt | awk '{print \"owner\", $3, $4}'; "
      "mkdir -p out && tr a-z A-Z < in/a.txt > out/up.json && "
      "cp in/bin.dat out/bin.json && echo skipped > out/notes.txt");
  std::string binary;
  for (int i = 0; i < 70000; ++i) binary.push_back(static_cast<char>(i * 7));
  auto* f = req.mutable_spec()->add_files();
  f->set_path("in/a.txt");
  f->set_content("hello files\n");
  f = req.mutable_spec()->add_files();
  f->set_path("in/bin.dat");
  f->set_content(binary);
  req.mutable_spec()->add_artifacts("out/*.json");
  req.mutable_spec()->add_artifacts("missing.txt");
  Sink sink;
  auto result = runner_->Run(req, sink, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->reason(), TerminationReason::TERMINATION_REASON_EXITED)
      << result->error_message();
  EXPECT_EQ(result->exit_code(), 0) << sink.out();
  EXPECT_EQ(sink.out(), "hello files\nowner 65534 65534\n");
  ASSERT_EQ(result->artifacts_size(), 3) << result->DebugString();
  EXPECT_EQ(result->artifacts(0).path(), "out/bin.json");
  EXPECT_EQ(result->artifacts(0).status(),
            crucible::v1::ARTIFACT_STATUS_COLLECTED);
  EXPECT_EQ(result->artifacts(0).sha256(), Sha256Hex(binary));
  EXPECT_EQ(result->artifacts(1).path(), "out/up.json");
  EXPECT_EQ(result->artifacts(1).sha256(), Sha256Hex("HELLO FILES\n"));
  EXPECT_EQ(result->artifacts(2).path(), "missing.txt");
  EXPECT_EQ(result->artifacts(2).status(),
            crucible::v1::ARTIFACT_STATUS_NOT_FOUND);
  std::map<std::string, std::string> got = sink.artifacts();
  EXPECT_EQ(got["out/bin.json"], binary);
  EXPECT_EQ(got["out/up.json"], "HELLO FILES\n");
  EXPECT_EQ(got.size(), 2u);
  ExpectNothingLeft(req.run_id());
}

TEST_F(ScratchEngineTest, ArtifactOverTheLimitIsReportedSkipped) {
  crucible::v1::RunRequest req =
      Request("head -c 100 /dev/zero > a.bin; head -c 5000 /dev/zero > b.bin");
  req.mutable_spec()->add_artifacts("*.bin");
  req.mutable_spec()->set_max_artifact_bytes(1000);
  Sink sink;
  auto result = runner_->Run(req, sink, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->artifacts_size(), 2) << result->DebugString();
  EXPECT_EQ(result->artifacts(0).status(),
            crucible::v1::ARTIFACT_STATUS_COLLECTED);
  EXPECT_EQ(result->artifacts(1).path(), "b.bin");
  EXPECT_EQ(result->artifacts(1).status(),
            crucible::v1::ARTIFACT_STATUS_SKIPPED_OVER_LIMIT);
  EXPECT_EQ(result->artifacts(1).size_bytes(), 5000);
  EXPECT_EQ(sink.artifacts().count("b.bin"), 0u);
  ExpectNothingLeft(req.run_id());
}

// A name a result cannot carry (not UTF-8, or too long), and files past
// the most a result lists, are not collected, and the result says how many;
// everything else still is.
TEST_F(ScratchEngineTest, UnlistableAndExcessFilesAreCountedNotCollected) {
  crucible::v1::RunRequest req = Request(
      "mkdir out many && echo bad > \"out/$(printf 'x\\377y')\" && "
      "echo long > out/$(head -c 253 /dev/zero | tr '\\0' l) && "
      "echo ok > out/ok.txt && i=0; while [ $i -lt 1003 ]; do "
      ": > many/f$i; i=$((i+1)); done");
  req.mutable_spec()->add_artifacts("out/*");
  req.mutable_spec()->add_artifacts("many/*");
  Sink sink;
  auto result = runner_->Run(req, sink, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code(), 0) << sink.out();
  // The first 1000 matches the archive brings, each collected whole.
  ASSERT_EQ(result->artifacts_size(), policy::kMaxArtifactsListed);
  std::map<std::string, std::string> got = sink.artifacts();
  EXPECT_EQ(got.size(), static_cast<size_t>(policy::kMaxArtifactsListed));
  for (const crucible::v1::ArtifactInfo& a : result->artifacts()) {
    EXPECT_EQ(a.status(), crucible::v1::ARTIFACT_STATUS_COLLECTED) << a.path();
    ASSERT_EQ(got.count(a.path()), 1u) << a.path();
    EXPECT_EQ(got[a.path()], a.path() == "out/ok.txt" ? "ok\n" : "");
    EXPECT_EQ(a.sha256(), Sha256Hex(got[a.path()]));
  }
  EXPECT_TRUE(absl::StrContains(
      result->error_message(),
      "artifacts: 2 matching files not collected: their names are not UTF-8 "
      "or longer than 255 bytes"))
      << result->error_message();
  EXPECT_TRUE(absl::StrContains(
      result->error_message(),
      "artifacts: 4 more matching files not collected: at most 1000 are"))
      << result->error_message();
  // The whole result fits a message anyone can parse.
  std::string bytes;
  ASSERT_TRUE(result->SerializeToString(&bytes));
  crucible::v1::TaskResult parsed;
  EXPECT_TRUE(parsed.ParseFromString(bytes));
  ExpectNothingLeft(req.run_id());
}

TEST_F(ScratchEngineTest, FilesReceivedOrWrittenCannotBeExecuted) {
  crucible::v1::RunRequest req = Request(
      "./given.sh; echo given=$?; cp /bin/busybox ./bb && chmod +x ./bb; "
      "./bb true; echo written=$?");
  auto* f = req.mutable_spec()->add_files();
  f->set_path("given.sh");
  f->set_content("#!/bin/sh\necho ran\n");
  f->set_mode(0755);
  Sink sink;
  auto result = runner_->Run(req, sink, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(absl::StrContains(sink.out(), "given=126")) << sink.out();
  EXPECT_TRUE(absl::StrContains(sink.out(), "written=126")) << sink.out();
  EXPECT_FALSE(absl::StrContains(sink.out(), "ran")) << sink.out();
  ExpectNothingLeft(req.run_id());
}

}  // namespace
}  // namespace runner
