#ifndef CRUCIBLE_COMMON_CLOCK_H_
#define CRUCIBLE_COMMON_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace common {

// Source of "now". Inject it; domain code never calls absl::Now().
// Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  // The process-wide real clock; never destroyed.
  static Clock& Real();
};

// A clock that moves only when told to. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000))
      : now_(start) {}
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

inline Clock& Clock::Real() {
  class RealClock final : public Clock {
    absl::Time Now() const override { return absl::Now(); }
  };
  static RealClock* clock = new RealClock;
  return *clock;
}

}  // namespace common

#endif  // CRUCIBLE_COMMON_CLOCK_H_
