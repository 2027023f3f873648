#ifndef CRUCIBLE_COMMON_STREAM_WRITE_QUEUE_H_
#define CRUCIBLE_COMMON_STREAM_WRITE_QUEUE_H_

#include <cstddef>
#include <deque>
#include <utility>

#include "grpcpp/grpcpp.h"

namespace common {

// The write side of a server stream (a ServerWriteReactor or
// ServerBidiReactor `Reactor` writing `Wire` messages), written once for
// every service: one StartWrite in flight and the rest queued, the message
// in flight kept alive until OnWriteDone, and Finish called exactly once and
// never while a write is in flight.
//
// Not thread-safe: the reactor calls it under its own mutex (declare the
// queue ABSL_GUARDED_BY that mutex), from its reactions and from whatever
// thread produces messages.
template <typename Reactor, typename Wire>
class StreamWriteQueue {
 public:
  // What a failed write (the peer is gone) does besides dropping what is
  // queued: finish the stream at once (CANCELLED), or wait for the owner's
  // own Finish (say, once work it must stop first has ended).
  enum class OnWriteFailure { kFinish, kWaitForFinish };
  struct Queued {
    Wire message;
    size_t bytes = 0;
  };

  struct Options {
    OnWriteFailure on_failure = OnWriteFailure::kFinish;
    // Writes made while more messages are queued carry gRPC's buffer hint,
    // so they can go out in one send. Only for bidi streams that keep
    // reading: on a server-streaming call a hinted write's OnWriteDone may
    // wait for a later unhinted write, which this queue only starts after
    // it.
    bool buffer_hint_while_queued = false;
  };

  explicit StreamWriteQueue(Reactor* reactor)
      : StreamWriteQueue(reactor, Options{}) {}
  StreamWriteQueue(Reactor* reactor, Options options)
      : reactor_(reactor), options_(options) {}
  StreamWriteQueue(const StreamWriteQueue&) = delete;
  StreamWriteQueue& operator=(const StreamWriteQueue&) = delete;

  // Queues a message (dropped once the stream is finishing); `bytes` counts
  // towards queued_bytes() until its write is done. Call Write() to send.
  void Push(Wire message, size_t bytes = 0) {
    if (finishing() || broken_) return;
    pending_.push_back(Queued{std::move(message), bytes});
    queued_bytes_ += bytes;
  }

  // Starts the next write unless one is in flight (or the stream is
  // finished): the next queued message (see Options for the buffer hint).
  // Then finishes if a drain was asked for and nothing is left. Returns
  // whether a write is in flight.
  bool Write() {
    if (writing_ || finished_) return writing_;
    if (broken_) {
      if (drain_) FinishNow();
      return false;
    }
    if (pending_.empty()) {
      if (drain_) FinishNow();
      return false;
    }
    Queued next = std::move(pending_.front());
    pending_.pop_front();
    return StartWrite(std::move(next.message), next.bytes);
  }
  // Like Write() but sends `message` (say, a batch made from pending()).
  bool WriteThis(Wire message, size_t bytes = 0) {
    if (writing_ || finished_ || broken_) return writing_;
    queued_bytes_ += bytes;
    return StartWrite(std::move(message), bytes);
  }

  // From the reactor's OnWriteDone. A failed write drops what is queued
  // and, per OnWriteFailure, finishes the stream (CANCELLED) or refuses
  // further messages until the owner's Finish. Else a pending finish
  // happens now, or the next write starts (unless `write_next` is false:
  // the owner writes, say a batch). Returns false once the stream is
  // finished or broken.
  bool OnWriteDone(bool ok, bool write_next = true) {
    writing_ = false;
    queued_bytes_ -= in_flight_bytes_;
    in_flight_bytes_ = 0;
    if (!ok) {
      Drop();
      broken_ = true;
      if (options_.on_failure == OnWriteFailure::kFinish ||
          finish_after_write_ || drain_) {
        FinishNow(grpc::Status(grpc::CANCELLED, "write failed"));
      }
      return false;
    }
    if (finish_after_write_) {
      FinishNow();
      return false;
    }
    if (write_next || pending_.empty()) Write();
    return !finished_;
  }

  // Finishes with `status` once the write in flight (if any) is done;
  // queued messages are dropped. A second finish is ignored.
  void Finish(grpc::Status status) {
    if (finishing()) return;
    Drop();
    status_ = std::move(status);
    if (writing_) {
      finish_after_write_ = true;
    } else {
      FinishNow();
    }
  }
  // Finishes with `status` once every queued message is written.
  void FinishAfterQueued(grpc::Status status) {
    if (finishing()) return;
    status_ = std::move(status);
    drain_ = true;
    Write();
  }

  // Queued messages (not the one in flight), for batching.
  std::deque<Queued>& pending() { return pending_; }
  bool writing() const { return writing_; }
  // Finish was called, or will be once the write in flight is done.
  bool finishing() const { return finished_ || finish_after_write_ || drain_; }
  bool finished() const { return finished_; }
  // A write failed: nothing more is written.
  bool broken() const { return broken_; }
  // Messages queued plus the one in flight.
  size_t backlog() const { return pending_.size() + (writing_ ? 1 : 0); }
  size_t queued_bytes() const { return queued_bytes_; }

 private:
  bool StartWrite(Wire message, size_t bytes) {
    current_ = std::move(message);
    in_flight_bytes_ = bytes;
    writing_ = true;
    grpc::WriteOptions options;
    if (options_.buffer_hint_while_queued && !pending_.empty())
      options.set_buffer_hint();
    reactor_->StartWrite(&current_, options);
    return true;
  }
  void Drop() {
    for (const auto& item : pending_) queued_bytes_ -= item.bytes;
    pending_.clear();
  }
  void FinishNow() {
    if (finished_) return;
    finished_ = true;
    finish_after_write_ = false;
    reactor_->Finish(status_);
  }
  void FinishNow(grpc::Status status) {
    status_ = std::move(status);
    FinishNow();
  }

  Reactor* const reactor_;
  const Options options_;
  std::deque<Queued> pending_;
  Wire current_;  // alive until OnWriteDone
  size_t in_flight_bytes_ = 0;
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool finish_after_write_ = false;
  bool drain_ = false;
  bool broken_ = false;
  bool finished_ = false;
  grpc::Status status_;
};

}  // namespace common

#endif  // CRUCIBLE_COMMON_STREAM_WRITE_QUEUE_H_
