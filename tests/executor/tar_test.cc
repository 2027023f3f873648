// The scratch area's tar archives (executor/runner/tar.h): what goes up
// parses back, long paths included; the PAX and GNU long names engines send
// are applied; malformed archives are refused.
#include "executor/runner/tar.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
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

TEST(TarTest, MalformedArchivesAreRefused) {
  auto tar = BuildTar({{.path = "f", .content = std::string(600, 'x')}}, 1, 1);
  ASSERT_TRUE(tar.ok());
  EXPECT_FALSE(ParseTar(tar->substr(0, 700)).ok());  // truncated
  std::string bad = *tar;
  bad[124] = 'z';  // size field
  EXPECT_FALSE(ParseTar(bad).ok());
}

}  // namespace
}  // namespace runner
