#include "common/metrics_http.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/metrics.h"
#include "tests/testing/http_get.h"

namespace common {
namespace {

using ::testing::HasSubstr;
using testing_util::HttpRequest;

constexpr absl::Duration kTimeout = absl::Seconds(10);

class MetricsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_.AddCounter("crucible_test_runs_total", "Runs.", {"outcome"})
        .WithLabels({"succeeded"})
        .Increment(4);
    auto server = MetricsServer::Start("127.0.0.1:0", registry_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    ASSERT_GT(server_->port(), 0);
  }
  std::string Url(const std::string& path) {
    return absl::StrCat("http://127.0.0.1:", server_->port(), path);
  }

  MetricsRegistry registry_;
  std::unique_ptr<MetricsServer> server_;
};

TEST_F(MetricsServerTest, GetMetricsServesTheRegistryAsText004) {
  auto reply = HttpRequest(Url("/metrics"), kTimeout);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->code, 200);
  EXPECT_EQ(reply->content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(reply->body, registry_.Expose());
  EXPECT_THAT(reply->body,
              HasSubstr("crucible_test_runs_total{outcome=\"succeeded\"} 4\n"));
}

TEST_F(MetricsServerTest, EachScrapeReadsTheValuesOfNow) {
  registry_.AddGauge("crucible_test_busy", "Busy.").WithLabels({}).Set(2);
  auto first = testing_util::ScrapeMetrics(server_->port(), kTimeout);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(testing_util::SampleValue(*first, "crucible_test_busy"), 2);
  registry_.AddGauge("crucible_test_busy", "Busy.").WithLabels({}).Set(5);
  auto second = testing_util::ScrapeMetrics(server_->port(), kTimeout);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(testing_util::SampleValue(*second, "crucible_test_busy"), 5);
}

TEST_F(MetricsServerTest, OtherPathsAre404AndOtherMethods405) {
  auto other = HttpRequest(Url("/"), kTimeout);
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->code, 404);
  auto post = HttpRequest(Url("/metrics"), kTimeout, "POST");
  ASSERT_TRUE(post.ok()) << post.status();
  EXPECT_EQ(post->code, 405);
  auto del = HttpRequest(Url("/metrics"), kTimeout, "DELETE");
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_EQ(del->code, 405);
}

TEST(MetricsServerStartTest, APortInUseIsUnavailable) {
  MetricsRegistry registry;
  auto first = MetricsServer::Start("127.0.0.1:0", registry);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = MetricsServer::Start(
      absl::StrCat("127.0.0.1:", (*first)->port()), registry);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
}

TEST(MetricsServerStartTest, AnAddressWithoutAPortIsInvalid) {
  MetricsRegistry registry;
  EXPECT_EQ(MetricsServer::Start("127.0.0.1", registry).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MetricsServer::Start("127.0.0.1:http", registry).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MetricsServer::Start("127.0.0.1:70000", registry).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MetricsServerStartTest, AnEmptyAddressServesNothing) {
  auto none = MetricsServer::StartIfSet("");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(*none, nullptr);
}

TEST(MetricsServerStartTest, StopsAtOnceAfterStartAndFreesThePort) {
  MetricsRegistry registry;
  int port = 0;
  {
    auto server = MetricsServer::Start("127.0.0.1:0", registry);
    ASSERT_TRUE(server.ok()) << server.status();
    port = (*server)->port();
  }  // destroyed right after the start
  auto again = MetricsServer::Start(absl::StrCat("127.0.0.1:", port), registry);
  EXPECT_TRUE(again.ok()) << again.status();
}

}  // namespace
}  // namespace common
