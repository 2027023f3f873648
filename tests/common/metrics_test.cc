#include "common/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

namespace common {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsFormatTest, CounterWithLabelsHasHelpTypeAndSeries) {
  MetricsRegistry r;
  auto& runs =
      r.AddCounter("crucible_test_runs_total", "Runs by outcome.", {"outcome"});
  runs.WithLabels({"succeeded"}).Increment();
  runs.WithLabels({"succeeded"}).Increment(2);
  runs.WithLabels({"failed"}).Increment();
  EXPECT_EQ(r.Expose(),
            "# HELP crucible_test_runs_total Runs by outcome.\n"
            "# TYPE crucible_test_runs_total counter\n"
            "crucible_test_runs_total{outcome=\"failed\"} 1\n"
            "crucible_test_runs_total{outcome=\"succeeded\"} 3\n");
}

TEST(MetricsFormatTest, FamilyWithoutLabelsIsExposedAtZeroFromTheStart) {
  MetricsRegistry r;
  r.AddGauge("crucible_test_slots_busy", "Busy slots.");
  EXPECT_EQ(r.Expose(),
            "# HELP crucible_test_slots_busy Busy slots.\n"
            "# TYPE crucible_test_slots_busy gauge\n"
            "crucible_test_slots_busy 0\n");
}

TEST(MetricsFormatTest, FamilyWithLabelsAndNoSeriesHasOnlyItsHeader) {
  MetricsRegistry r;
  r.AddCounter("crucible_test_x_total", "X.", {"a"});
  EXPECT_EQ(r.Expose(),
            "# HELP crucible_test_x_total X.\n"
            "# TYPE crucible_test_x_total counter\n");
}

TEST(MetricsFormatTest, GaugeGoesUpAndDown) {
  MetricsRegistry r;
  Gauge& g = r.AddGauge("crucible_test_depth", "Depth.", {"state", "band"})
                 .WithLabels({"QUEUED", "high"});
  g.Add(3);
  g.Add(-1);
  EXPECT_EQ(g.value(), 2);
  g.Set(-7.5);
  EXPECT_THAT(r.Expose(),
              HasSubstr("crucible_test_depth{state=\"QUEUED\",band=\"high\"} "
                        "-7.5\n"));
}

TEST(MetricsFormatTest, LabelValuesEscapeBackslashQuoteAndNewline) {
  MetricsRegistry r;
  r.AddCounter("crucible_test_esc_total", "E.", {"tenant"})
      .WithLabels({"a\\b\"c\nd"})
      .Increment();
  EXPECT_THAT(r.Expose(),
              HasSubstr("crucible_test_esc_total{tenant=\"a\\\\b\\\"c\\nd\"} "
                        "1\n"));
}

TEST(MetricsFormatTest, HelpEscapesBackslashAndNewlineButNotQuotes) {
  EXPECT_EQ(EscapeHelp("a\\b\n\"c\""), "a\\\\b\\n\"c\"");
  MetricsRegistry r;
  r.AddGauge("crucible_test_help", "line one\nC:\\path \"q\"");
  EXPECT_THAT(r.Expose(), HasSubstr("# HELP crucible_test_help line one\\nC:"
                                    "\\\\path \"q\"\n"));
}

