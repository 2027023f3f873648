// CollectArtifacts over a scripted download (the real engine's are in
// scratch_engine_test.cc): the archive is read as it comes, never held;
// artifacts are listed by the first pattern each matched, their bytes sent
// in 64 KiB chunks in the archive's order with their SHA-256; past the
// limit, first come first kept; a download that breaks leaves the artifact
// it cut INCOMPLETE and claims no path missing.
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/sha256.h"
#include "executor/policy/container_policy.h"
#include "executor/runner/scratch_area.h"
#include "executor/runner/tar.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_engine.h"

namespace runner {
namespace {

using crucible::v1::ArtifactInfo;

class Sink : public RunSink {
 public:
  void OnStarted(const crucible::v1::RunStarted&) override {}
  void OnOutput(crucible::v1::OutputChunk) override {}
  void OnArtifact(crucible::v1::ArtifactChunk chunk) override {
    chunks.push_back(std::move(chunk));
  }
  // Each path's bytes, checking that its chunks come in order.
  std::map<std::string, std::string> Files() const {
    std::map<std::string, std::string> files;
    for (const crucible::v1::ArtifactChunk& c : chunks) {
      std::string& f = files[c.path()];
      EXPECT_EQ(c.offset(), static_cast<int64_t>(f.size())) << c.path();
      EXPECT_LE(c.data().size(), 65536u);
      f += c.data();
    }
    return files;
  }
  std::vector<crucible::v1::ArtifactChunk> chunks;
};

class ScratchCollectTest : public ::testing::Test {
 protected:
  ScratchCollectTest() {
    plan_.name = "crucible-r1";
    plan_.scratch_dir = "/work";
    plan_.max_artifact_bytes = 1 << 20;
    plan_.resources.set_scratch_bytes(8 << 20);
  }
  // The archive of `files` as Podman sends DIR/.: names under "./".
  void Serve(const std::vector<TarFile>& files,
             absl::Status end = absl::OkStatus(), size_t cut_at = 0) {
    std::vector<TarFile> dotted = files;
    for (TarFile& f : dotted) f.path = "./" + f.path;
    auto tar = BuildTar(dotted, 1, 1);
    ASSERT_TRUE(tar.ok()) << tar.status();
    engine_.SetArchive(cut_at > 0 ? tar->substr(0, cut_at) : *tar, end, 7);
  }
  std::vector<std::string> Paths() const {
    std::vector<std::string> paths;
    for (const ArtifactInfo& a : result_.artifacts()) paths.push_back(a.path());
    return paths;
  }
  const ArtifactInfo& Info(const std::string& path) const {
    for (const ArtifactInfo& a : result_.artifacts()) {
      if (a.path() == path) return a;
    }
    static const ArtifactInfo* none = new ArtifactInfo;
    ADD_FAILURE() << path << " not listed";
    return *none;
  }

