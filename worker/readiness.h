#ifndef CRUCIBLE_WORKER_READINESS_H_
#define CRUCIBLE_WORKER_READINESS_H_

#include <string>
#include <utility>

namespace worker {

// Whether the worker can do its job now: it has an open stream to the
// server (the hello was sent) and at least one executor in rotation; and
// why not. Also orders the publication of changes (to the health service)
// so that concurrent updates, published without a lock held, end with the
// last state: one caller publishes at a time, and goes on while the state
// moved meanwhile. Not thread-safe: the worker calls it under its lock.
class Readiness {
 public:
  Readiness() : published_(NotReadyReason()) {}

  void SetStreamUp(bool up) {
    stream_up_ = up;
    if (up) stream_error_.clear();
  }
  // Why the last stream to the server ended or could not open (e.g. the
  // server is a standby); part of the reason until a stream is up again.
  void SetStreamError(std::string error) { stream_error_ = std::move(error); }
  void SetExecutorsInRotation(int n) { executors_in_rotation_ = n; }

  bool ready() const { return stream_up_ && executors_in_rotation_ > 0; }
  // Why it is ready or not, for the log.
  std::string Reason() const;
  // What the health service is told: "" when ready, else why not.
  std::string NotReadyReason() const { return ready() ? "" : Reason(); }

  // True if the caller is to publish ready() and NotReadyReason() now (they
  // differ from what was last published and no one else is publishing); the
  // caller must then call PublishedOne after publishing, until it returns
  // false.
  bool StartPublishing();
  // The caller published; true if it must publish again (the state moved
  // meanwhile), false if it is done.
  bool PublishedOne();

 private:
  bool stream_up_ = false;
  std::string stream_error_;
  int executors_in_rotation_ = 0;
  // What the health service was last told (NotReadyReason()); it starts
  // NOT_SERVING, with this state's reason.
  std::string published_;
  bool publishing_ = false;
};

}  // namespace worker

#endif  // CRUCIBLE_WORKER_READINESS_H_
