#include "server/maintenance.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "gtest/gtest.h"
#include "server/outbox/durable_outbox.h"
#include "server/store/sqlite_task_store.h"
#include "tests/server/test_util.h"

namespace server {
namespace {

// The tenant of the tests' calls.
inline const TenantScope kTenant{.tenant = "default"};

// A real SQLite store whose commits fail with `fail` once it is set.
class FailingStore : public TaskStore {
 public:
  explicit FailingStore(std::unique_ptr<SqliteTaskStore> store)
      : store_(std::move(store)) {}
  void FailWith(absl::Status s) {
    absl::MutexLock lock(&mu_);
    fail_ = std::move(s);
  }

  absl::Status Commit(absl::Span<const TaskWrite> writes) override {
    {
      absl::MutexLock lock(&mu_);
      if (!fail_.ok()) return fail_;
    }
    return store_->Commit(writes);
  }
  absl::StatusOr<crucible::v1::Task> GetTask(const std::string& id) override {
    return store_->GetTask(id);
  }
  absl::StatusOr<crucible::v1::Task> FindByRequestId(
      const std::string& tenant, const std::string& request_id) override {
    return store_->FindByRequestId(tenant, request_id);
  }
  absl::StatusOr<ListTasksPage> ListTasks(const ListTasksQuery& q) override {
    return store_->ListTasks(q);
  }
  absl::StatusOr<std::vector<std::string>> LoadActiveTaskBytes() override {
    return store_->LoadActiveTaskBytes();
  }
  absl::StatusOr<std::vector<crucible::v1::OutputChunk>> ReadOutput(
      const std::string& id, int32_t attempt, int64_t offset,
      crucible::v1::OutputStream stream, int64_t max_bytes) override {
    return store_->ReadOutput(id, attempt, offset, stream, max_bytes);
  }
  absl::StatusOr<StoredArtifact> FindArtifact(const std::string& id,
                                              const std::string& path,
                                              int32_t attempt) override {
    return store_->FindArtifact(id, path, attempt);
  }
  absl::StatusOr<std::vector<crucible::v1::ArtifactChunk>> ReadArtifact(
      const std::string& id, int32_t attempt, const std::string& path,
      int64_t offset, int64_t max_bytes) override {
    return store_->ReadArtifact(id, attempt, path, offset, max_bytes);
  }
  absl::StatusOr<int> PurgeEndedBefore(absl::Time cutoff, int limit) override {
    return store_->PurgeEndedBefore(cutoff, limit);
  }

 private:
  std::unique_ptr<SqliteTaskStore> store_;
  absl::Mutex mu_;
  absl::Status fail_ ABSL_GUARDED_BY(mu_);
};

class MaintenanceTest : public testing::Test {
 protected:
  void SetUp() override {
    auto sqlite =
        SqliteTaskStore::Open({.path = testing_util::FreshDir() + "/tasks.db"});
    ASSERT_TRUE(sqlite.ok()) << sqlite.status();
    store_ = std::make_unique<FailingStore>(*std::move(sqlite));
    outbox_ = std::make_unique<DurableOutbox>(
        *store_,
        DurableOutboxOptions{.full_retry_interval = absl::Milliseconds(10)});
    auto scheduler = Scheduler::Create({}, *store_, *outbox_, clock_);
    ASSERT_TRUE(scheduler.ok()) << scheduler.status();
    scheduler_ = *std::move(scheduler);
    maintenance_ = std::make_unique<Maintenance>(
        *scheduler_, nullptr,
        MaintenanceOptions{.interval = absl::Milliseconds(10)}, [this] {
          ++stops_;
          stopped_.Notify();
        });
  }
  void TearDown() override {
    maintenance_.reset();
    store_->FailWith(absl::OkStatus());  // the last announcements can be stored
    scheduler_.reset();
    outbox_.reset();
  }
  // A create whose commit is the one that fails.
  void CreateOne() {
    crucible::v1::TaskSpec spec;
    spec.set_image("localhost/crucible/busybox:latest");
    spec.add_command("true");
    scheduler_->CreateTaskAsync(kTenant, spec, "",
                                [](absl::StatusOr<crucible::v1::Task>) {});
  }

  common::FakeClock clock_;
  std::unique_ptr<FailingStore> store_;
  std::unique_ptr<DurableOutbox> outbox_;
  std::unique_ptr<Scheduler> scheduler_;
  std::atomic<int> stops_{0};
  absl::Notification stopped_;
  std::unique_ptr<Maintenance> maintenance_;
};

TEST_F(MaintenanceTest, ABrokenStoreStopsTheProcessOnce) {
  store_->FailWith(absl::InternalError("disk I/O error"));
  CreateOne();
  ASSERT_TRUE(stopped_.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_TRUE(maintenance_->store_failed());
  // Five more timer runs find the store broken: still one stop.
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(stops_.load(), 1);
}

TEST_F(MaintenanceTest, AFullDiskDoesNotStopIt) {
  store_->FailWith(
      absl::ResourceExhaustedError("the task store is full: test"));
  CreateOne();
  // Returns once the outbox finds the disk full.
  ASSERT_TRUE(
      absl::IsResourceExhausted(outbox_->AwaitDurable(outbox_->LastTicket())));
  // Twenty timer runs see the disk full; none stops the process.
  EXPECT_FALSE(
      stopped_.WaitForNotificationWithTimeout(absl::Milliseconds(200)));
  EXPECT_FALSE(maintenance_->store_failed());
}

}  // namespace
}  // namespace server
