#include "common/sha256.h"

#include <string>

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace common {
namespace {

// FIPS 180-2's examples.
TEST(Sha256Test, DigestsOfKnownInputs) {
  EXPECT_EQ(Sha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, PiecesDigestAsTheWholeAndTheObjectStartsOver) {
  std::string whole(200000, '\0');
  for (size_t i = 0; i < whole.size(); ++i) whole[i] = static_cast<char>(i * 7);
  Sha256 sha;
  for (size_t off = 0; off < whole.size(); off += 65536) {
    sha.Update(absl::string_view(whole).substr(off, 65536));
  }
  EXPECT_EQ(sha.HexDigest(), Sha256Hex(whole));
  sha.Update("abc");
  EXPECT_EQ(sha.HexDigest(), Sha256Hex("abc"));
}

TEST(Sha256Test, AMovedObjectKeepsItsState) {
  Sha256 a;
  a.Update("a");
  Sha256 b = std::move(a);
  b.Update("bc");
  EXPECT_EQ(b.HexDigest(), Sha256Hex("abc"));
}

}  // namespace
}  // namespace common
