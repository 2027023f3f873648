// The scratch area's tar archives (executor/runner/tar.h): what goes up
// parses back, long paths included; the PAX and GNU long names engines send
// are applied; malformed archives are refused; the guard's strict reading
// takes only plain ustar files and directories.
#include "executor/runner/tar.h"

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"

namespace runner {
namespace {

TEST(TarTest, BuiltArchivesParseBackWithTheirDirectories) {
  const std::string deep =
      absl::StrCat(std::string(120, 'd'), "/", std::string(90, 'f'));
  std::vector<TarFile> files = {
      {.path = "a/b/c.txt", .content = "hello", .mode = 0600},
      {.path = "top", .content = std::string(1000, 'x')},
      {.path = deep, .content = ""}};
  auto tar = BuildTar(files, 65534, 65534);
  ASSERT_TRUE(tar.ok()) << tar.status();
  EXPECT_EQ(tar->size() % 512, 0u);
  auto entries = ParseTar(*tar);
  ASSERT_TRUE(entries.ok()) << entries.status();
  std::vector<std::string> paths;
  for (const TarEntry& e : *entries) paths.push_back(e.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"a", "a/b", "a/b/c.txt", "top",
                                             std::string(120, 'd'), deep}));
  EXPECT_EQ((*entries)[0].type, '5');
  EXPECT_EQ((*entries)[2].content, "hello");
  EXPECT_EQ((*entries)[3].content, std::string(1000, 'x'));
  EXPECT_EQ((*entries)[3].size, 1000);
}

TEST(TarTest, PathsAUstarHeaderCannotHoldAreRefused) {
  EXPECT_FALSE(BuildTar({{.path = std::string(101, 'a')}}, 1, 1).ok());
}

TEST(TarTest, PaxAndGnuLongNamesApplyToTheNextEntry) {
  auto base = BuildTar({{.path = "short", .content = "x"}}, 1, 1);
  ASSERT_TRUE(base.ok());
  // A PAX header ('x') naming the next entry.
  const std::string long_name(200, 'p');
  const std::string record_body = absl::StrCat(" path=", long_name, "\n");
  std::string record =
      absl::StrCat(record_body.size() + 3, record_body);  // "203 path=...\n"
  ASSERT_EQ(record.size(), record_body.size() + 3);
  std::string pax(512, '\0');
  std::string octal = absl::StrCat("00000000", record.size() / 64 * 100 +
                                                   record.size() / 8 % 8 * 10 +
                                                   record.size() % 8);
  pax.replace(124, 11, octal.substr(octal.size() - 11));
  pax[156] = 'x';
  std::string data = record;
  data.resize((record.size() + 511) / 512 * 512, '\0');
  auto entries = ParseTar(absl::StrCat(pax, data, *base));
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].path, long_name);
  EXPECT_EQ((*entries)[0].content, "x");
}

// The reader takes the archive in pieces of any size, as the engine sends
// it, and hands over the content only of the entries that want it.
TEST(TarTest, TheReaderTakesAnArchiveInAnyPieces) {
  auto tar = BuildTar(
      {{.path = "a/one", .content = std::string(700, '1')},
       {.path = "a/empty", .content = ""},
       {.path = "skip", .content = "not wanted"},
       {.path = "a/" + std::string(98, 'q') + "/" + std::string(90, 'r'),
        .content = "deep"}},
      1, 1);
  ASSERT_TRUE(tar.ok()) << tar.status();
  auto whole = ParseTar(*tar);
  ASSERT_TRUE(whole.ok()) << whole.status();
  for (size_t piece : {size_t{1}, size_t{7}, size_t{512}, size_t{100000}}) {
    std::vector<TarEntry> got;
    int ends = 0;
    TarReader reader(
        [&](const TarEntry& e) {
          got.push_back(e);
          return e.path != "skip";
        },
        [&](absl::string_view bytes) {
          got.back().content.append(bytes.data(), bytes.size());
        },
        [&] { ++ends; });
    for (size_t off = 0; off < tar->size(); off += piece) {
      ASSERT_TRUE(reader.Feed(absl::string_view(*tar).substr(off, piece)).ok())
          << piece;
    }
    ASSERT_TRUE(reader.Finish().ok());
    ASSERT_EQ(got.size(), whole->size()) << piece;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].path, (*whole)[i].path) << piece;
      EXPECT_EQ(got[i].type, (*whole)[i].type) << piece;
      EXPECT_EQ(got[i].content,
                got[i].path == "skip" ? "" : (*whole)[i].content)
          << piece << " " << got[i].path;
    }
    EXPECT_EQ(ends, 3) << "one end per wanted file, the empty one too";
  }
  // Cut inside an entry: Finish says so.
  TarReader cut([](const TarEntry&) { return true; }, [](absl::string_view) {},
                [] {});
  ASSERT_TRUE(cut.Feed(tar->substr(0, 512 * 3 + 100)).ok());
  EXPECT_FALSE(cut.Finish().ok());
}

