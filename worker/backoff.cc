#include "worker/backoff.h"

#include <algorithm>
#include <cmath>

#include "absl/random/distributions.h"

namespace worker {

absl::Duration Backoff::Next() {
  double factor = std::pow(options_.multiplier, std::min(attempt_, 62));
  absl::Duration d = options_.initial * factor;
  if (d > options_.max || d < absl::ZeroDuration()) d = options_.max;
  ++attempt_;
  // "Equal jitter": never less than half the nominal delay, so a crowd of
  // workers spreads out without any of them retrying in a tight loop.
  double jitter = absl::Uniform(gen_, 0.5, 1.0);
  return d * jitter;
}

}  // namespace worker
