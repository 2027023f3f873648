// BatchCreateTasks: many creates under one lock and one group commit.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/status_macros.h"
#include "server/scheduler/request_validation.h"
#include "server/scheduler/scheduler.h"

namespace server {

using crucible::v1::Task;

absl::Status Scheduler::CreateTasksAsync(const TenantScope& scope,
                                         std::vector<CreateRequest> requests,
                                         BatchCreateDone done,
                                         std::string trace_id) {
  if (requests.size() > kMaxBatchCreateRequests) {
    return absl::InvalidArgumentError(
        absl::StrCat("requests: at most ", kMaxBatchCreateRequests,
                     " per batch (got ", requests.size(), ")"));
  }
  // While the disk is full nothing new is taken on: the whole batch waits.
  RETURN_IF_ERROR(outbox_.health());
  const std::string& tenant = scope.tenant;
  if (tenant.empty()) return absl::InternalError("no tenant");
  const size_t n = requests.size();
  // Each request is refused alone, as its CreateTask would be.
  std::vector<absl::Status> valid(n);
  std::vector<std::string> keys(n);
  std::vector<size_t> to_read;  // valid requests with a request_id
  for (size_t i = 0; i < n; ++i) {
    valid[i] = CheckCreate(requests[i].spec, requests[i].request_id);
    if (valid[i].ok() && !requests[i].request_id.empty()) {
      keys[i] = RequestKey(tenant, requests[i].request_id);
      to_read.push_back(i);
    }
  }
  const std::vector<size_t> with_key = to_read;
  std::vector<std::optional<absl::StatusOr<Task>>> stored(n);
  std::vector<uint64_t> ends(n, 0);
  while (true) {
    // As in CreateTaskAsync: request_ids no active task has are read from
    // the store without the lock, and read again if a task of theirs ended
    // meanwhile.
    std::vector<bool> active(to_read.size());
    {
      absl::MutexLock lock(&mu_);
      for (size_t j = 0; j < to_read.size(); ++j) {
        active[j] = requests_.contains(keys[to_read[j]]);
        ends[to_read[j]] = RequestEndsLocked(keys[to_read[j]]);
      }
    }
    for (size_t j = 0; j < to_read.size(); ++j) {
      const size_t i = to_read[j];
      stored[i].reset();
      if (!active[j]) {
        stored[i] = store_.FindByRequestId(tenant, requests[i].request_id);
      }
    }
    Op op(this);
    to_read.clear();
    for (size_t i : with_key) {
      if (!requests_.contains(keys[i]) && RequestEndsLocked(keys[i]) != ends[i])
        to_read.push_back(i);
    }
    if (!to_read.empty()) continue;
    // In order, under one lock: a request_id repeated in the batch finds
    // the task of its first use active (a retry's answer), and each task
    // meets its tenant's quotas as they stand after the ones before it.
    std::vector<absl::StatusOr<Task>> results;
    results.reserve(n);
    bool created = false;
    for (size_t i = 0; i < n; ++i) {
      if (!valid[i].ok()) {
        results.push_back(std::move(valid[i]));
        continue;
      }
      results.push_back(CreateLocked(tenant, std::move(requests[i].spec),
                                     std::move(requests[i].request_id),
                                     trace_id, std::move(stored[i]), op.out));
      created = created || results.back().ok();
    }
    // Once for the batch: the workers' credits are spread over all of it.
    if (created) DispatchLocked(op.out);
    // Every insert went to the outbox in this op: one commit (or a few,
    // if the writer is busy) makes them all durable, then one answer.
    op.then = [done = std::move(done),
               results = std::move(results)](absl::Status s) mutable {
      if (!s.ok()) {
        for (absl::StatusOr<Task>& r : results) {
          if (r.ok()) r = s;
        }
      }
      done(std::move(results));
    };
    return absl::OkStatus();
  }
}

absl::StatusOr<std::vector<absl::StatusOr<Task>>> Scheduler::CreateTasks(
    const TenantScope& scope, std::vector<CreateRequest> requests,
    std::string trace_id) {
  absl::Notification done;
  std::vector<absl::StatusOr<Task>> results;
  RETURN_IF_ERROR(CreateTasksAsync(
      scope, std::move(requests),
      [&](std::vector<absl::StatusOr<Task>> r) {
        results = std::move(r);
        done.Notify();
      },
      std::move(trace_id)));
  done.WaitForNotification();
  return results;
}

}  // namespace server
