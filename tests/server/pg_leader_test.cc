// The leader lease of the PostgreSQL store (server/store/pg_leader.h), on a
// real PostgreSQL server: one holder at a time, takeover only after expiry
// or release with a higher epoch, and a leader that loses the lease, or
// cannot renew it in time, is told so before the lease could pass on.
#include "server/store/pg_leader.h"

#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/store/pg_task_store.h"
#include "tests/testing/postgres.h"

namespace server {
namespace {

class PgLeaderTest : public testing::Test {
 protected:
  void SetUp() override {
    CRUCIBLE_REQUIRE_POSTGRES(uri);
    uri_ = uri;
    ASSERT_TRUE(PgTaskStore::Open({.uri = uri_}).ok());  // the schema
  }
  std::unique_ptr<PgLeaderLease> Lease(const std::string& holder) {
    auto lease = PgLeaderLease::Connect(
        {.uri = uri_, .holder = holder, .lease = absl::Seconds(1)});
    EXPECT_TRUE(lease.ok()) << lease.status();
    return lease.ok() ? *std::move(lease) : nullptr;
  }
  std::string uri_;
};

TEST_F(PgLeaderTest, OneHolderAtATimeAndAReleaseHandsOverAtOnce) {
  auto a = Lease("a");
  auto b = Lease("b");
  ASSERT_TRUE(a && b);
  absl::Notification never;
  auto fa = a->Acquire(never, [](const std::string&) {});
  ASSERT_TRUE(fa.ok()) << fa.status();
  a->KeepRenewing([](absl::string_view) {});

  // b waits while a renews: it sees a as the leader, and gives up when told.
  absl::Notification stop_b;
  std::string seen;
  std::thread stopper([&] {
    absl::SleepFor(absl::Seconds(3));  // three lease lengths of a renewing
    stop_b.Notify();
  });
  auto fb = b->Acquire(stop_b, [&](const std::string& l) { seen = l; });
  stopper.join();
  EXPECT_EQ(fb.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(seen, "a");

  // a releases: b takes the lease within its polling interval, epoch + 1.
  a->Release();
  const absl::Time released = absl::Now();
  fb = b->Acquire(never, [](const std::string&) {});
  ASSERT_TRUE(fb.ok()) << fb.status();
  EXPECT_LT(absl::Now() - released, absl::Seconds(1));
  EXPECT_EQ(fb->holder, "b");
  EXPECT_EQ(fb->epoch, fa->epoch + 1);
}

TEST_F(PgLeaderTest, ALeaderWhoseLeaseWasTakenIsToldSo) {
  auto a = Lease("a");
  ASSERT_TRUE(a);
  absl::Notification never, lost;
  std::string reason;
  ASSERT_TRUE(a->Acquire(never, [](const std::string&) {}).ok());
  a->KeepRenewing([&](absl::string_view r) {
    reason = std::string(r);
    lost.Notify();
  });
  ASSERT_TRUE(
      ::testing_util::ExecPostgres(
          uri_, "UPDATE crucible_leader SET holder = 'b', epoch = epoch + 1")
          .ok());
  ASSERT_TRUE(lost.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_NE(reason.find("another server holds the lease"), std::string::npos)
      << reason;
}

// The row locked by another session (as a stuck commit would): renewals
// time out, and the leader is told before its lease could expire.
TEST_F(PgLeaderTest, ALeaderThatCannotRenewStopsBeforeItsLeaseLapses) {
  auto a = Lease("a");
  ASSERT_TRUE(a);
  absl::Notification never, lost;
  std::string reason;
  auto fa = a->Acquire(never, [](const std::string&) {});
  ASSERT_TRUE(fa.ok());
  a->KeepRenewing([&](absl::string_view r) {
    reason = std::string(r);
    lost.Notify();
  });
  auto blocker = PgConnection::Connect(uri_);
  ASSERT_TRUE(blocker.ok());
  ASSERT_TRUE(
      (*blocker)
          ->ExecScript("BEGIN; SELECT * FROM crucible_leader FOR UPDATE")
          .ok());
  const absl::Time blocked = absl::Now();
  ASSERT_TRUE(lost.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_NE(reason.find("not renewed"), std::string::npos) << reason;
  // Within one lease (1 s) of the block, whatever the last renewal was.
  EXPECT_LT(absl::Now() - blocked, absl::Seconds(2));
  ASSERT_TRUE((*blocker)->ExecScript("ROLLBACK").ok());
  // Nobody else holds it yet, and the database still says a until expiry.
  auto who = (*blocker)->Exec("SELECT holder, epoch FROM crucible_leader");
  ASSERT_TRUE(who.ok());
  EXPECT_EQ(who->Bytes(0, 0), "a");
  EXPECT_EQ(who->Int64(0, 1), fa->epoch);
}

}  // namespace
}  // namespace server
