#include "server/scheduler/fleet_admission.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/proto_time.h"
#include "server/scheduler/request_validation.h"

namespace server {
namespace {

using crucible::v1::ExecutorAccepts;
using crucible::v1::TaskSpec;

// Messages name at most this many image rules or executor reasons.
constexpr size_t kMaxListed = 4;

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

// The bytes of a spec's input files' contents.
int64_t InputBytes(const TaskSpec& spec) {
  int64_t total = 0;
  for (const crucible::v1::InputFile& f : spec.files())
    total += static_cast<int64_t>(f.content().size());
  return total;
}

// One integer limit of a spec: its field, the executor's policy rule, the
// value the spec asks for (0: the executor's default) and the maximum.
struct IntLimit {
  const char* field;
  const char* rule;
  int64_t (*value)(const TaskSpec&);
  int64_t (*max)(const ExecutorAccepts&);
};

constexpr IntLimit kIntLimits[] = {
    {"spec.resources.memory_bytes", "memory_bytes.max",
     [](const TaskSpec& s) { return s.resources().memory_bytes(); },
     [](const ExecutorAccepts& a) { return a.max_memory_bytes(); }},
    {"spec.resources.cpu_millis", "cpu_millis.max",
     [](const TaskSpec& s) { return s.resources().cpu_millis(); },
     [](const ExecutorAccepts& a) { return a.max_cpu_millis(); }},
    {"spec.resources.pids_limit", "pids_limit.max",
     [](const TaskSpec& s) { return s.resources().pids_limit(); },
     [](const ExecutorAccepts& a) { return a.max_pids_limit(); }},
    {"spec.resources.tmpfs_bytes", "tmpfs_bytes.max",
     [](const TaskSpec& s) { return s.resources().tmpfs_bytes(); },
     [](const ExecutorAccepts& a) { return a.max_tmpfs_bytes(); }},
    {"spec.max_output_bytes", "max_output_bytes.max",
     [](const TaskSpec& s) { return s.max_output_bytes(); },
     [](const ExecutorAccepts& a) { return a.max_output_bytes(); }},
    {"spec.resources.scratch_bytes", "scratch_bytes.max",
     [](const TaskSpec& s) { return s.resources().scratch_bytes(); },
     [](const ExecutorAccepts& a) { return a.max_scratch_bytes(); }},
    {"spec.max_artifact_bytes", "max_artifact_bytes.max",
     [](const TaskSpec& s) { return s.max_artifact_bytes(); },
     [](const ExecutorAccepts& a) { return a.max_artifact_bytes(); }},
    {"spec.files (count)", "max_input_files",
     [](const TaskSpec& s) { return int64_t{s.files_size()}; },
     [](const ExecutorAccepts& a) { return a.max_input_files(); }},
    {"spec.files (bytes)", "max_input_bytes", &InputBytes,
     [](const ExecutorAccepts& a) { return a.max_input_bytes(); }},
};

// An executor collects artifacts only if it keeps some bytes of them; one
// that reports no maximum (an older one, or a policy without a scratch
// area) would run the task and silently return none.
bool CollectsArtifacts(const ExecutorAccepts& a) {
  return a.max_artifact_bytes() > 0;
}

absl::Status NoArtifacts(absl::string_view who) {
  return Invalid("spec.artifacts",
                 absl::StrCat(who,
                              " collects no artifacts (its policy has no "
                              "max_artifact_bytes)"));
}

// The spec's timeout; zero when unset or zero (the executor's default).
absl::Duration Timeout(const TaskSpec& spec) {
  return spec.has_timeout() ? common::FromProtoDuration(spec.timeout())
                            : absl::ZeroDuration();
}

bool ImageAllowed(const ExecutorAccepts& a, absl::string_view image) {
  return std::find(a.images().begin(), a.images().end(), image) !=
             a.images().end() ||
         std::any_of(
             a.image_prefixes().begin(), a.image_prefixes().end(),
             [&](const std::string& p) { return absl::StartsWith(image, p); });
}

// "a", "b", "c", "d" and 3 more.
std::string ListSome(const std::set<std::string>& items) {
  std::vector<std::string> some;
  for (const std::string& i : items) {
    if (some.size() == kMaxListed) break;
    some.push_back(i);
  }
  std::string list = absl::StrJoin(some, ", ");
  if (items.size() > some.size()) {
    absl::StrAppend(&list, " and ", items.size() - some.size(), " more");
  }
  return list;
}

std::set<std::string> ImageRules(
    const std::vector<const ExecutorAccepts*>& fleet) {
  std::set<std::string> rules;
  for (const ExecutorAccepts* a : fleet) {
    for (const std::string& i : a->images())
      rules.insert(absl::StrCat("\"", i, "\""));
    for (const std::string& p : a->image_prefixes())
      rules.insert(absl::StrCat("\"", p, "*\""));
  }
  return rules;
}

// The first field of `spec` that no executor of `fleet` accepts on its own,
// naming the most any of them accepts; OK if each field alone is accepted by
// some executor.
absl::Status CheckUnion(const std::vector<const ExecutorAccepts*>& fleet,
                        const TaskSpec& spec) {
  if (std::none_of(fleet.begin(), fleet.end(), [&](const ExecutorAccepts* a) {
        return ImageAllowed(*a, spec.image());
      })) {
    return Invalid(
        "spec.image",
        absl::StrCat("\"", Abbreviate(spec.image()),
                     "\" is allowed by no connected executor; they allow ",
                     ListSome(ImageRules(fleet))));
  }
  for (const IntLimit& limit : kIntLimits) {
    const int64_t value = limit.value(spec);
    int64_t largest = 0;
    for (const ExecutorAccepts* a : fleet)
      largest = std::max(largest, limit.max(*a));
    if (value > largest) {
      return Invalid(
          limit.field,
          absl::StrCat(value,
                       " is more than any connected executor accepts "
                       "(the largest maximum is ",
                       largest, ")"));
    }
  }
  if (spec.artifacts_size() > 0 &&
      std::none_of(fleet.begin(), fleet.end(), [](const ExecutorAccepts* a) {
        return CollectsArtifacts(*a);
      })) {
    return NoArtifacts("no connected executor");
  }
  const int64_t memory = spec.resources().memory_bytes();
  int64_t smallest = INT64_MAX;
  for (const ExecutorAccepts* a : fleet)
    smallest = std::min(smallest, a->min_memory_bytes());
  if (memory > 0 && memory < smallest) {
    return Invalid("spec.resources.memory_bytes",
                   absl::StrCat(memory,
                                " is less than any connected executor accepts "
                                "(the smallest minimum is ",
                                smallest, ")"));
  }
  absl::Duration longest = absl::ZeroDuration();
  for (const ExecutorAccepts* a : fleet) {
    longest = std::max(longest, common::FromProtoDuration(a->max_timeout()));
  }
  if (Timeout(spec) > longest) {
    return Invalid(
        "spec.timeout",
        absl::StrCat(
            absl::FormatDuration(Timeout(spec)),
            " is more than any connected executor accepts (the longest "
            "maximum is ",
            absl::FormatDuration(longest), ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckAccepts(const ExecutorAccepts& a, const TaskSpec& spec) {
  const std::string executor =
      absl::StrCat("executor ", Abbreviate(a.executor_id()));
  if (!ImageAllowed(a, spec.image())) {
    return Invalid("spec.image", absl::StrCat("\"", Abbreviate(spec.image()),
                                              "\" is not allowed by ", executor,
                                              " (it allows ",
                                              ListSome(ImageRules({&a})), ")"));
  }
  for (const IntLimit& limit : kIntLimits) {
    const int64_t value = limit.value(spec);
    if (value > limit.max(a)) {
      return Invalid(
          limit.field,
          absl::StrCat(value, " exceeds ", executor, "'s maximum ",
                       limit.max(a), " (policy rule ", limit.rule, ")"));
    }
  }
  if (spec.artifacts_size() > 0 && !CollectsArtifacts(a)) {
    return NoArtifacts(executor);
  }
  const int64_t memory = spec.resources().memory_bytes();
  if (memory > 0 && memory < a.min_memory_bytes()) {
    return Invalid("spec.resources.memory_bytes",
                   absl::StrCat(memory, " is below ", executor, "'s minimum ",
                                a.min_memory_bytes()));
  }
  const absl::Duration max_timeout = common::FromProtoDuration(a.max_timeout());
  if (Timeout(spec) > max_timeout) {
    return Invalid(
        "spec.timeout",
        absl::StrCat(absl::FormatDuration(Timeout(spec)), " exceeds ", executor,
                     "'s maximum ", absl::FormatDuration(max_timeout),
                     " (policy rule timeout.max)"));
  }
  return absl::OkStatus();
}

FleetAdmission::FleetAdmission(FleetAdmissionOptions options,
                               const common::Clock& clock)
    : options_(options), clock_(clock) {}

void FleetAdmission::Publish(const std::string& worker_id, uint64_t session,
                             std::vector<ExecutorAccepts> executors) {
  absl::MutexLock lock(&mu_);
  workers_[worker_id] =
      Worker{.session = session, .executors = std::move(executors)};
}

void FleetAdmission::PublishUnknown(const std::string& worker_id,
                                    uint64_t session) {
  absl::MutexLock lock(&mu_);
  workers_[worker_id] = Worker{.session = session, .unknown = true};
}

void FleetAdmission::Disconnected(const std::string& worker_id,
                                  uint64_t session) {
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(worker_id);
  // A newer stream of the same worker took over: it speaks for it now.
  if (it == workers_.end() || it->second.session != session) return;
  it->second.gone = clock_.Now();
  // Forget the ones past memory, so the map stays as small as the fleet.
  std::erase_if(workers_, [this](const auto& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(
                              mu_) { return !CountedLocked(w.second); });
}

bool FleetAdmission::CountedLocked(const Worker& w) const {
  return w.gone == absl::InfiniteFuture() ||
         clock_.Now() - w.gone < options_.memory;
}

bool FleetAdmission::Known() const {
  absl::ReaderMutexLock lock(&mu_);
  return std::any_of(workers_.begin(), workers_.end(),
                     [this](const auto& w) ABSL_SHARED_LOCKS_REQUIRED(mu_) {
                       return CountedLocked(w.second) &&
                              (w.second.unknown || !w.second.executors.empty());
                     });
}

absl::Status FleetAdmission::Check(const TaskSpec& spec) const {
  if (!options_.enabled) return absl::OkStatus();
  std::vector<const ExecutorAccepts*> fleet;
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [id, w] : workers_) {
    if (!CountedLocked(w)) continue;
    if (w.unknown) return absl::OkStatus();
    for (const ExecutorAccepts& a : w.executors) fleet.push_back(&a);
  }
  if (fleet.empty()) {
    return absl::UnavailableError(
        absl::StrCat("no executor is connected (none in the last ",
                     absl::FormatDuration(options_.memory),
                     "), so nothing can tell whether this task could run; "
                     "retry once a worker with "
                     "executors has connected"));
  }
  std::set<std::string> reasons;
  for (const ExecutorAccepts* a : fleet) {
    absl::Status s = CheckAccepts(*a, spec);
    if (s.ok()) return s;
    reasons.insert(std::string(s.message()));
  }
  if (absl::Status s = CheckUnion(fleet, spec); !s.ok()) return s;
  return Invalid(
      "spec", absl::StrCat("no connected executor accepts all of it at once: ",
                           ListSome(reasons)));
}

}  // namespace server
