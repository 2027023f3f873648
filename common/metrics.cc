#include "common/metrics.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace common {
namespace {

// [a-zA-Z_:][a-zA-Z0-9_:]* for metric names; labels allow no ':'.
bool ValidName(absl::string_view name, bool colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '_' || (colon && c == ':') ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

const char* TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

std::string EscapeLabelValue(absl::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeHelp(absl::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatMetricValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Integers (counts, bytes) print exactly, without an exponent, while a
  // double holds them exactly.
  if (v == std::trunc(v) && std::fabs(v) < 9007199254740992.0) {
    return absl::StrCat(static_cast<int64_t>(v));
  }
  // The shortest of %.15g..%.17g that reads back the same double: 0.1, not
  // 0.10000000000000001.
  char buf[32];
  for (int precision = 15; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::vector<double> SecondsBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
          1,     2.5,    5,     10,   30,    60,   300, 600};
}

std::vector<double> CountBuckets(double max) {
  std::vector<double> bounds;
  for (double b = 1; b <= max; b *= 2) bounds.push_back(b);
  return bounds;
}

// --- Histogram ---

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i + 1 < bounds_.size(); ++i) {
    CHECK_LT(bounds_[i], bounds_[i + 1]) << "bucket bounds must increase";
  }
  for (double b : bounds_) CHECK(std::isfinite(b)) << "finite bounds only";
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i] = 0;
}

void Histogram::Observe(double v) {
  // The first bucket whose bound is >= v (le is inclusive); past the last
  // bound (and NaN), the +Inf bucket.
  const size_t i = std::isnan(v)
                       ? bounds_.size()
                       : std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                             bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.bounds = bounds_;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = total;
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

// --- Families ---

MetricFamilyBase::MetricFamilyBase(std::string name, std::string help,
                                   MetricType type,
                                   std::vector<std::string> label_names)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)) {
  CHECK(ValidName(name_, /*colon=*/true)) << "bad metric name " << name_;
  for (const std::string& label : label_names_) {
    CHECK(ValidName(label, /*colon=*/false) && !label.starts_with("__"))
        << name_ << ": bad label name " << label;
    CHECK(!(type_ == MetricType::kHistogram && label == "le"))
        << name_ << ": 'le' is the histogram's own label";
  }
}

void MetricFamilyBase::AppendHeader(std::string& out) const {
  absl::StrAppend(&out, "# HELP ", name_, " ", EscapeHelp(help_), "\n",
                  "# TYPE ", name_, " ", TypeName(type_), "\n");
}

std::string MetricFamilyBase::LabelText(const std::vector<std::string>& values,
                                        absl::string_view extra) const {
  std::vector<std::string> pairs;
  for (size_t i = 0; i < values.size(); ++i) {
    pairs.push_back(absl::StrCat(label_names_[i], "=\"",
                                 EscapeLabelValue(values[i]), "\""));
  }
  if (!extra.empty()) pairs.emplace_back(extra);
  if (pairs.empty()) return "";
  return absl::StrCat("{", absl::StrJoin(pairs, ","), "}");
}

std::vector<std::string> MetricFamilyBase::Key(
    const std::vector<absl::string_view>& values) const {
  CHECK_EQ(values.size(), label_names_.size())
      << name_ << ": wrong number of label values";
  return std::vector<std::string>(values.begin(), values.end());
}

std::vector<std::string> MetricFamilyBase::OverflowKey() const {
  if (!overflow_logged_.exchange(true)) {
    LOG(WARNING) << "metric " << name_ << " has " << kMaxSeriesPerFamily
                 << " series: new label values count as " << kOverflowLabel;
  }
  return std::vector<std::string>(label_names_.size(), kOverflowLabel);
}

template <typename T>
std::unique_ptr<T> MetricFamily<T>::NewSeries() const {
  return std::make_unique<T>();
}

template <>
std::unique_ptr<Histogram> MetricFamily<Histogram>::NewSeries() const {
  return std::make_unique<Histogram>(bounds_);
}

template <typename T>
void MetricFamily<T>::AppendText(std::string& out) const {
  AppendHeader(out);
  absl::MutexLock lock(&mu_);
  for (const auto& [values, series] : series_) {
    absl::StrAppend(&out, name_, LabelText(values, ""), " ",
                    FormatMetricValue(series->value()), "\n");
  }
}

template <>
void MetricFamily<Histogram>::AppendText(std::string& out) const {
  AppendHeader(out);
  absl::MutexLock lock(&mu_);
  for (const auto& [values, series] : series_) {
    const Histogram::Snapshot s = series->Read();
    for (size_t i = 0; i < s.cumulative.size(); ++i) {
      const std::string le = absl::StrCat(
          "le=\"",
          i < s.bounds.size() ? FormatMetricValue(s.bounds[i]) : "+Inf", "\"");
      absl::StrAppend(&out, name_, "_bucket", LabelText(values, le), " ",
                      s.cumulative[i], "\n");
    }
    const std::string labels = LabelText(values, "");
    absl::StrAppend(&out, name_, "_sum", labels, " ", FormatMetricValue(s.sum),
                    "\n", name_, "_count", labels, " ", s.count(), "\n");
  }
}

template class MetricFamily<Counter>;
template class MetricFamily<Gauge>;
template class MetricFamily<Histogram>;

// --- Registry ---

template <typename T>
MetricFamily<T>& MetricsRegistry::Add(absl::string_view name,
                                      absl::string_view help, MetricType type,
                                      std::vector<std::string> label_names,
                                      std::vector<double> bounds) {
  absl::MutexLock lock(&mu_);
  for (const auto& family : families_) {
    if (family->name() != name) continue;
    CHECK(family->type() == type && family->label_names() == label_names)
        << "metric " << name << " added twice, differently";
    auto* same = static_cast<MetricFamily<T>*>(family.get());
    CHECK(same->bounds_ == bounds) << "metric " << name << ": other buckets";
    return *same;
  }
  const bool no_labels = label_names.empty();
  std::unique_ptr<MetricFamily<T>> family(
      new MetricFamily<T>(std::string(name), std::string(help), type,
                          std::move(label_names), std::move(bounds)));
  MetricFamily<T>& ref = *family;
  families_.push_back(std::move(family));
  if (no_labels) ref.WithLabels({});
  return ref;
}

MetricFamily<Counter>& MetricsRegistry::AddCounter(
    absl::string_view name, absl::string_view help,
    std::vector<std::string> label_names) {
  return Add<Counter>(name, help, MetricType::kCounter, std::move(label_names),
                      {});
}

MetricFamily<Gauge>& MetricsRegistry::AddGauge(
    absl::string_view name, absl::string_view help,
    std::vector<std::string> label_names) {
  return Add<Gauge>(name, help, MetricType::kGauge, std::move(label_names), {});
}

MetricFamily<Histogram>& MetricsRegistry::AddHistogram(
    absl::string_view name, absl::string_view help,
    std::vector<std::string> label_names, std::vector<double> bounds) {
  return Add<Histogram>(name, help, MetricType::kHistogram,
                        std::move(label_names), std::move(bounds));
}

std::string MetricsRegistry::Expose() const {
  std::string out;
  absl::MutexLock lock(&mu_);
  for (const auto& family : families_) family->AppendText(out);
  return out;
}

MetricsRegistry& DefaultMetricsRegistry() {
  static MetricsRegistry* registry = new MetricsRegistry();
  return *registry;
}

}  // namespace common
