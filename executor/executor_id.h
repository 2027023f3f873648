#ifndef CRUCIBLE_EXECUTOR_EXECUTOR_ID_H_
#define CRUCIBLE_EXECUTOR_EXECUTOR_ID_H_

#include <string>
#include <utility>

#include "absl/random/bit_gen_ref.h"
#include "absl/status/statusor.h"

namespace executor {

struct ExecutorIdOptions {
  // --executor_id: used as is when set.
  std::string id;
  // --executor_id_file: else, the id kept in this file (one generated and
  // written there if the file is missing or empty), locked for the life of
  // the process so that no second executor can take the same id.
  std::string id_file;
  // --listen: else <hostname>-<its port>, or <hostname>-<pid> for port 0.
  std::string listen;
  std::string hostname = "executor";
  int pid = 0;
};

// The value of the crucible.executor label on an executor's containers.
// The orphan reaper removes every container that carries it and that no run
// of this process owns, so it must be unique among the executors sharing an
// engine, and it should stay the same across restarts so that a restarted
// executor reaps what its predecessor left. Move-only; holds the id file's
// lock (if any) until destroyed. Not thread-safe (main's).
class ExecutorIdentity {
 public:
  // FAILED_PRECONDITION if the id file is locked by another process (a
  // running executor uses it); INTERNAL if it cannot be read or written;
  // the id itself is checked later by the policy (ContainerPolicy::Create).
  static absl::StatusOr<ExecutorIdentity> Resolve(
      const ExecutorIdOptions& options, absl::BitGenRef gen);

  ExecutorIdentity(ExecutorIdentity&& other) noexcept;
  ExecutorIdentity& operator=(ExecutorIdentity&& other) noexcept;
  ~ExecutorIdentity();

  const std::string& id() const { return id_; }
  // Where it came from, for the start-up log.
  const std::string& source() const { return source_; }
  // False for <hostname>-<pid>: a restart gets another id.
  bool stable() const { return stable_; }

 private:
  ExecutorIdentity(std::string id, std::string source, bool stable, int fd)
      : id_(std::move(id)),
        source_(std::move(source)),
        stable_(stable),
        fd_(fd) {}

  std::string id_;
  std::string source_;
  bool stable_ = true;
  int fd_ = -1;  // the locked id file, or -1
};

}  // namespace executor

#endif  // CRUCIBLE_EXECUTOR_EXECUTOR_ID_H_
