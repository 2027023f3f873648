#include "executor/docker/demux.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace docker {
namespace {

std::string Header(uint8_t stream, uint32_t len) {
  std::string h(8, '\0');
  h[0] = static_cast<char>(stream);
  h[4] = static_cast<char>(len >> 24);
  h[5] = static_cast<char>(len >> 16);
  h[6] = static_cast<char>(len >> 8);
  h[7] = static_cast<char>(len);
  return h;
}

std::string Wire(uint8_t stream, const std::string& payload) {
  return Header(stream, payload.size()) + payload;
}

// Joins consecutive pieces of the same stream, which is what a consumer
// sees regardless of how the bytes were split.
std::vector<Frame> Coalesce(const std::vector<Frame>& in) {
  std::vector<Frame> out;
  for (const Frame& f : in) {
    EXPECT_FALSE(f.data.empty());
    if (!out.empty() && out.back().stream == f.stream) {
      out.back().data += f.data;
    } else {
      out.push_back(f);
    }
  }
  return out;
}

TEST(DemuxTest, WholeInput) {
  Demuxer d;
  std::vector<Frame> out;
  ASSERT_TRUE(d.Feed(Wire(1, "hi\n") + Wire(2, "err\n"), out));
  EXPECT_THAT(out, ::testing::ElementsAre(Frame{StreamId::kStdout, "hi\n"},
                                          Frame{StreamId::kStderr, "err\n"}));
  EXPECT_TRUE(d.AtFrameBoundary());
}

TEST(DemuxTest, EverySingleSplitPointAndPairOfSplitPoints) {
  const std::string payload_a = "stdout line\n";
  const std::string payload_b(300, 'e');
  const std::string wire =
      Wire(1, payload_a) + Wire(2, payload_b) + Wire(1, "") + Wire(1, "x");
  const std::vector<Frame> want = {{StreamId::kStdout, payload_a},
                                   {StreamId::kStderr, payload_b},
                                   {StreamId::kStdout, "x"}};
  for (size_t i = 0; i <= wire.size(); ++i) {
    for (size_t j = i; j <= wire.size(); ++j) {
      Demuxer d;
      std::vector<Frame> out;
      ASSERT_TRUE(d.Feed(wire.substr(0, i), out));
      ASSERT_TRUE(d.Feed(wire.substr(i, j - i), out));
      ASSERT_TRUE(d.Feed(wire.substr(j), out));
      ASSERT_EQ(Coalesce(out), want) << "splits at " << i << " and " << j;
      ASSERT_TRUE(d.AtFrameBoundary());
    }
  }
}

TEST(DemuxTest, ByteByByte) {
  const std::string wire = Wire(2, "abc") + Wire(1, "defg");
  Demuxer d;
  std::vector<Frame> out;
  for (char c : wire) {
    ASSERT_TRUE(d.Feed(std::string(1, c), out));
  }
  EXPECT_EQ(Coalesce(out), (std::vector<Frame>{{StreamId::kStderr, "abc"},
                                               {StreamId::kStdout, "defg"}}));
}

TEST(DemuxTest, PayloadEmittedBeforeFrameCompletes) {
  Demuxer d;
  std::vector<Frame> out;
  ASSERT_TRUE(d.Feed(Header(1, 10) + "hello", out));
  EXPECT_THAT(out, ::testing::ElementsAre(Frame{StreamId::kStdout, "hello"}));
  EXPECT_FALSE(d.AtFrameBoundary());
}

TEST(DemuxTest, LargeLengthUsesAllFourBytes) {
  std::string payload(70000, 'z');
  Demuxer d;
  std::vector<Frame> out;
  ASSERT_TRUE(d.Feed(Wire(1, payload), out));
  EXPECT_EQ(Coalesce(out), (std::vector<Frame>{{StreamId::kStdout, payload}}));
}

TEST(DemuxTest, BadStreamByteFailsAndStaysFailed) {
  Demuxer d;
  std::vector<Frame> out;
  EXPECT_FALSE(d.Feed(Wire(7, "x"), out));
  EXPECT_TRUE(d.failed());
  EXPECT_FALSE(d.error().empty());
  EXPECT_FALSE(d.Feed(Wire(1, "y"), out));
  EXPECT_TRUE(out.empty());
}

TEST(DemuxTest, NonZeroPaddingFails) {
  std::string h = Header(1, 1);
  h[2] = 1;
  Demuxer d;
  std::vector<Frame> out;
  EXPECT_FALSE(d.Feed(h + "x", out));
}

}  // namespace
}  // namespace docker
