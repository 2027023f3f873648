#include "cli/interrupts.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "cli/exit_codes.h"

namespace cli {
namespace {

// SIGINT is what the user sends; SIGUSR2 only wakes the thread to stop.
sigset_t WaitedSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR2);
  return set;
}

}  // namespace

Interrupts::Interrupts() {
  sigset_t set = WaitedSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  thread_ = std::thread([this] { Loop(); });
}

Interrupts::~Interrupts() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  pthread_kill(thread_.native_handle(), SIGUSR2);
  thread_.join();
}

void Interrupts::Loop() {
  const sigset_t set = WaitedSignals();
  while (true) {
    int signal = 0;
    if (sigwait(&set, &signal) != 0) continue;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    if (signal == SIGINT) OnSignal();
  }
}

void Interrupts::OnSignal() {
  absl::MutexLock lock(&mu_);
  if (++count_ >= 2) {
    // The user insists: leave now, as a shell would after SIGINT.
    static constexpr char kBye[] = "\ncrucible: interrupted again; quitting\n";
    (void)!write(STDERR_FILENO, kBye, sizeof(kBye) - 1);
    _exit(kExitCancelled);
  }
  // TryCancel neither blocks nor calls back into this class, and holding the
  // lock keeps the Scope (and so the context) from going away meanwhile.
  if (following_ != nullptr) following_->TryCancel();
}

bool Interrupts::interrupted() const {
  absl::MutexLock lock(&mu_);
  return count_ > 0;
}

bool Interrupts::WaitForInterrupt(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(
      absl::Condition(this, &Interrupts::InterruptedLocked), timeout);
}

Interrupts::Scope::Scope(Interrupts* interrupts, grpc::ClientContext* ctx,
                         bool if_interrupted)
    : interrupts_(interrupts) {
  if (interrupts_ == nullptr) return;
  absl::MutexLock lock(&interrupts_->mu_);
  interrupts_->following_ = ctx;
  if (if_interrupted && interrupts_->count_ > 0) ctx->TryCancel();
}

Interrupts::Scope::~Scope() {
  if (interrupts_ == nullptr) return;
  absl::MutexLock lock(&interrupts_->mu_);
  interrupts_->following_ = nullptr;
}

}  // namespace cli
