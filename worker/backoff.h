#ifndef CRUCIBLE_WORKER_BACKOFF_H_
#define CRUCIBLE_WORKER_BACKOFF_H_

#include <cstdint>

#include "absl/random/bit_gen_ref.h"
#include "absl/time/time.h"

namespace worker {

struct BackoffOptions {
  // Delay before the first retry (before jitter).
  absl::Duration initial = absl::Milliseconds(200);
  // Cap of the delay (before jitter).
  absl::Duration max = absl::Seconds(10);
  // Growth factor per attempt.
  double multiplier = 2.0;
};

// Capped exponential backoff with jitter: the n-th delay is uniform in
// [d/2, d] with d = min(max, initial * multiplier^n). Not thread-safe.
class Backoff {
 public:
  Backoff(BackoffOptions options, absl::BitGenRef gen)
      : options_(options), gen_(gen) {}

  // The delay to wait before the next attempt; grows each call.
  absl::Duration Next();
  // Back to the initial delay (after a success).
  void Reset() { attempt_ = 0; }

 private:
  BackoffOptions options_;
  absl::BitGenRef gen_;
  int attempt_ = 0;
};

}  // namespace worker

#endif  // CRUCIBLE_WORKER_BACKOFF_H_