TEST(TarTest, MalformedArchivesAreRefused) {
  auto tar = BuildTar({{.path = "f", .content = std::string(600, 'x')}}, 1, 1);
  ASSERT_TRUE(tar.ok());
  EXPECT_FALSE(ParseTar(tar->substr(0, 700)).ok());  // truncated
  std::string bad = *tar;
  bad[124] = 'z';  // size field
  EXPECT_FALSE(ParseTar(bad).ok());
}

// The guard's strict reading (ParsePlainUstar) takes every archive
// BuildTar makes, long paths and modes included, entry for entry as
// ParseTar reads it.
TEST(TarTest, ThePlainUstarReadingTakesWhatBuildTarMakes) {
  const std::string deep =
      absl::StrCat(std::string(120, 'd'), "/", std::string(90, 'f'));
  auto tar = BuildTar({{.path = "a/b/c.txt", .content = "hello", .mode = 0600},
                       {.path = "run.sh", .content = "#!", .mode = 0755},
                       {.path = deep, .content = std::string(513, 'x')}},
                      65534, 65534);
  ASSERT_TRUE(tar.ok()) << tar.status();
  auto strict = ParsePlainUstar(*tar);
  ASSERT_TRUE(strict.ok()) << strict.status();
  auto lenient = ParseTar(*tar);
  ASSERT_TRUE(lenient.ok()) << lenient.status();
  ASSERT_EQ(strict->size(), lenient->size());
  for (size_t i = 0; i < strict->size(); ++i) {
    EXPECT_EQ((*strict)[i].path, (*lenient)[i].path);
    EXPECT_EQ((*strict)[i].type, (*lenient)[i].type);
    EXPECT_EQ((*strict)[i].mode, (*lenient)[i].mode);
    EXPECT_EQ((*strict)[i].content, (*lenient)[i].content);
  }
  EXPECT_EQ((*strict)[3].mode, 0755u);
  EXPECT_EQ((*strict)[5].path, deep);
  auto empty = ParsePlainUstar(std::string(1024, '\0'));
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->empty());
}

// Anything another tar reader could read otherwise, or would make a link
// or a device from, is refused by ParsePlainUstar (the engine-side
// variants are in guard_matrix_test.cc).
TEST(TarTest, ThePlainUstarReadingRefusesExtensionsLinksAndAmbiguity) {
  auto tar = BuildTar({{.path = "f", .content = "x"}}, 1, 1);
  ASSERT_TRUE(tar.ok());
  auto with = [&](size_t offset, const std::string& bytes, bool resum = true) {
    std::string t = *tar;
    t.replace(offset, bytes.size(), bytes);
    if (resum) {
      std::memset(t.data() + 148, ' ', 8);
      unsigned sum = 0;
      for (size_t i = 0; i < 512; ++i) sum += static_cast<unsigned char>(t[i]);
      t.replace(148, 7, absl::StrFormat("%06o", sum) + std::string(1, '\0'));
    }
    return t;
  };
  EXPECT_TRUE(ParsePlainUstar(with(0, "g")).ok());  // the checksum helper
  for (char type : {'1', '2', '3', '4', '6', '7', 'x', 'g', 'L', 'K', 'S'}) {
    EXPECT_FALSE(ParsePlainUstar(with(156, std::string(1, type))).ok()) << type;
  }
  EXPECT_FALSE(ParsePlainUstar(with(257, std::string("ustar  \0", 8))).ok());
  EXPECT_FALSE(ParsePlainUstar(with(124, std::string(1, '\0'))).ok());
  EXPECT_FALSE(ParsePlainUstar(with(124, " ")).ok());
  EXPECT_FALSE(ParsePlainUstar(with(124, std::string(1, '\x80'))).ok());
  EXPECT_FALSE(ParsePlainUstar(with(0, "g", /*resum=*/false)).ok());
  EXPECT_FALSE(ParsePlainUstar(*tar + "x").ok());
  EXPECT_FALSE(ParsePlainUstar(tar->substr(0, 1024)).ok());
  EXPECT_FALSE(ParsePlainUstar(tar->substr(0, 700)).ok());
}

}  // namespace
}  // namespace runner
