#ifndef CRUCIBLE_SERVER_OUTBOX_DURABLE_OUTBOX_H_
#define CRUCIBLE_SERVER_OUTBOX_DURABLE_OUTBOX_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "server/store/task_store.h"

namespace server {

struct DurableOutboxOptions {
  // Most writes committed in one transaction.
  int max_batch = 4096;
  // While the disk is full, how often the waiting batch is tried again (the
  // probe that notices space is back).
  absl::Duration full_retry_interval = absl::Seconds(1);
  // Where the commit metrics go (crucible_server_store_commit_*); null:
  // the process's common::DefaultMetricsRegistry(). Must outlive the outbox.
  common::MetricsRegistry* metrics = nullptr;
};

// Orders writes: the n-th write submitted has ticket n (from 1).
using WriteTicket = uint64_t;

// The commit pipeline between the scheduler and a TaskStore: "commit, then
// announce in decision order once durable". Thread-safe.
//
// Submit() queues a write and returns at once; one writer thread commits
// queued writes in submission order, many per TaskStore::Commit (group
// commit), and a write is durable once its batch is committed.
// AfterDurable() runs a callback once every write submitted before it is
// durable, callbacks in registration order, on a callback thread of its own,
// so the writer moves on to the next batch while the last one is announced.
//
// A full disk (Commit says RESOURCE_EXHAUSTED) breaks nothing: the batch is
// kept, later writes queue behind it, health() says RESOURCE_EXHAUSTED, and
// the writer tries the batch again every full_retry_interval until it
// commits. Any other commit failure breaks the outbox for good: health()
// says so, later writes are dropped and their callbacks get the error.
//
// A store implementation only commits batches; it needs no thread of its own.
class DurableOutbox {
 public:
  // `store` must outlive the outbox.
  DurableOutbox(TaskStore& store, const DurableOutboxOptions& options);
  // Commits what is queued, runs the remaining callbacks, joins the threads.
  ~DurableOutbox();
  DurableOutbox(const DurableOutbox&) = delete;
  DurableOutbox& operator=(const DurableOutbox&) = delete;

  // Queues a write. Never blocks on disk. While the disk is full writes wait
  // in memory, in order.
  WriteTicket Submit(TaskWrite write);
  // The ticket of the last write submitted (0 if none).
  WriteTicket LastTicket();
  // Runs `fn` on the callback thread once `ticket` (and so every earlier
  // write) is durable, with OK, or with the error that broke the outbox.
  // Callbacks run one at a time in registration order; register them in
  // non-decreasing ticket order. `fn` must not block on the outbox.
  void AfterDurable(WriteTicket ticket, std::function<void(absl::Status)> fn);
  // Runs `fn` on the callback thread after a burst: whenever it has run
  // callbacks and the next one (if any) is not durable yet, before it waits.
  // Lets callbacks queue messages and the caller send them once per burst.
  // nullptr clears it. Call it while no callback runs.
  void SetBurstEnd(std::function<void()> fn);
  // Blocks until `ticket` is durable (OK), the outbox broke (its error), or
  // the disk is full (RESOURCE_EXHAUSTED: the write still waits and is
  // committed once space is back).
  absl::Status AwaitDurable(WriteTicket ticket);
  // Blocks until every callback registered so far has run. While the disk is
  // full it gives up after one more try (a shutdown cannot wait for space):
  // the writes still waiting are dropped, their callbacks get the error and
  // the outbox is broken for good.
  void DrainCallbacks();
  // OK while commits succeed; RESOURCE_EXHAUSTED ("the task store is full:
  // ...") while the disk is full and writes wait; UNAVAILABLE ("store
  // failed: ...") after a commit failed for any other reason, for good.
  absl::Status health();
  // Batches committed so far (for tests and the benchmark).
  int64_t batches_committed();

 private:
  struct Pending {
    WriteTicket ticket = 0;
    TaskWrite write;
  };
  struct Callback {
    WriteTicket ticket = 0;
    std::function<void(absl::Status)> fn;
  };
  struct DurableArg {
    DurableOutbox* outbox;
    WriteTicket ticket;
  };

  void WriterLoop();
  void CallbackLoop();
  // The next batch (empty once stopping and drained), moved off the queue.
  std::vector<TaskWrite> NextBatch(WriteTicket& last);
  // Commits `batch`, trying again while the disk is full.
  absl::Status CommitBatch(const std::vector<TaskWrite>& batch);
  bool WriterReady() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || !queue_.empty();
  }
  // Ends the wait between two tries on a full disk early.
  bool RetryNow() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || drain_waiters_ > 0;
  }
  bool CallbackReady() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Durable(WriteTicket t) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return durable_ >= t || !failed_.ok();
  }
  // Durable, or the disk is full (AwaitDurable does not wait for space).
  static bool IsDurableOrFull(DurableArg* arg);
  bool Drained() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return callbacks_.empty() && !callback_running_;
  }

  TaskStore& store_;
  const DurableOutboxOptions options_;
  // Each TaskStore::Commit's latency (failed tries too), failed commits,
  // and the size of each batch committed.
  common::Histogram& commit_seconds_;
  common::Counter& commit_failures_;
  common::Histogram& batch_size_;

  absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  WriteTicket last_ticket_ ABSL_GUARDED_BY(mu_) = 0;
  WriteTicket durable_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status failed_ ABSL_GUARDED_BY(mu_);
  // RESOURCE_EXHAUSTED while the disk is full and writes wait; OK otherwise.
  absl::Status full_ ABSL_GUARDED_BY(mu_);
  // !failed_.ok() || !full_.ok(), for health() without the lock.
  std::atomic<bool> unhealthy_{false};
  // Callers blocked in DrainCallbacks.
  int drain_waiters_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool writer_done_ ABSL_GUARDED_BY(mu_) = false;
  int64_t batches_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Callback> callbacks_ ABSL_GUARDED_BY(mu_);
  bool callback_running_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void()> burst_end_ ABSL_GUARDED_BY(mu_);

  std::thread writer_;
  std::thread callback_thread_;
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_OUTBOX_DURABLE_OUTBOX_H_
