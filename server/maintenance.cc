#include "server/maintenance.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace server {

Maintenance::Maintenance(Scheduler& scheduler, common::GrpcServer* health,
                         const MaintenanceOptions& options,
                         std::function<void()> stop)
    : scheduler_(scheduler),
      health_(health),
      options_(options),
      stop_(std::move(stop)),
      timer_(options.interval, [this] { RunOnce(); }) {}

void Maintenance::RunOnce() {
  const absl::Status store = scheduler_.store_health();
  const bool full = absl::IsResourceExhausted(store);
  if (full != store_full_ && health_ != nullptr) {
    health_->SetServiceServing(
        options_.store_health_service, !full,
        absl::StrCat("the store's disk is full, new tasks are refused until "
                     "its writes succeed again: ",
                     store.ToString()));
  }
  store_full_ = full;
  if (!store.ok() && !full) {
    if (!store_failed_.exchange(true)) {
      LOG(ERROR) << "store failed, stopping: " << store;
      stop_();
    }
    return;
  }
  scheduler_.ExpireLeases();
  if (full) return;  // a purge needs room in the store too
  absl::StatusOr<int> purged = scheduler_.PurgeExpired(options_.purge_limit);
  if (!purged.ok()) {
    LOG(WARNING) << "retention purge: " << purged.status();
  } else if (*purged > 0) {
    LOG(INFO) << "retention: purged " << *purged << " ended tasks";
  }
}

}  // namespace server
