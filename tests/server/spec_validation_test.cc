#include "server/scheduler/spec_validation.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace server {
namespace {

crucible::v1::TaskSpec Valid() {
  crucible::v1::TaskSpec spec;
  spec.set_image("localhost/crucible/busybox:latest");
  spec.add_command("echo");
  spec.add_command("hi");
  (*spec.mutable_env())["A"] = "b";
  (*spec.mutable_labels())["team"] = "x";
  spec.mutable_timeout()->set_seconds(5);
  return spec;
}

// The message must name the field; the code must be INVALID_ARGUMENT.
void ExpectInvalid(const crucible::v1::TaskSpec& spec,
                   const std::string& field) {
  absl::Status s = ValidateTaskSpec(spec);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StartsWith(s.message(), field)) << s.message();
}

TEST(SpecValidationTest, AcceptsAValidSpec) {
  EXPECT_TRUE(ValidateTaskSpec(Valid()).ok());
}

TEST(SpecValidationTest, EmptyImageNamesTheField) {
  crucible::v1::TaskSpec spec = Valid();
  spec.clear_image();
  ExpectInvalid(spec, "spec.image");
  EXPECT_EQ(ValidateTaskSpec(spec).message(), "spec.image: required");
}

TEST(SpecValidationTest, ImageMustFollowTheReferenceGrammar) {
  for (const std::string& image :
       {std::string("   "), std::string("not a valid ref!!"),
        std::string("nul\0inside", 11), std::string("UPPER"),
        std::string("a//b")}) {
    crucible::v1::TaskSpec spec = Valid();
    spec.set_image(image);
    ExpectInvalid(spec, "spec.image");
    EXPECT_TRUE(absl::StrContains(ValidateTaskSpec(spec).message(),
                                  "not a valid image reference"))
        << ValidateTaskSpec(spec);
  }
}

TEST(SpecValidationTest, AnEmptyProgramNameIsInvalid) {
  crucible::v1::TaskSpec spec = Valid();
  spec.clear_command();
  spec.add_command("");
  ExpectInvalid(spec, "spec.command[0]");
  // No command at all runs the image's own.
  spec.clear_command();
  EXPECT_TRUE(ValidateTaskSpec(spec).ok());
}

TEST(SpecValidationTest, NegativeMemoryNamesTheField) {
  crucible::v1::TaskSpec spec = Valid();
  spec.mutable_resources()->set_memory_bytes(-5);
  ExpectInvalid(spec, "spec.resources.memory_bytes");
  EXPECT_EQ(ValidateTaskSpec(spec).message(),
            "spec.resources.memory_bytes: must not be negative (got -5)");
}

TEST(SpecValidationTest, RejectsEachLimit) {
  crucible::v1::TaskSpec spec = Valid();
  spec.set_image(std::string(513, 'a'));
  ExpectInvalid(spec, "spec.image");

  spec = Valid();
  for (int i = 0; i < 1025; ++i) spec.add_command("x");
  ExpectInvalid(spec, "spec.command");

  spec = Valid();
  spec.add_command(std::string(129 << 10, 'x'));
  ExpectInvalid(spec, "spec.command");

  spec = Valid();
  (*spec.mutable_env())["A=B"] = "c";
  ExpectInvalid(spec, "spec.env");

  spec = Valid();
  spec.set_working_dir("relative/dir");
  ExpectInvalid(spec, "spec.working_dir");

  spec = Valid();
  (*spec.mutable_env())[""] = "c";
  ExpectInvalid(spec, "spec.env");

  spec = Valid();
  for (int i = 0; i < 257; ++i)
    (*spec.mutable_env())["V" + std::to_string(i)] = "";
  ExpectInvalid(spec, "spec.env");

  spec = Valid();
  spec.set_stdin(std::string((1 << 20) + 1, 'x'));
  ExpectInvalid(spec, "spec.stdin");

  spec = Valid();
  for (int i = 0; i < 65; ++i)
    (*spec.mutable_labels())["k" + std::to_string(i)] = "v";
  ExpectInvalid(spec, "spec.labels");

  spec = Valid();
  (*spec.mutable_labels())[std::string(64, 'k')] = "v";
  ExpectInvalid(spec, "spec.labels");

  spec = Valid();
  spec.mutable_resources()->set_cpu_millis(-1);
  ExpectInvalid(spec, "spec.resources.cpu_millis");

  spec = Valid();
  spec.mutable_resources()->set_pids_limit(-1);
  ExpectInvalid(spec, "spec.resources.pids_limit");

  spec = Valid();
  spec.mutable_resources()->set_tmpfs_bytes(-1);
  ExpectInvalid(spec, "spec.resources.tmpfs_bytes");

  spec = Valid();
  spec.mutable_timeout()->set_seconds(0);
  ExpectInvalid(spec, "spec.timeout");

  spec = Valid();
  spec.set_max_output_bytes(-1);
  ExpectInvalid(spec, "spec.max_output_bytes");

  spec = Valid();
  spec.mutable_retry_policy()->set_max_attempts(-1);
  ExpectInvalid(spec, "spec.retry_policy.max_attempts");

  spec = Valid();
  spec.mutable_retry_policy()->set_max_attempts(101);
  ExpectInvalid(spec, "spec.retry_policy.max_attempts");
}