TEST(MetricsFormatTest, ValuesFormatAsThePrometheusParserReadsThem) {
  EXPECT_EQ(FormatMetricValue(0), "0");
  EXPECT_EQ(FormatMetricValue(1234567890123), "1234567890123");
  EXPECT_EQ(FormatMetricValue(-3), "-3");
  EXPECT_EQ(FormatMetricValue(0.1), "0.1");
  EXPECT_EQ(FormatMetricValue(0.0025), "0.0025");
  EXPECT_EQ(FormatMetricValue(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatMetricValue(-std::numeric_limits<double>::infinity()),
            "-Inf");
  EXPECT_EQ(FormatMetricValue(std::nan("")), "NaN");
  EXPECT_EQ(FormatMetricValue(1e300), "1e+300");
  EXPECT_EQ(FormatMetricValue(0.1 + 0.2), "0.30000000000000004");
}

TEST(MetricsHistogramTest, BucketsAreCumulativeWithInfSumAndCount) {
  MetricsRegistry r;
  Histogram& h = r.AddHistogram("crucible_test_wait_seconds", "Wait.", {"call"},
                                {0.25, 1, 10})
                     .WithLabels({"create"});
  h.Observe(0.125);
  h.Observe(0.25);  // le is inclusive: counts in le="0.25"
  h.Observe(0.5);
  h.Observe(20);
  h.ObserveDuration(absl::Milliseconds(2500));
  EXPECT_EQ(r.Expose(),
            "# HELP crucible_test_wait_seconds Wait.\n"
            "# TYPE crucible_test_wait_seconds histogram\n"
            "crucible_test_wait_seconds_bucket{call=\"create\",le=\"0.25\"} 2\n"
            "crucible_test_wait_seconds_bucket{call=\"create\",le=\"1\"} 3\n"
            "crucible_test_wait_seconds_bucket{call=\"create\",le=\"10\"} 4\n"
            "crucible_test_wait_seconds_bucket{call=\"create\",le=\"+Inf\"} "
            "5\n"
            "crucible_test_wait_seconds_sum{call=\"create\"} 23.375\n"
            "crucible_test_wait_seconds_count{call=\"create\"} 5\n");
}

TEST(MetricsHistogramTest, NanAndHugeValuesCountOnlyInTheInfBucket) {
  Histogram h({1, 2});
  h.Observe(std::nan(""));
  h.Observe(1e300);
  const Histogram::Snapshot s = h.Read();
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{0, 0, 2}));
  EXPECT_EQ(s.count(), 2u);
}

