#include "executor/engine_probe.h"

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "executor/docker/demux.h"
#include "glog/logging.h"

namespace executor {
namespace {

absl::Status Dropped(absl::string_view what) {
  return absl::FailedPreconditionError(absl::StrCat(
      "the container engine does not enforce the limits tasks rely on: ", what,
      " (a rootless engine needs cgroups v2 with the memory, pids and cpu "
      "controllers delegated; see docs/operator-guide.md, \"Rootless "
      "engine\")"));
}

// One limit as the engine keeps it (inspect) against what was asked.
absl::Status CheckKept(absl::string_view key, int64_t kept, int64_t asked) {
  if (kept == asked) return absl::OkStatus();
  return Dropped(absl::StrCat("HostConfig.", key, " is ", kept,
                              " after a create that asked for ", asked));
}

// Unavailable stays retryable; anything else the engine said while running
// the probe means it cannot run at all.
absl::Status ProbeFailed(absl::string_view step, const absl::Status& s) {
  if (absl::IsUnavailable(s) || absl::IsPermissionDenied(s)) return s;
  if (absl::IsNotFound(s)) {
    // Removed under the probe (the orphan reaper, or a second start of
    // this executor): not the engine's fault; tried again.
    return absl::UnavailableError(absl::StrCat(
        "the engine probe's container vanished while trying to ", step));
  }
  return absl::FailedPreconditionError(
      absl::StrCat("the engine probe failed to ", step, ": ", s.message()));
}

}  // namespace

absl::StatusOr<LimitsProbeReport> CheckProbeOutput(absl::string_view output,
                                                   int64_t memory_bytes,
                                                   int64_t pids_limit,
                                                   bool want_userns) {
  std::map<std::string, std::string> values;
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    std::pair<std::string, std::string> kv =
        absl::StrSplit(line, absl::MaxSplits(' ', 1));
    if (!kv.first.empty()) {
      values[kv.first] = std::string(absl::StripAsciiWhitespace(kv.second));
    }
  }
  LimitsProbeReport report;
  for (auto [key, asked, out] :
       {std::tuple{"memory", memory_bytes, &report.memory_bytes},
        std::tuple{"pids", pids_limit, &report.pids_limit}}) {
    auto it = values.find(key);
    if (it == values.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("the engine probe printed no ", key, " line (output: \"",
                       absl::CHexEscape(output.substr(0, 200)), "\")"));
    }
    if (!absl::SimpleAtoi(it->second, out)) {
      // "max" (no limit) or "unknown" (no cgroup to read).
      return Dropped(absl::StrCat(
          "inside the probe container the ", key, " limit is \"",
          absl::CHexEscape(it->second.substr(0, 40)), "\", not ", asked));
    }
    if (*out != asked) {
      return Dropped(absl::StrCat("inside the probe container the ", key,
                                  " limit is ", *out, ", not ", asked));
    }
  }
  auto uid_map = values.find("uid_map");
  if (uid_map != values.end()) report.uid_map = uid_map->second;
  if (want_userns) {
    std::vector<absl::string_view> f =
        absl::StrSplit(report.uid_map, ' ', absl::SkipEmpty());
    int64_t inside = -1, outside = -1;
    if (f.size() != 3 || !absl::SimpleAtoi(f[0], &inside) ||
        !absl::SimpleAtoi(f[1], &outside) || (inside == 0 && outside == 0)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the policy asks for a user namespace per container (userns "
          "\"auto\") but the probe container's uid map is \"",
          absl::CHexEscape(report.uid_map.substr(0, 80)),
          "\": its root is the host's (give the engine subordinate ids, "
          "docs/operator-guide.md, \"User namespaces\")"));
    }
  }
  return report;
}

