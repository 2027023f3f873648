#ifndef CRUCIBLE_WORKER_EXECUTOR_POOL_H_
#define CRUCIBLE_WORKER_EXECUTOR_POOL_H_

#include <map>
#include <string>
#include <vector>

#include "absl/random/bit_gen_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace worker {

struct PoolOptions {
  // Runs one executor takes at once (its --slots).
  int slots_per_executor = 4;
  // A healthy executor is checked again this long after its last good check.
  absl::Duration probe_interval = absl::Seconds(2);
  // An executor out of rotation is checked again after a delay that starts
  // here and doubles with every failed check...
  absl::Duration retry_initial = absl::Milliseconds(500);
  // ...up to this (--health_retry_max): how late, at worst, the return of
  // an executor is noticed.
  absl::Duration retry_max = absl::Seconds(2);
  // An executor that was in rotation and left it re-enters only after
  // SERVING checks in a row spanning at least this long (--rejoin_window),
  // checked every retry_initial meanwhile; one that never was in rotation
  // enters at its first SERVING check. Zero: at the first SERVING check.
  absl::Duration rejoin_window = absl::Seconds(2);
  // This many runs in a row that could not reach the executor take it out
  // of rotation until a check says it is back.
  int failures_to_eject = 3;
  // An executor that refused a run for lack of slots (another worker fills
  // it too) gets no new run for this long.
  absl::Duration full_backoff = absl::Milliseconds(500);
};

// What the pool knows of one executor, for logs and tests.
struct ExecutorView {
  std::string address;
  bool listed = false;   // discovery still names it
  bool healthy = false;  // in rotation
  int in_flight = 0;
  int failed_checks = 0;  // in a row
};

// The executors a worker can run tasks on, their health and their free
// slots; picks the executor for each run. New executors are checked before
// they get work; an executor enters rotation when a health check says
// SERVING and leaves it when a check fails or says NOT_SERVING, or when
// `failures_to_eject` runs in a row could not reach it; executors out of
// rotation are re-checked with exponential backoff (capped at retry_max).
// One that left rotation comes back only once it has answered SERVING for
// `rejoin_window` without a failed check, so an executor whose engine
// flaps is not handed runs between two failures. An executor no longer
// listed leaves at once but is remembered until its runs end. Thread-safe.
// No gRPC, no I/O: the caller does the checks and reports them.
class ExecutorPool {
 public:
  ExecutorPool(PoolOptions options, const common::Clock& clock,
               absl::BitGenRef gen);

  // The current list from discovery: adds new addresses (not in rotation
  // until checked), drops the ones that are gone. True if anything changed.
  bool SetListed(const std::vector<std::string>& addresses);

  // The executors whose health check is due now; each is marked as being
  // checked until CheckResult.
  std::vector<std::string> DueChecks();
  // The outcome of a check of `address`: `serving` true only for SERVING.
  // True if the number of free slots in rotation changed.
  bool CheckResult(const std::string& address, bool serving);
  // Whether `address` is in rotation.
  bool InRotation(const std::string& address) const;

  // The executor for a new run: the healthy one with the most free slots,
  // ties broken at random; counts the run until Release. UNAVAILABLE if no
  // executor in rotation has a free slot.
  absl::StatusOr<std::string> Acquire();
  // A run on `address` ended. `reached` false when the run failed because
  // the executor could not be reached (or was lost mid-run).
  void Release(const std::string& address, bool reached);
  // `address` said it is shutting down: out of rotation now, checked again
  // with backoff like an executor whose check failed.
  void TakeOut(const std::string& address);
  // `address` refused a run with RESOURCE_EXHAUSTED: no run goes there for
  // full_backoff. Its health and free-slot count are unchanged.
  void MarkFull(const std::string& address);

  // Executors listed and in rotation.
  int InRotationCount() const;
  // Free slots summed over the executors in rotation.
  int FreeSlots() const;
  // Runs in flight on `address` (0 if unknown).
  int InFlight(const std::string& address) const;
  std::vector<ExecutorView> Snapshot() const;

 private:
  struct Entry {
    bool listed = true;
    bool healthy = false;
    bool was_in_rotation = false;  // ever, since it was (re)listed
    bool checking = false;
    // First of the SERVING checks in a row while out of rotation.
    absl::Time serving_since = absl::InfiniteFuture();
    int in_flight = 0;
    int failed_checks = 0;
    int failed_runs = 0;
    absl::Time next_check = absl::InfinitePast();
    absl::Time full_until = absl::InfinitePast();
  };
  void MarkUnhealthyLocked(Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ForgetIfUnusedLocked(const std::string& address)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int FreeSlotsLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const PoolOptions options_;
  const common::Clock& clock_;
  mutable absl::Mutex mu_;
  absl::BitGenRef gen_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace worker

#endif  // CRUCIBLE_WORKER_EXECUTOR_POOL_H_
