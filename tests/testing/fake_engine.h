#ifndef CRUCIBLE_TESTS_TESTING_FAKE_ENGINE_H_
#define CRUCIBLE_TESTS_TESTING_FAKE_ENGINE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "executor/docker/engine.h"
#include "nlohmann/json.hpp"

namespace testing_util {

// An in-process container engine for tests of the runner's logic, in the
// spirit of leveldb's fault-injection Env: containers live in a map, "run"
// by following a script (exit code, stdout, stderr, or run until killed),
// and every call can be made to fail, or to stall, on demand. Calls are
// recorded as "op name" strings ("create crucible-r1", "remove
// crucible-r1"), so tests assert what the runner asked for. Nothing real
// runs, no time passes: a container exits at Start (or at Kill, or at
// Exit), and the streaming calls block on the engine's own state.
// Thread-safe.
class FakeEngine final : public docker::Engine {
 public:
  // The calls, for fault injection and for counting.
  enum class Op {
    kPing,
    kInspectImage,
    kPullImage,
    kCreate,
    kWait,
    kStart,
    kLogs,
    kWriteStdin,
    kKill,
    kInspect,
    kRemove,
    kList,
  };

  // What a container created from now on does once started.
  struct Script {
    int64_t exit_code = 0;
    std::string stdout_data;
    std::string stderr_data;
    // Runs until Kill (exit 137) or Exit instead of exiting at Start.
    bool until_killed = false;
    // Inspect reports OOMKilled (with exit 137).
    bool oom_killed = false;
  };

  FakeEngine();
  // Makes the images in `images` present (others are missing).
  void AddImage(std::string image);
  // Whether PullImage succeeds (adding the image) or fails.
  void SetPullWorks(bool works);
  void SetScript(Script script);
  // HostConfig limits ("Memory", "MemorySwap", "PidsLimit", "NanoCpus")
  // that containers created from now on do not keep (InspectContainer
  // reports 0), as an engine that cannot enforce them drops them.
  void SetDroppedLimits(std::set<std::string> keys);
  // What StreamArchive answers for any container from now on: `tar`, in
  // pieces of `piece` bytes, then `end` (not OK: a download that breaks).
  void SetArchive(std::string tar, absl::Status end = absl::OkStatus(),
                  size_t piece = 1000);

  // The next `times` calls of `op` fail with `status` and have no effect.
  void FailNext(Op op, absl::Status status, int times = 1);
  // Every call fails with UNAVAILABLE (engine or proxy down) while true;
  // streaming calls in progress go on blocking, as a hung engine's would.
  void SetUnreachable(bool unreachable);
  // The next call of `op` blocks (without effect) until its abort function
  // returns true or Unstall; a non-streaming call only until Unstall.
  void StallNext(Op op);
  void Unstall();

  // Makes the running container `name` exit with `exit_code`.
  void Exit(absl::string_view name, int64_t exit_code);
  // Adds a container as if created earlier (e.g. by a crashed executor).
  void AddContainer(std::string name, std::map<std::string, std::string> labels,
                    bool running);

  // Calls made so far, oldest first: "op name" (e.g. "kill crucible-r1").
  std::vector<std::string> calls() const;
  int CallCount(Op op) const;
  // Waits until `op` has been called `n` times (stalled calls count once
  // they are blocked); false after `timeout`.
  bool WaitForCalls(Op op, int n, absl::Duration timeout = absl::Seconds(10));
  // Containers that exist now, by name.
  std::set<std::string> containers() const;
  // What WriteStdin gave the container `name` (kept after its removal).
  std::string StdinOf(absl::string_view name) const;
  // The body the last container named `name` was created with (kept after
  // its removal); null if there was none.
  nlohmann::json CreateBodyOf(absl::string_view name) const;

  // docker::Engine.
  absl::Status Ping() override;
  absl::Status InspectImage(absl::string_view image) override;
  absl::Status PullImage(absl::string_view image) override;
  absl::StatusOr<std::string> CreateContainer(
      absl::string_view name, const nlohmann::json& body) override;
  absl::StatusOr<int64_t> Wait(absl::string_view id,
                               absl::string_view condition,
                               const docker::AbortFn& abort,
                               const std::function<void()>& on_sent) override;
  absl::Status Start(absl::string_view id) override;
  absl::Status Logs(absl::string_view id, bool follow,
                    const std::function<bool(absl::string_view)>& on_bytes,
                    const docker::AbortFn& abort) override;
  absl::Status WriteStdin(absl::string_view id, absl::string_view data,
                          const docker::AbortFn& abort) override;
  absl::Status Kill(absl::string_view id) override;
  absl::StatusOr<docker::ContainerState> InspectContainer(
      absl::string_view id) override;
  absl::Status Remove(absl::string_view id) override;
  absl::StatusOr<std::vector<docker::ContainerSummary>> ListContainers(
      absl::string_view label_key, absl::string_view label_value) override;
  absl::Status StreamArchive(
      absl::string_view id, absl::string_view path,
      const std::function<bool(absl::string_view)>& on_bytes) override;

 private:
  struct Container {
    std::string id;
    std::map<std::string, std::string> labels;
    Script script;
    std::string status = "created";  // "running", "exited"
    int64_t exit_code = 0;
    docker::ContainerState limits;  // only the limit fields are used
  };

  // Records the call and applies the faults: a failure to return, a stall
  // (waits it out first), or OK to go on. `abort` may be null.
  absl::Status Enter(Op op, absl::string_view name,
                     const docker::AbortFn* abort);
  // Blocks until `done` holds or `abort` returns true; false if aborted.
  bool BlockUntil(const std::function<bool()>& done,
                  const docker::AbortFn& abort)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExitLocked(Container& c, int64_t exit_code)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The container `name`, or null.
  Container* FindLocked(absl::string_view name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static std::string Frames(const Script& script);

  mutable absl::Mutex mu_;
  std::set<std::string> images_ ABSL_GUARDED_BY(mu_);
  bool pull_works_ ABSL_GUARDED_BY(mu_) = false;
  Script script_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> dropped_limits_ ABSL_GUARDED_BY(mu_);
  std::string archive_ ABSL_GUARDED_BY(mu_);
  absl::Status archive_end_ ABSL_GUARDED_BY(mu_) =
      absl::UnimplementedError("no archive set");
  size_t archive_piece_ ABSL_GUARDED_BY(mu_) = 1000;
  std::map<Op, std::deque<absl::Status>> failures_ ABSL_GUARDED_BY(mu_);
  std::set<Op> stall_next_ ABSL_GUARDED_BY(mu_);
  uint64_t unstalls_ ABSL_GUARDED_BY(mu_) = 0;  // bumped by Unstall
  bool unreachable_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Container> containers_ ABSL_GUARDED_BY(mu_);
  int next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::string, nlohmann::json> create_bodies_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> stdin_
      ABSL_GUARDED_BY(mu_);  // by name, kept
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
  std::map<Op, int> counts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace testing_util

#endif  // CRUCIBLE_TESTS_TESTING_FAKE_ENGINE_H_
