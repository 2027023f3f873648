#ifndef CRUCIBLE_SERVER_STORE_PG_LEADER_H_
#define CRUCIBLE_SERVER_STORE_PG_LEADER_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/store/pg_task_store.h"
#include "server/store/pg_util.h"

namespace server {

struct PgLeaderOptions {
  std::string uri;
  // This server's name in the lease row.
  std::string holder;
  // How long a lease lasts unless renewed. The leader renews it every
  // lease / 5; a standby tries to take it as often.
  absl::Duration lease = absl::Seconds(5);
};

// Leader election through the database itself: one row (crucible_leader)
// names the holder, an epoch and when the lease expires, in the database's
// clock. A server takes the lease only once it has expired, and bumps the
// epoch; the epoch is the fencing token every commit of the leader checks
// (PgTaskStore::SetFence).
//
// The leader renews the lease in a thread of its own. It counts the lease
// from before it sent each renewal, on its own monotonic clock, so that its
// deadline comes before the database's expiry: if no renewal has succeeded
// by then (the database is unreachable, or slow), or a renewal finds the
// row taken, it calls on_lost, which must stop the server at once. A
// standby can take over only after the expiry, and a takeover waits for
// any commit of the old leader still running, so at no time do two servers
// both dispatch.
class PgLeaderLease {
 public:
  static absl::StatusOr<std::unique_ptr<PgLeaderLease>> Connect(
      const PgLeaderOptions& options);
  ~PgLeaderLease();

  // Blocks until this server holds the lease, trying every lease / 5, and
  // returns its fencing token; CANCELLED once `stop` is notified. While
  // waiting, `standby` is called with the current leader's name whenever
  // it changes ("" if none).
  absl::StatusOr<PgFence> Acquire(
      absl::Notification& stop,
      const std::function<void(const std::string& leader)>& standby);

  // After Acquire: renews the lease until Release or destruction; calls
  // `on_lost` once, from a thread of this object, with the reason, if the
  // lease is lost or was not renewed in time.
  void KeepRenewing(std::function<void(absl::string_view reason)> on_lost);

  // Stops renewing and ends the lease at once (a clean shutdown), so that a
  // standby takes over without waiting for it to expire.
  void Release();

 private:
  explicit PgLeaderLease(PgLeaderOptions options,
                         std::unique_ptr<PgConnection> connection,
                         std::unique_ptr<PgConnection> renew_connection);
  absl::Duration interval() const { return options_.lease / 5; }
  void RenewLoop();
  void WatchLoop();
  void Lost(absl::string_view reason);

  const PgLeaderOptions options_;
  std::unique_ptr<PgConnection> connection_;        // Acquire and Release
  std::unique_ptr<PgConnection> renew_connection_;  // the renewing thread's
  PgFence fence_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool lost_ ABSL_GUARDED_BY(mu_) = false;
  // When the last renewal that succeeded was sent (steady clock).
  std::chrono::steady_clock::time_point renewed_at_ ABSL_GUARDED_BY(mu_);
  std::function<void(absl::string_view)> on_lost_;
  std::thread renewer_;
  std::thread watcher_;
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_STORE_PG_LEADER_H_
