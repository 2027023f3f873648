#include "tests/testing/fake_engine.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace testing_util {
namespace {

using Op = FakeEngine::Op;

const char* OpName(Op op) {
  switch (op) {
    case Op::kPing:
      return "ping";
    case Op::kInspectImage:
      return "inspect-image";
    case Op::kPullImage:
      return "pull";
    case Op::kCreate:
      return "create";
    case Op::kWait:
      return "wait";
    case Op::kStart:
      return "start";
    case Op::kLogs:
      return "logs";
    case Op::kWriteStdin:
      return "stdin";
    case Op::kKill:
      return "kill";
    case Op::kInspect:
      return "inspect";
    case Op::kRemove:
      return "remove";
    case Op::kList:
      return "list";
  }
  return "?";
}

// One frame of the Docker multiplexed stream format.
void AppendFrame(std::string& out, char stream, absl::string_view data) {
  if (data.empty()) return;
  const uint32_t n = static_cast<uint32_t>(data.size());
  out.push_back(stream);
  out.append(3, '\0');
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((n >> shift) & 0xff));
  }
  out.append(data.data(), data.size());
}

}  // namespace

FakeEngine::FakeEngine() = default;

void FakeEngine::AddImage(std::string image) {
  absl::MutexLock lock(&mu_);
  images_.insert(std::move(image));
}

void FakeEngine::SetPullWorks(bool works) {
  absl::MutexLock lock(&mu_);
  pull_works_ = works;
}

void FakeEngine::SetScript(Script script) {
  absl::MutexLock lock(&mu_);
  script_ = std::move(script);
}

void FakeEngine::SetDroppedLimits(std::set<std::string> keys) {
  absl::MutexLock lock(&mu_);
  dropped_limits_ = std::move(keys);
}

void FakeEngine::SetArchive(std::string tar, absl::Status end, size_t piece) {
  absl::MutexLock lock(&mu_);
  archive_ = std::move(tar);
  archive_end_ = std::move(end);
  archive_piece_ = std::max<size_t>(piece, 1);
}

absl::Status FakeEngine::StreamArchive(
    absl::string_view id, absl::string_view path,
    const std::function<bool(absl::string_view)>& on_bytes) {
  std::string tar;
  absl::Status end;
  size_t piece;
  {
    absl::MutexLock lock(&mu_);
    tar = archive_;
    end = archive_end_;
    piece = archive_piece_;
  }
  for (size_t off = 0; off < tar.size(); off += piece) {
    if (!on_bytes(absl::string_view(tar).substr(off, piece))) {
      return absl::CancelledError("archive download stopped");
    }
  }
  return end;
}

void FakeEngine::FailNext(Op op, absl::Status status, int times) {
  absl::MutexLock lock(&mu_);
  for (int i = 0; i < times; ++i) failures_[op].push_back(status);
}

void FakeEngine::SetUnreachable(bool unreachable) {
  absl::MutexLock lock(&mu_);
  unreachable_ = unreachable;
}

void FakeEngine::StallNext(Op op) {
  absl::MutexLock lock(&mu_);
  stall_next_.insert(op);
}

void FakeEngine::Unstall() {
  absl::MutexLock lock(&mu_);
  ++unstalls_;
}

void FakeEngine::Exit(absl::string_view name, int64_t exit_code) {
  absl::MutexLock lock(&mu_);
  if (Container* c = FindLocked(name); c != nullptr && c->status == "running") {
    ExitLocked(*c, exit_code);
  }
}

void FakeEngine::AddContainer(std::string name,
                              std::map<std::string, std::string> labels,
                              bool running) {
  absl::MutexLock lock(&mu_);
  Container& c = containers_[name];
  c.id = absl::StrCat("old", next_id_++);
  c.labels = std::move(labels);
  c.status = running ? "running" : "exited";
  c.script.until_killed = running;
}

std::vector<std::string> FakeEngine::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

int FakeEngine::CallCount(Op op) const {
  absl::MutexLock lock(&mu_);
  auto it = counts_.find(op);
  return it == counts_.end() ? 0 : it->second;
}

