// common/utf8.h: what proto3 accepts in a string field, and nothing else.
#include "common/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace common {
namespace {

TEST(Utf8Test, WellFormedSequencesOfEachLength) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii/report.json"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9"));           // U+00E9
  EXPECT_TRUE(IsValidUtf8("\xe2\x82\xac"));          // U+20AC
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x98\x80"));      // U+1F600
  EXPECT_TRUE(IsValidUtf8("\xf4\x8f\xbf\xbf"));      // U+10FFFF
  EXPECT_TRUE(IsValidUtf8(std::string("a\0b", 3)));  // NUL is UTF-8
  EXPECT_EQ(Utf8SequenceLength("\xe2\x82\xac rest"), 3u);
  EXPECT_EQ(Utf8SequenceLength(""), 0u);
}

TEST(Utf8Test, MalformedSequencesAreRefused) {
  for (const std::string bad : {
           "\xff",              // never in UTF-8
           "\x80",              // a lone continuation byte
           "\xc0\xaf",          // overlong '/'
           "\xe0\x80\xaf",      // overlong '/'
           "\xed\xa0\x80",      // a surrogate
           "\xf4\x90\x80\x80",  // above U+10FFFF
           "\xe2\x82",          // cut short
           "ok\xc3",            // cut short at the end
       }) {
    EXPECT_FALSE(IsValidUtf8(bad)) << testing::PrintToString(bad);
  }
}

}  // namespace
}  // namespace common
