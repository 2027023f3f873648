#include "server/outbox/durable_outbox.h"

#include <pthread.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "glog/logging.h"

namespace server {

namespace {

common::MetricsRegistry& Registry(const DurableOutboxOptions& options) {
  return options.metrics != nullptr ? *options.metrics
                                    : common::DefaultMetricsRegistry();
}

}  // namespace

DurableOutbox::DurableOutbox(TaskStore& store,
                             const DurableOutboxOptions& options)
    : store_(store),
      options_(options),
      commit_seconds_(
          Registry(options)
              .AddHistogram("crucible_server_store_commit_seconds",
                            "Latency of each store commit (one transaction "
                            "of a batch of writes), failed tries included.")
              .WithLabels({})),
      commit_failures_(
          Registry(options)
              .AddCounter("crucible_server_store_commit_failures_total",
                          "Store commits that failed (a full disk's tries "
                          "included).")
              .WithLabels({})),
      batch_size_(Registry(options)
                      .AddHistogram("crucible_server_store_commit_batch_size",
                                    "Writes per committed store batch (group "
                                    "commit).",
                                    {}, common::CountBuckets(4096))
                      .WithLabels({})) {
  // Named for top -H and perf.
  writer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "store-writer");
    WriterLoop();
  });
  callback_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "store-callback");
    CallbackLoop();
  });
}

DurableOutbox::~DurableOutbox() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  writer_.join();
  callback_thread_.join();
}

WriteTicket DurableOutbox::Submit(TaskWrite write) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(Pending{++last_ticket_, std::move(write)});
  return last_ticket_;
}

WriteTicket DurableOutbox::LastTicket() {
  absl::MutexLock lock(&mu_);
  return last_ticket_;
}

void DurableOutbox::AfterDurable(WriteTicket ticket,
                                 std::function<void(absl::Status)> fn) {
  absl::MutexLock lock(&mu_);
  callbacks_.push_back(Callback{ticket, std::move(fn)});
}

absl::Status DurableOutbox::AwaitDurable(WriteTicket ticket) {
  absl::MutexLock lock(&mu_);
  DurableArg arg{this, ticket};
  mu_.Await(absl::Condition(&DurableOutbox::IsDurableOrFull, &arg));
  if (durable_ >= ticket) return absl::OkStatus();
  return failed_.ok() ? full_ : failed_;
}

void DurableOutbox::DrainCallbacks() {
  absl::MutexLock lock(&mu_);
  ++drain_waiters_;  // a writer waiting for space tries once more, then gives
                     // up
  mu_.Await(absl::Condition(this, &DurableOutbox::Drained));
  --drain_waiters_;
}

absl::Status DurableOutbox::health() {
  // Asked on every dispatch: no lock while all is well.
  if (!unhealthy_.load(std::memory_order_acquire)) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  return failed_.ok() ? full_ : failed_;
}

int64_t DurableOutbox::batches_committed() {
  absl::MutexLock lock(&mu_);
  return batches_;
}

void DurableOutbox::SetBurstEnd(std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  burst_end_ = std::move(fn);
}

bool DurableOutbox::IsDurableOrFull(DurableArg* arg) {
  arg->outbox->mu_.AssertHeld();
  return arg->outbox->Durable(arg->ticket) || !arg->outbox->full_.ok();
}

bool DurableOutbox::CallbackReady() const {
  if (!callbacks_.empty()) return Durable(callbacks_.front().ticket);
  return stopping_ && writer_done_;
}

void DurableOutbox::WriterLoop() {
  while (true) {
    WriteTicket last = 0;
    std::vector<TaskWrite> batch = NextBatch(last);
    if (batch.empty()) return;
    absl::Status s = CommitBatch(batch);
    absl::MutexLock lock(&mu_);
    if (s.ok()) {
      durable_ = last;
      ++batches_;
    } else if (failed_.ok()) {
      LOG(ERROR) << "store: commit failed, the store is now read-only: " << s;
      failed_ =
          absl::UnavailableError(absl::StrCat("store failed: ", s.message()));
      unhealthy_.store(true, std::memory_order_release);
    }
  }
}

std::vector<TaskWrite> DurableOutbox::NextBatch(WriteTicket& last) {
  std::vector<TaskWrite> batch;
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(this, &DurableOutbox::WriterReady));
  if (queue_.empty()) {  // stopping, and everything is written
    writer_done_ = true;
    return batch;
  }
  while (!queue_.empty() &&
         static_cast<int>(batch.size()) < options_.max_batch) {
    last = queue_.front().ticket;
    batch.push_back(std::move(queue_.front().write));
    queue_.pop_front();
  }
  return batch;
}

absl::Status DurableOutbox::CommitBatch(const std::vector<TaskWrite>& batch) {
  bool last_try = false;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (!failed_.ok()) return failed_;
    }
    // Real time, as below: this measures the disk, not the domain.
    const absl::Time begin = absl::Now();
    absl::Status s = store_.Commit(batch);  // nothing committed if it failed
    commit_seconds_.ObserveDuration(absl::Now() - begin);
    if (s.ok()) {
      batch_size_.Observe(static_cast<double>(batch.size()));
    } else {
      commit_failures_.Increment();
    }
    absl::MutexLock lock(&mu_);
    if (s.ok() && !full_.ok()) {
      LOG(WARNING) << "store: writes succeed again";
      full_ = absl::OkStatus();
      unhealthy_.store(false, std::memory_order_release);
    }
    if (!absl::IsResourceExhausted(s)) return s;
    // The disk is full: nothing is lost yet (the batch is kept, later writes
    // queue behind it), so wait for space instead of breaking the outbox.
    // Memory stays ahead of the store meanwhile.
    if (full_.ok()) {
      LOG(ERROR) << "store: " << s.message() << " ("
                 << batch.size() + queue_.size() << " writes waiting)";
      full_ = s;
      unhealthy_.store(true, std::memory_order_release);
    }
    if (last_try) {  // stopping or draining: no one will wait for space
      LOG(ERROR) << "store: giving up with the disk still full; "
                 << batch.size() + queue_.size() << " writes not stored";
      return absl::UnavailableError(
          absl::StrCat("stopped while the disk was full: ", s.message()));
    }
    // Real time, not a Clock: this waits on the disk, not on the domain.
    if (!RetryNow()) {
      mu_.AwaitWithTimeout(absl::Condition(this, &DurableOutbox::RetryNow),
                           options_.full_retry_interval);
    }
    last_try = RetryNow();
  }
}

void DurableOutbox::CallbackLoop() {
  bool in_burst = false;  // callbacks ran since the last burst end
  while (true) {
    Callback cb;
    absl::Status status;
    std::function<void()> burst_end;
    {
      absl::MutexLock lock(&mu_);
      callback_running_ = false;
      const bool next_ready =
          !callbacks_.empty() && Durable(callbacks_.front().ticket);
      if (in_burst && !next_ready) {
        in_burst = false;
        burst_end = burst_end_;  // a copy: SetBurstEnd may run meanwhile
        callback_running_ = burst_end != nullptr;  // so Drained waits for it
      } else {
        mu_.Await(absl::Condition(this, &DurableOutbox::CallbackReady));
        if (callbacks_.empty()) return;  // stopping, writer done, all run
        cb = std::move(callbacks_.front());
        callbacks_.pop_front();
        status = durable_ >= cb.ticket ? absl::OkStatus() : failed_;
        callback_running_ = true;
      }
    }
    if (cb.fn) {
      cb.fn(std::move(status));
      in_burst = true;
    } else if (burst_end) {
      burst_end();
    }
  }
}

}  // namespace server