bool FakeEngine::WaitForCalls(Op op, int n, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto reached = [this, op, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return counts_[op] >= n;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

std::set<std::string> FakeEngine::containers() const {
  absl::MutexLock lock(&mu_);
  std::set<std::string> names;
  for (const auto& [name, c] : containers_) names.insert(name);
  return names;
}

nlohmann::json FakeEngine::CreateBodyOf(absl::string_view name) const {
  absl::MutexLock lock(&mu_);
  auto it = create_bodies_.find(std::string(name));
  return it == create_bodies_.end() ? nlohmann::json() : it->second;
}

std::string FakeEngine::StdinOf(absl::string_view name) const {
  absl::MutexLock lock(&mu_);
  auto it = stdin_.find(std::string(name));
  return it == stdin_.end() ? "" : it->second;
}

absl::Status FakeEngine::Enter(Op op, absl::string_view name,
                               const docker::AbortFn* abort) {
  absl::MutexLock lock(&mu_);
  calls_.push_back(name.empty() ? OpName(op)
                                : absl::StrCat(OpName(op), " ", name));
  ++counts_[op];
  if (unreachable_) {
    return absl::UnavailableError(
        "fake engine: unreachable (connection refused)");
  }
  if (auto it = failures_.find(op);
      it != failures_.end() && !it->second.empty()) {
    absl::Status s = std::move(it->second.front());
    it->second.pop_front();
    return s;
  }
  if (stall_next_.erase(op) > 0) {
    const uint64_t unstalls = unstalls_;
    auto released = [this, unstalls]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return unstalls_ != unstalls;
    };
    if (!BlockUntil(released, abort != nullptr ? *abort : docker::AbortFn())) {
      return absl::CancelledError(
          absl::StrCat("fake engine: ", OpName(op), " aborted"));
    }
  }
  return absl::OkStatus();
}

bool FakeEngine::BlockUntil(const std::function<bool()>& done,
                            const docker::AbortFn& abort) {
  while (!done()) {
    if (abort && abort()) return false;
    // Abort functions are polled (as the real client does); state changes
    // wake the wait at once.
    auto ready = [&done]() { return done(); };
    mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(5));
  }
  return true;
}

void FakeEngine::ExitLocked(Container& c, int64_t exit_code) {
  c.status = "exited";
  c.exit_code = exit_code;
}

FakeEngine::Container* FakeEngine::FindLocked(absl::string_view name) {
  if (auto it = containers_.find(std::string(name)); it != containers_.end())
    return &it->second;
  for (auto& [n, c] : containers_) {
    if (c.id == name) return &c;
  }
  return nullptr;
}

std::string FakeEngine::Frames(const Script& script) {
  std::string out;
  AppendFrame(out, 1, script.stdout_data);
  AppendFrame(out, 2, script.stderr_data);
  return out;
}

absl::Status FakeEngine::Ping() { return Enter(Op::kPing, "", nullptr); }

absl::Status FakeEngine::InspectImage(absl::string_view image) {
  if (absl::Status s = Enter(Op::kInspectImage, image, nullptr); !s.ok())
    return s;
  absl::MutexLock lock(&mu_);
  if (images_.contains(std::string(image))) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("image ", image, " is not present"));
}

