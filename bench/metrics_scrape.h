#ifndef CRUCIBLE_BENCH_METRICS_SCRAPE_H_
#define CRUCIBLE_BENCH_METRICS_SCRAPE_H_

// A process's /metrics scraped twice, and what its histograms saw between
// the two: for benchmarks that say where the time went.
#include <curl/curl.h>

#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace bench {

// GET http://127.0.0.1:`port`/metrics; empty on any failure.
inline std::string ScrapeMetrics(int port) {
  std::string body;
  CURL* c = curl_easy_init();
  if (c == nullptr) return body;
  const std::string url = absl::StrCat("http://127.0.0.1:", port, "/metrics");
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(c, CURLOPT_PROXY, "");
  curl_easy_setopt(
      c, CURLOPT_WRITEFUNCTION,
      +[](char* p, size_t size, size_t n, void* out) -> size_t {
        static_cast<std::string*>(out)->append(p, size * n);
        return size * n;
      });
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  if (curl_easy_perform(c) != CURLE_OK) body.clear();
  curl_easy_cleanup(c);
  return body;
}

// The samples of two scrapes of one process (Prometheus text format), and
// a histogram's count and mean between them. Labels are written as the
// exposition writes them: `call="create"`; "" for none.
class MetricDiff {
 public:
  MetricDiff(absl::string_view before, absl::string_view after)
      : before_(Parse(before)), after_(Parse(after)) {}

  double Count(absl::string_view histogram, absl::string_view labels) const {
    return Delta(Key(histogram, "_count", labels));
  }
  // Mean of the observations between the scrapes, in ms; 0 if none.
  double MeanMs(absl::string_view histogram, absl::string_view labels) const {
    const double n = Count(histogram, labels);
    return n > 0 ? 1000 * Delta(Key(histogram, "_sum", labels)) / n : 0;
  }

 private:
  static std::string Key(absl::string_view name, absl::string_view suffix,
                         absl::string_view labels) {
    return labels.empty() ? absl::StrCat(name, suffix)
                          : absl::StrCat(name, suffix, "{", labels, "}");
  }
  static std::map<std::string, double> Parse(absl::string_view text) {
    std::map<std::string, double> out;
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      if (line.empty() || line[0] == '#') continue;
      const size_t space = line.rfind(' ');
      double v = 0;
      if (space == absl::string_view::npos ||
          !absl::SimpleAtod(line.substr(space + 1), &v)) {
        continue;
      }
      out[std::string(line.substr(0, space))] = v;
    }
    return out;
  }
  double Delta(const std::string& key) const {
    auto a = after_.find(key);
    auto b = before_.find(key);
    return (a == after_.end() ? 0 : a->second) -
           (b == before_.end() ? 0 : b->second);
  }
  std::map<std::string, double> before_, after_;
};

}  // namespace bench

#endif  // CRUCIBLE_BENCH_METRICS_SCRAPE_H_