absl::StatusOr<LimitsProbeReport> ProbeEngineLimits(
    docker::Engine& engine, const policy::ContainerPolicy& policy,
    const common::Clock& clock, const LimitsProbeOptions& options) {
  if (absl::Status s = engine.InspectImage(options.image); !s.ok()) {
    return ProbeFailed(absl::StrCat("find its image ", options.image,
                                    " (--engine_probe_image)"),
                       s);
  }
  crucible::v1::RunRequest request;
  request.set_run_id(options.run_id);
  request.set_task_id("engine-probe");
  crucible::v1::TaskSpec& spec = *request.mutable_spec();
  spec.set_image(options.image);
  for (const char* arg : {"sh", "-c", kLimitsProbeScript}) {
    spec.add_command(arg);
  }
  spec.mutable_resources()->set_memory_bytes(options.memory_bytes);
  spec.mutable_resources()->set_pids_limit(
      std::min(options.pids_limit, policy.options().max_pids_limit));
  absl::StatusOr<policy::ContainerPlan> plan = policy.Plan(request);
  if (!plan.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the policy refuses the engine probe: ", plan.status().message()));
  }
  const std::string& name = plan->name;
  // A probe container left by a crash of an earlier start.
  if (absl::Status s = engine.Remove(name); !s.ok()) {
    return ProbeFailed("remove an old probe container", s);
  }
  absl::StatusOr<std::string> id =
      engine.CreateContainer(name, plan->create_body);
  if (!id.ok()) return ProbeFailed("create its container", id.status());
  absl::Cleanup remove = [&engine, &name] {
    if (absl::Status s = engine.Remove(name); !s.ok()) {
      LOG(WARNING) << "engine probe: could not remove " << name << ": " << s;
    }
  };

  // What the engine keeps: a limit it cannot enforce may be dropped here.
  absl::StatusOr<docker::ContainerState> kept = engine.InspectContainer(name);
  if (!kept.ok()) return ProbeFailed("inspect its container", kept.status());
  const crucible::v1::Resources& asked = plan->resources;
  for (auto [key, value, want] :
       {std::tuple{"Memory", kept->memory_bytes, asked.memory_bytes()},
        std::tuple{"MemorySwap", kept->memory_swap_bytes, asked.memory_bytes()},
        std::tuple{"PidsLimit", kept->pids_limit, asked.pids_limit()},
        std::tuple{"NanoCpus", kept->nano_cpus,
                   asked.cpu_millis() * 1'000'000}}) {
    if (absl::Status s = CheckKept(key, value, want); !s.ok()) return s;
  }

  // What the kernel enforces: the cgroup's limits, seen from inside.
  if (absl::Status s = engine.Start(name); !s.ok()) {
    return ProbeFailed("start its container", s);
  }
  const absl::Time deadline = clock.Now() + options.timeout;
  absl::StatusOr<int64_t> exit_code = engine.Wait(
      name, "not-running", [&] { return clock.Now() > deadline; }, nullptr);
  if (!exit_code.ok()) {
    return ProbeFailed("wait for its container", exit_code.status());
  }
  std::string raw;
  if (absl::Status s = engine.Logs(
          name, /*follow=*/false,
          [&raw](absl::string_view bytes) {
            raw.append(bytes.data(), bytes.size());
            return true;
          },
          [] { return false; });
      !s.ok()) {
    return ProbeFailed("read its output", s);
  }
  docker::Demuxer demux;
  std::vector<docker::Frame> frames;
  std::string out, err;
  if (!demux.Feed(raw, frames)) {
    return absl::FailedPreconditionError(
        "the engine probe's output is garbled");
  }
  for (const docker::Frame& f : frames) {
    (f.stream == docker::StreamId::kStdout ? out : err) += f.data;
  }
  if (*exit_code != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("the engine probe exited ", *exit_code, " (stderr: \"",
                     absl::CHexEscape(err.substr(0, 200)), "\")"));
  }
  return CheckProbeOutput(out, asked.memory_bytes(), asked.pids_limit(),
                          !policy.options().userns.empty());
}

}  // namespace executor