absl::Status FakeEngine::PullImage(absl::string_view image) {
  if (absl::Status s = Enter(Op::kPullImage, image, nullptr); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  if (!pull_works_) {
    return absl::FailedPreconditionError(
        absl::StrCat("could not pull ", image, ": no registry here"));
  }
  images_.insert(std::string(image));
  return absl::OkStatus();
}

absl::StatusOr<std::string> FakeEngine::CreateContainer(
    absl::string_view name, const nlohmann::json& body) {
  if (absl::Status s = Enter(Op::kCreate, name, nullptr); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  // A real engine answers 404 (no such image), which the client reports as
  // FAILED_PRECONDITION.
  if (!body.contains("Image") || !body["Image"].is_string() ||
      !images_.contains(body["Image"].get<std::string>())) {
    return absl::FailedPreconditionError(
        absl::StrCat("create ", name, ": no such image"));
  }
  if (containers_.contains(std::string(name))) {
    return absl::InternalError(
        absl::StrCat("the container name ", name, " is already in use"));
  }
  Container& c = containers_[std::string(name)];
  c.id = absl::StrCat("c", next_id_++);
  create_bodies_[std::string(name)] = body;
  c.script = script_;
  if (body.contains("Labels") && body["Labels"].is_object()) {
    for (const auto& [k, v] : body["Labels"].items()) {
      if (v.is_string()) c.labels[k] = v.get<std::string>();
    }
  }
  if (body.contains("HostConfig") && body["HostConfig"].is_object()) {
    const nlohmann::json& h = body["HostConfig"];
    auto kept = [&](const char* key)
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> int64_t {
      if (dropped_limits_.contains(key) || !h.contains(key) ||
          !h[key].is_number_integer()) {
        return 0;
      }
      return h[key].get<int64_t>();
    };
    c.limits.memory_bytes = kept("Memory");
    c.limits.memory_swap_bytes = kept("MemorySwap");
    c.limits.pids_limit = kept("PidsLimit");
    c.limits.nano_cpus = kept("NanoCpus");
  }
  return c.id;
}

absl::StatusOr<int64_t> FakeEngine::Wait(absl::string_view id,
                                         absl::string_view,
                                         const docker::AbortFn& abort,
                                         const std::function<void()>& on_sent) {
  if (absl::Status s = Enter(Op::kWait, id, &abort); !s.ok()) return s;
  if (on_sent) on_sent();
  absl::MutexLock lock(&mu_);
  const std::string name(id);
  auto exited = [this, &name]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Container* c = FindLocked(name);
    return c == nullptr || c->status == "exited";
  };
  if (!BlockUntil(exited, abort))
    return absl::CancelledError("fake engine: wait aborted");
  Container* c = FindLocked(name);
  if (c == nullptr)
    return absl::NotFoundError(absl::StrCat("no such container: ", id));
  return c->exit_code;
}

absl::Status FakeEngine::Start(absl::string_view id) {
  if (absl::Status s = Enter(Op::kStart, id, nullptr); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  Container* c = FindLocked(id);
  if (c == nullptr)
    return absl::NotFoundError(absl::StrCat("no such container: ", id));
  if (c->status != "created") return absl::OkStatus();
  if (c->script.until_killed) {
    c->status = "running";
  } else {
    ExitLocked(*c, c->script.exit_code);
  }
  return absl::OkStatus();
}

absl::Status FakeEngine::Logs(
    absl::string_view id, bool follow,
    const std::function<bool(absl::string_view)>& on_bytes,
    const docker::AbortFn& abort) {
  if (absl::Status s = Enter(Op::kLogs, id, &abort); !s.ok()) return s;
  std::string bytes;
  {
    absl::MutexLock lock(&mu_);
    Container* c = FindLocked(id);
    if (c == nullptr)
      return absl::NotFoundError(absl::StrCat("no such container: ", id));
    bytes = Frames(c->script);
  }
  // Outside the lock: the sink may block (flow control).
  if (!bytes.empty() && !on_bytes(bytes))
    return absl::CancelledError("fake engine: logs ended");
  if (!follow) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  const std::string name(id);
  auto exited = [this, &name]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Container* c = FindLocked(name);
    return c == nullptr || c->status == "exited";
  };
  if (!BlockUntil(exited, abort))
    return absl::CancelledError("fake engine: logs aborted");
  return absl::OkStatus();
}

absl::Status FakeEngine::WriteStdin(absl::string_view id,
                                    absl::string_view data,
                                    const docker::AbortFn& abort) {
  if (absl::Status s = Enter(Op::kWriteStdin, id, &abort); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  Container* c = FindLocked(id);
  if (c == nullptr)
    return absl::NotFoundError(absl::StrCat("no such container: ", id));
  stdin_[std::string(id)].append(data.data(), data.size());
  return absl::OkStatus();
}

absl::Status FakeEngine::Kill(absl::string_view id) {
  if (absl::Status s = Enter(Op::kKill, id, nullptr); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  Container* c = FindLocked(id);
  if (c == nullptr)
    return absl::NotFoundError(absl::StrCat("no such container: ", id));
  if (c->status == "running") ExitLocked(*c, 137);
  return absl::OkStatus();
}

absl::StatusOr<docker::ContainerState> FakeEngine::InspectContainer(
    absl::string_view id) {
  if (absl::Status s = Enter(Op::kInspect, id, nullptr); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  Container* c = FindLocked(id);
  if (c == nullptr)
    return absl::NotFoundError(absl::StrCat("no such container: ", id));
  docker::ContainerState state;
  state.status = c->status;
  state.running = c->status == "running";
  state.exit_code = c->exit_code;
  state.finished = c->status == "exited";
  state.oom_killed = c->status == "exited" && c->script.oom_killed;
  state.memory_bytes = c->limits.memory_bytes;
  state.memory_swap_bytes = c->limits.memory_swap_bytes;
  state.pids_limit = c->limits.pids_limit;
  state.nano_cpus = c->limits.nano_cpus;
  return state;
}

absl::Status FakeEngine::Remove(absl::string_view id) {
  if (absl::Status s = Enter(Op::kRemove, id, nullptr); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  if (Container* c = FindLocked(id); c != nullptr) {
    // Erased by name: FindLocked may have matched the id.
    for (auto it = containers_.begin(); it != containers_.end(); ++it) {
      if (&it->second == c) {
        containers_.erase(it);
        break;
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<docker::ContainerSummary>>
FakeEngine::ListContainers(absl::string_view label_key,
                           absl::string_view label_value) {
  if (absl::Status s = Enter(Op::kList, "", nullptr); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  std::vector<docker::ContainerSummary> out;
  for (const auto& [name, c] : containers_) {
    auto label = c.labels.find(std::string(label_key));
    if (label == c.labels.end() || label->second != label_value) continue;
    out.push_back(
        {.id = c.id, .name = name, .state = c.status, .labels = c.labels});
  }
  return out;
}

}  // namespace testing_util
