#ifndef CRUCIBLE_COMMON_METRICS_H_
#define CRUCIBLE_COMMON_METRICS_H_

// Prometheus metrics, small: counters, gauges and histograms grouped in
// families with a fixed list of label names, exposed in the text format
// 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// The hot path never takes a registry-wide lock: a family's WithLabels
// takes that family's lock once and returns a series that stays valid as
// long as the registry; callers look the series up once and keep it.
// Counter and gauge updates are relaxed atomics; Histogram::Observe is a
// few relaxed atomics (its bucket, count, sum).
//
//   common::MetricsRegistry& r = common::DefaultMetricsRegistry();
//   common::Counter& ok = r.AddCounter("crucible_x_runs_total",
//       "Runs by outcome.", {"outcome"}).WithLabels({"succeeded"});
//   ok.Increment();

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace common {

// A value that only goes up (restarts reset it). Thread-safe, lock-free.
class Counter {
 public:
  // `v` must be >= 0 (a negative one is ignored).
  void Increment(double v = 1.0) {
    if (v > 0) value_.fetch_add(v, std::memory_order_relaxed);
  }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// A value that goes up and down. Thread-safe, lock-free.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted in buckets with fixed upper bounds. Thread-safe,
// lock-free. A scrape that races with Observe may see the new observation
// in the buckets and not yet in the sum (or the other way round); the count
// it exposes is always the sum of the buckets.
class Histogram {
 public:
  // `bounds`: strictly increasing finite upper bounds; +Inf is implicit.
  explicit Histogram(std::vector<double> bounds);

  void Observe(double v);
  // Observes `d` in seconds.
  void ObserveDuration(absl::Duration d) { Observe(absl::ToDoubleSeconds(d)); }

  struct Snapshot {
    std::vector<double> bounds;
    // Cumulative: cumulative[i] counts observations <= bounds[i]; the last
    // element (one past bounds) counts every observation (le="+Inf").
    std::vector<uint64_t> cumulative;
    double sum = 0;
    uint64_t count() const { return cumulative.back(); }
  };
  Snapshot Read() const;

 private:
  const std::vector<double> bounds_;
  // Per bucket, not cumulative; one more than bounds_ (the +Inf bucket).
  const std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0};
};

// Default buckets of the *_seconds histograms of a call or a wait: 1 ms to
// 10 minutes.
std::vector<double> SecondsBuckets();
// Buckets of counts (batch sizes): 1, 2, 4, ... up to `max`.
std::vector<double> CountBuckets(double max = 1024);

// A family's series beyond this many share one series whose every label
// value is kOverflowLabel (and a warning is logged once): a label that
// turned out unbounded cannot grow the process without limit.
inline constexpr size_t kMaxSeriesPerFamily = 1000;
inline constexpr char kOverflowLabel[] = "_overflow";

enum class MetricType { kCounter, kGauge, kHistogram };

// What a family has in common, whatever its type. Thread-safe.
class MetricFamilyBase {
 public:
  virtual ~MetricFamilyBase() = default;
  const std::string& name() const { return name_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  // Appends the family in the text format (HELP, TYPE, every series).
  virtual void AppendText(std::string& out) const = 0;

 protected:
  MetricFamilyBase(std::string name, std::string help, MetricType type,
                   std::vector<std::string> label_names);
  // "HELP" and "TYPE" lines.
  void AppendHeader(std::string& out) const;
  // `{a="x",b="y"` (no closing brace; "" without labels and `extra`);
  // `extra` is one more label already formatted (`le="0.5"`).
  std::string LabelText(const std::vector<std::string>& values,
                        absl::string_view extra) const;
  // The key of `values`; CHECK-fails on a wrong number of values (a
  // programmer's bug).
  std::vector<std::string> Key(
      const std::vector<absl::string_view>& values) const;
  // The key of the overflow series; logs a warning the first time.
  std::vector<std::string> OverflowKey() const;

  const std::string name_;
  const std::string help_;
  const MetricType type_;
  const std::vector<std::string> label_names_;
  mutable std::atomic<bool> overflow_logged_{false};
};

// The series of one metric, by label values. Thread-safe.
template <typename T>
class MetricFamily final : public MetricFamilyBase {
 public:
  // The series of `values` (one per label name, in order), created at 0
  // on first use. Takes the family's lock: look it up once and keep it;
  // the reference is valid as long as the registry.
  T& WithLabels(const std::vector<absl::string_view>& values) {
    std::vector<std::string> key = Key(values);
    absl::MutexLock lock(&mu_);
    auto it = series_.find(key);
    if (it == series_.end() && series_.size() >= kMaxSeriesPerFamily) {
      key = OverflowKey();
      it = series_.find(key);
    }
    if (it == series_.end()) {
      it = series_.emplace(std::move(key), NewSeries()).first;
    }
    return *it->second;
  }
  void AppendText(std::string& out) const override;

 private:
  friend class MetricsRegistry;
  MetricFamily(std::string name, std::string help, MetricType type,
               std::vector<std::string> label_names, std::vector<double> bounds)
      : MetricFamilyBase(std::move(name), std::move(help), type,
                         std::move(label_names)),
        bounds_(std::move(bounds)) {}
  std::unique_ptr<T> NewSeries() const;

  const std::vector<double> bounds_;  // histograms only
  mutable absl::Mutex mu_;
  // Ordered, so that the exposition is stable.
  std::map<std::vector<std::string>, std::unique_ptr<T>> series_
      ABSL_GUARDED_BY(mu_);
};

// Defined in metrics.cc for the three series types.
template <>
std::unique_ptr<Histogram> MetricFamily<Histogram>::NewSeries() const;
template <>
void MetricFamily<Histogram>::AppendText(std::string& out) const;
extern template class MetricFamily<Counter>;
extern template class MetricFamily<Gauge>;
extern template class MetricFamily<Histogram>;

// A set of families, exposed together. Thread-safe.
class MetricsRegistry {
 public:
  // Each Add* returns the family of `name`, created on first use; a second
  // Add* of the same name must give the same type, labels (and buckets):
  // several objects of one kind share a family. A family without labels
  // has its one series from the start (exposed as 0). Names follow
  // Prometheus' conventions: `crucible_<process>_<what>_<unit>`, counters
  // ending in _total; invalid names CHECK-fail.
  MetricFamily<Counter>& AddCounter(absl::string_view name,
                                    absl::string_view help,
                                    std::vector<std::string> label_names = {});
  MetricFamily<Gauge>& AddGauge(absl::string_view name, absl::string_view help,
                                std::vector<std::string> label_names = {});
  MetricFamily<Histogram>& AddHistogram(
      absl::string_view name, absl::string_view help,
      std::vector<std::string> label_names = {},
      std::vector<double> bounds = SecondsBuckets());

  // Every family in the text format 0.0.4, in the order they were added.
  std::string Expose() const;

 private:
  template <typename T>
  MetricFamily<T>& Add(absl::string_view name, absl::string_view help,
                       MetricType type, std::vector<std::string> label_names,
                       std::vector<double> bounds);

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<MetricFamilyBase>> families_ ABSL_GUARDED_BY(mu_);
};

// The process's registry, which --metrics_listen exposes; never destroyed.
MetricsRegistry& DefaultMetricsRegistry();

// The text format's escaping: a label value escapes `\`, `"` and newline;
// HELP text escapes `\` and newline.
std::string EscapeLabelValue(absl::string_view v);
std::string EscapeHelp(absl::string_view v);
// A sample value or bucket bound as the text format wants it: "+Inf",
// "-Inf", "NaN", integers without exponent or fraction, else the shortest
// decimal that reads back the same double.
std::string FormatMetricValue(double v);

}  // namespace common

#endif  // CRUCIBLE_COMMON_METRICS_H_