  testing_util::FakeEngine engine_;
  policy::ContainerPlan plan_;
  crucible::v1::TaskSpec spec_;
  Sink sink_;
  crucible::v1::TaskResult result_;
};

TEST_F(ScratchCollectTest, CollectsAsTheDownloadComesListedInPatternOrder) {
  std::string big;
  for (int i = 0; i < 150000; ++i) big.push_back(static_cast<char>(i * 13));
  Serve({{.path = "notes.txt", .content = "not asked"},
         {.path = "out/b.json", .content = big},
         {.path = "out/empty.json", .content = ""},
         {.path = "report.txt", .content = "done\n"},
         {.path = "out/a.json", .content = "{}"}});
  for (const char* p : {"report.txt", "out/*.json", "missing.txt"}) {
    spec_.add_artifacts(p);
  }
  CollectArtifacts(engine_, plan_, spec_, sink_, result_);
  EXPECT_EQ(result_.error_message(), "");
  EXPECT_EQ(Paths(), (std::vector<std::string>{"report.txt", "out/b.json",
                                               "out/empty.json", "out/a.json",
                                               "missing.txt"}));
  std::map<std::string, std::string> files = sink_.Files();
  EXPECT_EQ(files.size(), 4u);
  EXPECT_TRUE(files["out/b.json"] == big);
  EXPECT_EQ(files["out/empty.json"], "");
  EXPECT_EQ(files["report.txt"], "done\n");
  for (const auto& [path, bytes] : files) {
    EXPECT_EQ(Info(path).status(), crucible::v1::ARTIFACT_STATUS_COLLECTED);
    EXPECT_EQ(Info(path).size_bytes(), static_cast<int64_t>(bytes.size()));
    EXPECT_EQ(Info(path).sha256(), common::Sha256Hex(bytes));
  }
  EXPECT_EQ(Info("missing.txt").status(),
            crucible::v1::ARTIFACT_STATUS_NOT_FOUND);
  // The bytes went in the archive's order: b.json's three chunks first.
  ASSERT_GE(sink_.chunks.size(), 3u);
  EXPECT_EQ(sink_.chunks[0].path(), "out/b.json");
  EXPECT_EQ(sink_.chunks[2].offset(), 131072);
}

TEST_F(ScratchCollectTest, PastTheLimitFirstComeFirstKept) {
  plan_.max_artifact_bytes = 1000;
  Serve({{.path = "b.bin", .content = std::string(900, 'b')},
         {.path = "a.bin", .content = std::string(200, 'a')},
         {.path = "c.bin", .content = std::string(100, 'c')}});
  spec_.add_artifacts("*.bin");
  CollectArtifacts(engine_, plan_, spec_, sink_, result_);
  EXPECT_EQ(Info("b.bin").status(), crucible::v1::ARTIFACT_STATUS_COLLECTED);
  EXPECT_EQ(Info("a.bin").status(),
            crucible::v1::ARTIFACT_STATUS_SKIPPED_OVER_LIMIT);
  EXPECT_EQ(Info("c.bin").status(), crucible::v1::ARTIFACT_STATUS_COLLECTED);
  EXPECT_EQ(sink_.Files().count("a.bin"), 0u);
}

TEST_F(ScratchCollectTest, ABrokenDownloadLeavesTheCutArtifactIncomplete) {
  // Cut inside b.bin's bytes: a.bin whole, b.bin begun, c.bin never seen.
  Serve({{.path = "a.bin", .content = std::string(600, 'a')},
         {.path = "b.bin", .content = std::string(5000, 'b')},
         {.path = "c.bin", .content = "c"}},
        absl::UnavailableError("engine went away"), 512 * 4 + 1000);
  spec_.add_artifacts("*.bin");
  spec_.add_artifacts("c.bin");
  CollectArtifacts(engine_, plan_, spec_, sink_, result_);
  EXPECT_TRUE(absl::StrContains(result_.error_message(),
                                "artifacts not collected: engine went away"))
      << result_.error_message();
  EXPECT_EQ(Paths(), (std::vector<std::string>{"a.bin", "b.bin"}));
  EXPECT_EQ(Info("a.bin").status(), crucible::v1::ARTIFACT_STATUS_COLLECTED);
  EXPECT_EQ(Info("b.bin").status(), crucible::v1::ARTIFACT_STATUS_INCOMPLETE);
  EXPECT_EQ(Info("b.bin").sha256(), "");
}

TEST_F(ScratchCollectTest, AMalformedArchiveIsNotedAndAnOversizedOneStopped) {
  engine_.SetArchive(std::string(512, 'x'));
  spec_.add_artifacts("*");
  CollectArtifacts(engine_, plan_, spec_, sink_, result_);
  EXPECT_TRUE(absl::StrContains(result_.error_message(),
                                "artifacts not collected: tar: malformed"))
      << result_.error_message();

  result_.Clear();
  plan_.resources.set_scratch_bytes(0);  // the archive may be 32 MiB
  Serve({{.path = "big", .content = std::string((32 << 20) + 1, 'x')}});
  CollectArtifacts(engine_, plan_, spec_, sink_, result_);
  EXPECT_TRUE(absl::StrContains(result_.error_message(), "is larger than"))
      << result_.error_message();
}

}  // namespace
}  // namespace runner
