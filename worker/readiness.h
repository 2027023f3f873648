#ifndef CRUCIBLE_WORKER_READINESS_H_
#define CRUCIBLE_WORKER_READINESS_H_

#include <string>

namespace worker {

// Whether the worker can do its job now: it has an open stream to the
// server (the hello was sent) and at least one executor in rotation; and
// why not. Also orders the publication of changes (to the health service)
// so that concurrent updates, published without a lock held, end with the
// last state: one caller publishes at a time, and goes on while the state
// moved meanwhile. Not thread-safe: the worker calls it under its lock.
class Readiness {
 public:
  void SetStreamUp(bool up) { stream_up_ = up; }
  void SetExecutorsInRotation(int n) { executors_in_rotation_ = n; }

  bool ready() const { return stream_up_ && executors_in_rotation_ > 0; }
  // Why it is ready or not, for the log.
  std::string Reason() const;

  // True if the caller is to publish ready() now (it differs from what was
  // last published and no one else is publishing); the caller must then call
  // PublishedOne after publishing, until it returns false.
  bool StartPublishing();
  // The caller published; true if it must publish ready() again (it moved
  // meanwhile), false if it is done.
  bool PublishedOne();

 private:
  bool stream_up_ = false;
  int executors_in_rotation_ = 0;
  bool published_ = false;  // what the health service was last told
  bool publishing_ = false;
};

}  // namespace worker

#endif  // CRUCIBLE_WORKER_READINESS_H_
