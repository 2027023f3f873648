#include "server/store/pg_leader.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "glog/logging.h"

namespace server {
namespace {

using Steady = std::chrono::steady_clock;

Steady::duration ToSteady(absl::Duration d) {
  return std::chrono::duration_cast<Steady::duration>(
      absl::ToChronoNanoseconds(d));
}

// The election's statements never wait long: a lock held by a commit, or a
// slow database, makes them fail and be tried again at the next interval.
std::string Settings(absl::Duration interval) {
  const int64_t ms =
      std::max<int64_t>(100, absl::ToInt64Milliseconds(interval));
  return absl::StrCat("-c lock_timeout=", ms, " -c statement_timeout=", ms,
                      " -c idle_in_transaction_session_timeout=", ms * 5);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PgLeaderLease>> PgLeaderLease::Connect(
    const PgLeaderOptions& options) {
  if (options.holder.empty()) {
    return absl::InvalidArgumentError("leader lease: the holder is empty");
  }
  if (options.lease < absl::Seconds(1)) {
    return absl::InvalidArgumentError(
        "leader lease: the lease must be at least 1s");
  }
  const std::string settings = Settings(options.lease / 5);
  ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> c,
                   PgConnection::Connect(options.uri, settings));
  ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> r,
                   PgConnection::Connect(options.uri, settings));
  return std::unique_ptr<PgLeaderLease>(
      new PgLeaderLease(options, std::move(c), std::move(r)));
}

PgLeaderLease::PgLeaderLease(PgLeaderOptions options,
                             std::unique_ptr<PgConnection> connection,
                             std::unique_ptr<PgConnection> renew_connection)
    : options_(std::move(options)),
      connection_(std::move(connection)),
      renew_connection_(std::move(renew_connection)) {}

PgLeaderLease::~PgLeaderLease() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (renewer_.joinable()) renewer_.join();
  if (watcher_.joinable()) watcher_.join();
}

absl::StatusOr<PgFence> PgLeaderLease::Acquire(
    absl::Notification& stop,
    const std::function<void(const std::string& leader)>& standby) {
  const int64_t lease_us = absl::ToInt64Microseconds(options_.lease);
  std::string last_leader = "\n";  // no report yet
  bool logged_error = false;
  while (!stop.HasBeenNotified()) {
    const Steady::time_point sent = Steady::now();
    absl::StatusOr<PgResult> took = connection_->Exec(
        "INSERT INTO crucible_leader AS l (id, holder, epoch, expires_at) "
        "VALUES (1, $1, 1, now() + $2::bigint * interval '1 microsecond') "
        "ON CONFLICT (id) DO UPDATE SET holder = EXCLUDED.holder, "
        "epoch = l.epoch + 1, expires_at = EXCLUDED.expires_at "
        "WHERE l.expires_at < now() RETURNING epoch",
        PgParams().Text(options_.holder).Int64(lease_us));
    if (took.ok() && took->rows() == 1) {
      fence_ = PgFence{.holder = options_.holder, .epoch = took->Int64(0, 0)};
      absl::MutexLock lock(&mu_);
      renewed_at_ = sent;
      return fence_;
    }
    if (!took.ok()) {
      // A commit of the old leader holds the row, or the database is away.
      if (!logged_error) {
        LOG(WARNING) << "leader lease: cannot take it now: " << took.status();
        logged_error = true;
      }
    } else {
      logged_error = false;
      absl::StatusOr<PgResult> who = connection_->Exec(
          "SELECT holder FROM crucible_leader WHERE id = 1 AND expires_at >= "
          "now()");
      std::string leader;
      if (who.ok() && who->rows() == 1) leader = who->Bytes(0, 0);
      if (who.ok() && leader != last_leader) {
        last_leader = leader;
        standby(leader);
      }
    }
    stop.WaitForNotificationWithTimeout(interval());
  }
  return absl::CancelledError("stopped before becoming the leader");
}

void PgLeaderLease::KeepRenewing(
    std::function<void(absl::string_view reason)> on_lost) {
  on_lost_ = std::move(on_lost);
  renewer_ = std::thread([this] { RenewLoop(); });
  watcher_ = std::thread([this] { WatchLoop(); });
}

void PgLeaderLease::RenewLoop() {
  const int64_t lease_us = absl::ToInt64Microseconds(options_.lease);
  absl::MutexLock lock(&mu_);
  while (!stopping_ && !lost_) {
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval());
    if (stopping_ || lost_) break;
    const Steady::time_point sent = Steady::now();
    mu_.Unlock();
    absl::StatusOr<PgResult> renewed = renew_connection_->Exec(
        "UPDATE crucible_leader SET expires_at = now() + $3::bigint * "
        "interval '1 microsecond' WHERE id = 1 AND holder = $1 AND epoch = $2",
        PgParams().Text(fence_.holder).Int64(fence_.epoch).Int64(lease_us));
    mu_.Lock();
    if (!renewed.ok()) {
      LOG(WARNING) << "leader lease: renewal failed (trying again): "
                   << renewed.status();
      continue;
    }
    if (renewed->affected() != 1) {
      mu_.Unlock();
      Lost(absl::StrCat("another server holds the lease (epoch ", fence_.epoch,
                        " is over)"));
      mu_.Lock();
      break;
    }
    renewed_at_ = sent;
  }
}

void PgLeaderLease::WatchLoop() {
  const Steady::duration lease = ToSteady(options_.lease);
  absl::MutexLock lock(&mu_);
  while (!stopping_ && !lost_) {
    const Steady::duration left = renewed_at_ + lease - Steady::now();
    // Stop one interval before the lease could expire in the database.
    if (left <= ToSteady(interval())) {
      mu_.Unlock();
      Lost(absl::StrCat("the lease was not renewed for ",
                        absl::FormatDuration(options_.lease - interval()),
                        " (the database is unreachable or too slow)"));
      mu_.Lock();
      break;
    }
    mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                         absl::FromChrono(left - ToSteady(interval())));
  }
}

void PgLeaderLease::Lost(absl::string_view reason) {
  {
    absl::MutexLock lock(&mu_);
    if (lost_ || stopping_) return;
    lost_ = true;
  }
  if (on_lost_) on_lost_(reason);
}

void PgLeaderLease::Release() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (renewer_.joinable()) renewer_.join();
  if (watcher_.joinable()) watcher_.join();
  if (fence_.epoch == 0) return;
  absl::StatusOr<PgResult> ended = connection_->Exec(
      "UPDATE crucible_leader SET expires_at = now() - interval '1 "
      "microsecond' WHERE id = 1 AND holder = $1 AND epoch = $2",
      PgParams().Text(fence_.holder).Int64(fence_.epoch));
  if (!ended.ok()) {
    LOG(WARNING) << "leader lease: could not end it (it expires by itself): "
                 << ended.status();
  } else if (ended->affected() == 1) {
    LOG(INFO) << "leader lease ended (epoch " << fence_.epoch << ")";
  }
}

}  // namespace server
