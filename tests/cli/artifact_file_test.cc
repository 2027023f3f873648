#include "cli/artifact_file.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cli {
namespace {

using crucible::v1::ArtifactChunk;
using crucible::v1::ArtifactInfo;

using common::Sha256Hex;

ArtifactInfo Info(const std::string& path, const std::string& bytes) {
  ArtifactInfo info;
  info.set_path(path);
  info.set_status(crucible::v1::ARTIFACT_STATUS_COLLECTED);
  info.set_size_bytes(static_cast<int64_t>(bytes.size()));
  info.set_sha256(Sha256Hex(bytes));
  return info;
}

ArtifactChunk Chunk(const std::string& path, int64_t offset,
                    const std::string& data) {
  ArtifactChunk chunk;
  chunk.set_path(path);
  chunk.set_offset(offset);
  chunk.set_data(data);
  return chunk;
}

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Every entry under `dir`, relative to it, sorted.
std::vector<std::string> Tree(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    out.push_back(std::filesystem::relative(e.path(), dir).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class ArtifactFileTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir() + "/artifact-file-" +
           testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
  }
  std::string dir_;
};

TEST(CheckArtifactPathTest, OnlyPlainRelativeNames) {
  for (const char* good : {"a", "out/a.txt", "a/b/c", "..a", "a..", ".a/b",
                           "a b", "dir/.hidden", "\\..\\x"}) {
    EXPECT_TRUE(CheckArtifactPath(good).ok()) << good;
  }
  for (const std::string& bad :
       {std::string(""), std::string("/etc/passwd"), std::string("/"),
        std::string(".."), std::string("."), std::string("../x"),
        std::string("a/../../x"), std::string("a/./b"), std::string("a//b"),
        std::string("a/"), std::string("./a"), std::string("a/.."),
        std::string("a\0b", 3)}) {
    EXPECT_EQ(CheckArtifactPath(bad).code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST_F(ArtifactFileTest, ChunksInOrderAreRenamedIntoPlaceOnCommit) {
  const std::string bytes = std::string(70000, 'x') + std::string("\0y", 2);
  absl::StatusOr<std::unique_ptr<ArtifactFile>> file =
      ArtifactFile::Create(dir_, Info("out/deep/big.bin", bytes));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->path(), dir_ + "/out/deep/big.bin");
  // Nothing at the destination before the commit.
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/out/deep/big.bin"));
  ASSERT_TRUE((*file)
                  ->Append(Chunk("out/deep/big.bin", 0, bytes.substr(0, 65536)))
                  .ok());
  ASSERT_TRUE(
      (*file)
          ->Append(Chunk("out/deep/big.bin", 65536, bytes.substr(65536)))
          .ok());
  ASSERT_TRUE((*file)->Commit().ok());
  file->reset();
  EXPECT_EQ(Read(dir_ + "/out/deep/big.bin"), bytes);
  // No temporary file left beside it.
  EXPECT_THAT(Tree(dir_),
              testing::ElementsAre("out", "out/deep", "out/deep/big.bin"));
  // Mode 0666 less the umask, as any file this user makes.
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/out/deep/big.bin").c_str(), &st), 0);
  const mode_t mask = umask(022);
  umask(mask);
  EXPECT_EQ(st.st_mode & 0777, 0666 & ~mask);
}

TEST_F(ArtifactFileTest, AnEmptyFileReplacesOneAlreadyThere) {
  std::filesystem::create_directories(dir_);
  std::ofstream(dir_ + "/a.txt") << "old";
  absl::StatusOr<std::unique_ptr<ArtifactFile>> file =
      ArtifactFile::Create(dir_, Info("a.txt", ""));
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_TRUE((*file)->Commit().ok());
  EXPECT_EQ(Read(dir_ + "/a.txt"), "");
}

TEST_F(ArtifactFileTest, AChecksumOrSizeMismatchLeavesNoFile) {
  std::filesystem::create_directories(dir_);
  std::ofstream(dir_ + "/kept.txt") << "old";
  struct Case {
    std::string name;
    ArtifactInfo info;
    std::string received;
  };
  ArtifactInfo wrong_sha = Info("kept.txt", "hello");
  wrong_sha.set_sha256(Sha256Hex("HELLO"));
  ArtifactInfo longer = Info("new.txt", "hello world");
  for (const Case& c :
       {Case{"sha256", wrong_sha, "hello"}, Case{"short", longer, "hello"}}) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<std::unique_ptr<ArtifactFile>> file =
        ArtifactFile::Create(dir_, c.info);
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_TRUE((*file)->Append(Chunk(c.info.path(), 0, c.received)).ok());
    EXPECT_EQ((*file)->Commit().code(), absl::StatusCode::kDataLoss);
    file->reset();
  }
  // What was there stays; nothing new, no temporary file.
  EXPECT_EQ(Read(dir_ + "/kept.txt"), "old");
  EXPECT_THAT(Tree(dir_), testing::ElementsAre("kept.txt"));
}

TEST_F(ArtifactFileTest, ChunksOutOfOrderOfAnotherPathOrPastTheSizeAreRefused) {
  const ArtifactInfo info = Info("a.bin", "abcdef");
  for (const ArtifactChunk& bad :
       {Chunk("a.bin", 1, "bcdef"), Chunk("b.bin", 0, "abcdef"),
        Chunk("a.bin", 0, "abcdefg")}) {
    absl::StatusOr<std::unique_ptr<ArtifactFile>> file =
        ArtifactFile::Create(dir_, info);
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_EQ((*file)->Append(bad).code(), absl::StatusCode::kDataLoss)
        << bad.DebugString();
  }
  // A file abandoned before its commit leaves nothing.
  EXPECT_THAT(Tree(dir_), testing::IsEmpty());
}

TEST_F(ArtifactFileTest, UnsafePathsAndInfosOfNoCollectedArtifactAreRefused) {
  std::filesystem::create_directories(dir_ + "/in");
  for (const char* path : {"../escape", "/tmp/abs", "a/../../b", "a//b"}) {
    EXPECT_EQ(
        ArtifactFile::Create(dir_ + "/in", Info(path, "x")).status().code(),
        absl::StatusCode::kInvalidArgument)
        << path;
  }
  ArtifactInfo skipped = Info("a", "x");
  skipped.set_status(crucible::v1::ARTIFACT_STATUS_SKIPPED_OVER_LIMIT);
  ArtifactInfo no_sha = Info("a", "x");
  no_sha.clear_sha256();
  ArtifactInfo upper_sha = Info("a", "x");
  upper_sha.set_sha256(std::string(64, 'A'));
  for (const ArtifactInfo& bad : {skipped, no_sha, upper_sha}) {
    EXPECT_EQ(ArtifactFile::Create(dir_ + "/in", bad).status().code(),
              absl::StatusCode::kDataLoss)
        << bad.DebugString();
  }
  // Nothing was made, not even a directory, outside or inside.
  EXPECT_THAT(Tree(dir_), testing::ElementsAre("in"));
}

TEST_F(ArtifactFileTest, AFileWhereADirectoryIsNeededIsAnError) {
  std::filesystem::create_directories(dir_);
  std::ofstream(dir_ + "/out") << "a file";
  absl::StatusOr<std::unique_ptr<ArtifactFile>> file =
      ArtifactFile::Create(dir_, Info("out/a.txt", "x"));
  EXPECT_FALSE(file.ok());
  EXPECT_THAT(file.status().message(), testing::HasSubstr("out/a.txt"));
}

}  // namespace
}  // namespace cli