crucible::v1::TaskSpec WithFile(const std::string& path,
                                const std::string& content = "x") {
  crucible::v1::TaskSpec spec = Valid();
  crucible::v1::InputFile* f = spec.add_files();
  f->set_path(path);
  f->set_content(content);
  return spec;
}

TEST(SpecValidationTest, AcceptsFilesAndArtifactsUnderTheWorkingDirectory) {
  crucible::v1::TaskSpec spec = WithFile("tests/input.txt");
  crucible::v1::InputFile* run = spec.add_files();
  run->set_path("run.sh");
  run->set_mode(0755);
  spec.add_artifacts("results/*.json");
  spec.add_artifacts("report.txt");
  spec.set_max_artifact_bytes(1 << 20);
  spec.mutable_resources()->set_scratch_bytes(8 << 20);
  EXPECT_TRUE(ValidateTaskSpec(spec).ok()) << ValidateTaskSpec(spec);
}

TEST(SpecValidationTest, InputFilePathsCannotLeaveTheWorkingDirectory) {
  for (const std::string& path : std::vector<std::string>{
           "", "/etc/passwd", "../x", "a/../../x", "a/..", "./a", "a/./b",
           "a//b", "a/", std::string("a\0b", 3), std::string(256, 'n'),
           std::string(1025, 'a')}) {
    absl::Status s = ValidateTaskSpec(WithFile(path));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << path;
    EXPECT_TRUE(absl::StartsWith(s.message(), "spec.files[1].path: ") ||
                absl::StartsWith(s.message(), "spec.files[0].path: "))
        << s.message();
  }
  absl::Status s = ValidateTaskSpec(WithFile("/etc/passwd"));
  EXPECT_TRUE(absl::StrContains(s.message(), "is absolute")) << s;
  s = ValidateTaskSpec(WithFile("a/../b"));
  EXPECT_TRUE(absl::StrContains(s.message(), "only plain names")) << s;
}

TEST(SpecValidationTest, InputFilesMustNotCollide) {
  crucible::v1::TaskSpec spec = WithFile("a");
  spec.add_files()->set_path("a");
  absl::Status s = ValidateTaskSpec(spec);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "named twice")) << s;

  spec = WithFile("dir");
  spec.add_files()->set_path("dir/file");
  s = ValidateTaskSpec(spec);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(
      absl::StrContains(s.message(), "is both a file and the directory of"))
      << s;
}

TEST(SpecValidationTest, InputFileModesAndSizesAreBounded) {
  crucible::v1::TaskSpec spec = WithFile("setuid");
  spec.mutable_files(0)->set_mode(04755);
  ExpectInvalid(spec, "spec.files[0].mode");
  EXPECT_TRUE(absl::StrContains(ValidateTaskSpec(spec).message(), "got 04755"))
      << ValidateTaskSpec(spec);
  spec.mutable_files(0)->set_mode(0777);
  EXPECT_TRUE(ValidateTaskSpec(spec).ok());

  // The files must fit the scratch area the spec asks for.
  spec = WithFile("data", std::string(5000, 'x'));
  spec.mutable_resources()->set_scratch_bytes(4096);
  ExpectInvalid(spec, "spec.files");
  EXPECT_TRUE(absl::StrContains(ValidateTaskSpec(spec).message(),
                                "do not fit spec.resources.scratch_bytes"))
      << ValidateTaskSpec(spec);
  spec.mutable_resources()->set_scratch_bytes(8192);
  EXPECT_TRUE(ValidateTaskSpec(spec).ok()) << ValidateTaskSpec(spec);

  spec = WithFile("big", std::string(kMaxInputBytes, 'x'));
  ExpectInvalid(spec, "spec.files");
  spec = WithFile("fits", std::string(kMaxInputBytes - 4, 'x'));
  EXPECT_TRUE(ValidateTaskSpec(spec).ok()) << ValidateTaskSpec(spec);

  spec = Valid();
  for (int i = 0; i <= kMaxInputFiles; ++i)
    spec.add_files()->set_path("f" + std::to_string(i));
  ExpectInvalid(spec, "spec.files");
}

TEST(SpecValidationTest, ArtifactPatternsStayUnderTheWorkingDirectory) {
  for (const std::string& pattern :
       std::vector<std::string>{"/tmp/*", "../out", "a/../../b", "", "a//b"}) {
    crucible::v1::TaskSpec spec = Valid();
    spec.add_artifacts(pattern);
    ExpectInvalid(spec, "spec.artifacts[0]");
  }
  crucible::v1::TaskSpec spec = Valid();
  for (int i = 0; i <= kMaxArtifactPatterns; ++i) spec.add_artifacts("a");
  ExpectInvalid(spec, "spec.artifacts");

  spec = Valid();
  spec.set_max_artifact_bytes(-1);
  ExpectInvalid(spec, "spec.max_artifact_bytes");
  spec = Valid();
  spec.mutable_resources()->set_scratch_bytes(-1);
  ExpectInvalid(spec, "spec.resources.scratch_bytes");
}

TEST(SpecValidationTest, RequestIdLength) {
  EXPECT_TRUE(ValidateRequestId(std::string(128, 'r')).ok());
  absl::Status s = ValidateRequestId(std::string(129, 'r'));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(s.message(), "request_id"));
}

}  // namespace
}  // namespace server
