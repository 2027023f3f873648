#ifndef CRUCIBLE_CLI_INTERRUPTS_H_
#define CRUCIBLE_CLI_INTERRUPTS_H_

#include <grpcpp/grpcpp.h>

#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace cli {

// Turns Ctrl-C (SIGINT) into something the commands can act on: it cancels
// the call being followed (see Scope) and is counted; the second one ends the
// process at once with exit code 130. Thread-safe. At most one per process.
class Interrupts {
 public:
  // Blocks SIGINT in the calling thread and in every thread started after
  // (gRPC's included), and starts the thread that takes it. Construct first
  // in main(), before any channel.
  Interrupts();
  // Stops and joins the signal thread.
  ~Interrupts();
  Interrupts(const Interrupts&) = delete;
  Interrupts& operator=(const Interrupts&) = delete;

  // While alive, a SIGINT calls ctx->TryCancel() (the call then ends with
  // CANCELLED and the command asks interrupted()). With `if_interrupted`, a
  // SIGINT that came before the scope cancels the call at once. `interrupts`
  // may be null (nothing happens).
  class Scope {
   public:
    Scope(Interrupts* interrupts, grpc::ClientContext* ctx,
          bool if_interrupted = true);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Interrupts* interrupts_;
  };

  // True once a SIGINT arrived.
  bool interrupted() const;
  // Waits up to `timeout`; true if a SIGINT arrived (now or before).
  bool WaitForInterrupt(absl::Duration timeout) const;
  // Delivers an interrupt as if SIGINT had arrived. For tests.
  void InterruptForTest() { OnSignal(); }

 private:
  void Loop();
  void OnSignal();
  bool InterruptedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return count_ > 0;
  }

  mutable absl::Mutex mu_;
  int count_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::ClientContext* following_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace cli

#endif  // CRUCIBLE_CLI_INTERRUPTS_H_