TEST(MetricsHistogramTest, WithoutLabelsTheBucketHasOnlyLe) {
  MetricsRegistry r;
  r.AddHistogram("crucible_test_batch", "Batch.", {}, CountBuckets())
      .WithLabels({})
      .Observe(3);
  const std::string text = r.Expose();
  EXPECT_THAT(text, HasSubstr("crucible_test_batch_bucket{le=\"2\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("crucible_test_batch_bucket{le=\"4\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("crucible_test_batch_bucket{le=\"1024\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("crucible_test_batch_bucket{le=\"+Inf\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("crucible_test_batch_sum 3\n"));
  EXPECT_THAT(text, HasSubstr("crucible_test_batch_count 1\n"));
}

TEST(MetricsHistogramTest, DefaultSecondsBucketsIncreaseAndAreExposed) {
  const std::vector<double> b = SecondsBuckets();
  ASSERT_FALSE(b.empty());
  for (size_t i = 1; i < b.size(); ++i) EXPECT_LT(b[i - 1], b[i]);
  MetricsRegistry r;
  r.AddHistogram("crucible_test_s_seconds", "S.").WithLabels({}).Observe(0.3);
  const std::string text = r.Expose();
  EXPECT_THAT(text, HasSubstr("crucible_test_s_seconds_bucket{le=\"0.25\"} 0"));
  EXPECT_THAT(text, HasSubstr("crucible_test_s_seconds_bucket{le=\"0.5\"} 1"));
  EXPECT_THAT(text, HasSubstr("crucible_test_s_seconds_bucket{le=\"0.001\"}"));
}

TEST(MetricsRegistryTest, AddingTheSameFamilyTwiceSharesIt) {
  MetricsRegistry r;
  auto& a = r.AddCounter("crucible_test_shared_total", "S.", {"x"});
  auto& b = r.AddCounter("crucible_test_shared_total", "S.", {"x"});
  EXPECT_EQ(&a, &b);
  Counter& one = a.WithLabels({"1"});
  EXPECT_EQ(&one, &b.WithLabels({"1"}));
  one.Increment();
  EXPECT_EQ(b.WithLabels({"1"}).value(), 1);
  // One HELP line: a family is exposed once.
  const std::string text = r.Expose();
  EXPECT_EQ(text.find("# HELP"), text.rfind("# HELP"));
}

TEST(MetricsRegistryTest, FamiliesAreExposedInTheOrderTheyWereAdded) {
  MetricsRegistry r;
  r.AddGauge("crucible_test_b", "B.");
  r.AddGauge("crucible_test_a", "A.");
  const std::string text = r.Expose();
  EXPECT_LT(text.find("crucible_test_b"), text.find("crucible_test_a"));
}

TEST(MetricsRegistryTest, NegativeCounterIncrementsAreIgnored) {
  MetricsRegistry r;
  Counter& c = r.AddCounter("crucible_test_neg_total", "N.").WithLabels({});
  c.Increment(5);
  c.Increment(-2);
  EXPECT_EQ(c.value(), 5);
}

TEST(MetricsRegistryTest, SeriesPastTheCapShareTheOverflowSeries) {
  MetricsRegistry r;
  auto& family = r.AddCounter("crucible_test_many_total", "M.", {"tenant"});
  for (size_t i = 0; i < kMaxSeriesPerFamily; ++i) {
    family.WithLabels({absl::StrCat("t", i)}).Increment();
  }
  Counter& extra1 = family.WithLabels({"new1"});
  Counter& extra2 = family.WithLabels({"new2"});
  EXPECT_EQ(&extra1, &extra2);
  extra1.Increment();
  extra2.Increment();
  // A series from before the cap is still its own.
  EXPECT_EQ(family.WithLabels({"t7"}).value(), 1);
  const std::string text = r.Expose();
  EXPECT_THAT(text,
              HasSubstr("crucible_test_many_total{tenant=\"_overflow\"} 2\n"));
  EXPECT_THAT(text, Not(HasSubstr("new1")));
}

TEST(MetricsRegistryDeathTest, WrongNumberOfLabelValuesIsAProgrammerBug) {
  MetricsRegistry r;
  auto& family = r.AddCounter("crucible_test_l_total", "L.", {"a", "b"});
  EXPECT_DEATH(family.WithLabels({"x"}), "wrong number of label values");
}

TEST(MetricsRegistryDeathTest, BadNamesAndClashesAreProgrammerBugs) {
  MetricsRegistry r;
  EXPECT_DEATH(r.AddCounter("crucible-bad", "B."), "bad metric name");
  EXPECT_DEATH(r.AddCounter("crucible_ok_total", "B.", {"__reserved"}),
               "bad label name");
  EXPECT_DEATH(r.AddHistogram("crucible_h_seconds", "H.", {"le"}), "'le'");
  r.AddCounter("crucible_twice_total", "T.");
  EXPECT_DEATH(r.AddGauge("crucible_twice_total", "T."), "added twice");
}

// Many threads increment one counter, one gauge and one histogram that
// they looked up once: no update is lost.
TEST(MetricsConcurrencyTest, ConcurrentUpdatesAreAllCounted) {
  MetricsRegistry r;
  auto& counters = r.AddCounter("crucible_test_c_total", "C.", {"k"});
  auto& gauge = r.AddGauge("crucible_test_g", "G.").WithLabels({});
  auto& hist =
      r.AddHistogram("crucible_test_h_seconds", "H.", {}, {0.5}).WithLabels({});
  constexpr int kThreads = 8;
  constexpr int kEach = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Half the threads look the series up each time (the family's lock),
      // the other half keep it.
      Counter& kept = counters.WithLabels({"shared"});
      for (int i = 0; i < kEach; ++i) {
        if (t % 2 == 0) {
          kept.Increment();
        } else {
          counters.WithLabels({"shared"}).Increment();
        }
        gauge.Add(1);
        hist.Observe(i % 2 == 0 ? 0.25 : 1.0);
        if (i % 1000 == 0) (void)r.Expose();  // scrapes race with updates
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(counters.WithLabels({"shared"}).value(), kThreads * kEach);
  EXPECT_EQ(gauge.value(), kThreads * kEach);
  const Histogram::Snapshot s = hist.Read();
  EXPECT_EQ(s.count(), uint64_t{kThreads} * kEach);
  EXPECT_EQ(s.cumulative[0], uint64_t{kThreads} * kEach / 2);
  EXPECT_DOUBLE_EQ(s.sum, kThreads * kEach / 2 * (0.25 + 1.0));
}

}  // namespace
}  // namespace common
