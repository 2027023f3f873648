#ifndef CRUCIBLE_SERVER_SCHEDULER_SCHEDULER_H_
#define CRUCIBLE_SERVER_SCHEDULER_SCHEDULER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/sha256.h"
#include "crucible/v1/queue_service.pb.h"
#include "crucible/v1/task.pb.h"
#include "server/delivery/delivery.h"
#include "server/outbox/durable_outbox.h"
#include "server/queue/ready_queue.h"
#include "server/scheduler/fleet_admission.h"
#include "server/scheduler/scheduler_metrics.h"
#include "server/scheduler/spec_validation.h"
#include "server/store/task_store.h"
#include "server/tenancy/quota_book.h"
#include "server/tenancy/tenants_config.h"

namespace server {

// Whose tasks a client call may touch: its caller's tenant's, or, for an
// admin, every tenant's. Another tenant's task answers NOT_FOUND, as an
// unknown id does.
struct TenantScope {
  // The caller's tenant: new tasks are created in it, request_ids are
  // unique within it.
  std::string tenant;
  // An admin's: every tenant's tasks are visible.
  bool all_tenants = false;

  bool Sees(const std::string& task_tenant) const {
    return all_tenants || task_tenant == tenant;
  }
};

struct SchedulerOptions {
  // A lease lapses this long after it was granted or last extended.
  absl::Duration lease_ttl = absl::Seconds(30);
  // At start, leases the store shows live are kept this long for their
  // workers to reconnect and name them (Heartbeat's `held`); those not named
  // by then lapse. 0: they lapse at once.
  absl::Duration restart_grace = absl::Seconds(20);
  // The leases of a worker whose stream ended without a goodbye lapse this
  // long after (if sooner than their deadline) unless it reconnects and
  // names them.
  absl::Duration lost_worker_grace = absl::Seconds(5);
  // Attempts of a task whose retry_policy.max_attempts is 0.
  int default_max_attempts = 3;
  // An attempt that ends for the system's own faults (engine or executor
  // unreachable, executor full, worker lost, lease lapsed) does not count
  // against max_attempts: the task is requeued after this backoff, doubled
  // with each such failure up to infra_max_backoff (with backoff_jitter)...
  absl::Duration infra_initial_backoff = absl::Seconds(1);
  absl::Duration infra_max_backoff = absl::Seconds(30);
  // ...until its attempts have kept failing that way for this long; then it
  // ends FAILED (INFRASTRUCTURE).
  absl::Duration infra_horizon = absl::Hours(1);
  // Delay before the second attempt when the spec sets none; doubles after.
  absl::Duration initial_backoff = absl::Seconds(1);
  // Cap of the delay between attempts when the spec sets none.
  absl::Duration max_backoff = absl::Minutes(1);
  // Relative jitter applied to every backoff (0.2 = +-20%).
  double backoff_jitter = 0.2;
  // Output kept per attempt when the spec sets no max_output_bytes, and the
  // most the server keeps whatever the spec says.
  int64_t max_output_bytes = int64_t{16} << 20;
  // Artifact bytes kept per attempt, whatever the spec says: the largest
  // max_artifact_bytes an executor policy may set. A worker relaying more
  // has its artifacts reported INCOMPLETE.
  int64_t max_artifact_bytes = int64_t{256} << 20;
  // Bounded starvation within a tenant: every n-th dispatch of a tenant
  // goes to its oldest ready task whatever its priority, so a ready task
  // waits at most about n times the number of its tenant's older ready
  // tasks (in that tenant's turns). 0 means strict priority order.
  int fairness_interval = 10;
  // Each tenant's quotas and share of dispatch (the tenants file); nullptr:
  // no quotas, every tenant weight 1. SetTenants replaces it.
  std::shared_ptr<const TenantsConfig> tenants;
  // If an attempt brings no result this long after its timeout (counted
  // from its start), the server ends it TIMED_OUT itself. The timeout is
  // the one the executor reported at the start (the spec's, or the
  // executor's default when the spec sets none); from older workers, the
  // spec's, and none when the spec sets none.
  absl::Duration timeout_grace = absl::Seconds(30);
  // Terminal tasks and their output are purged this long after they ended.
  absl::Duration retention = absl::Hours(24 * 7);
  // Maxima every spec must respect.
  ValidationLimits limits;
  // If set, a spec must also be accepted by the fleet (see FleetAdmission);
  // it must outlive the scheduler.
  const FleetAdmission* admission = nullptr;
  // Where the scheduler's metrics go (SchedulerMetrics); null: the
  // process's common::DefaultMetricsRegistry(). Must outlive the scheduler.
  common::MetricsRegistry* metrics = nullptr;
};

// Whose fault an attempt's failure is: the task's (it counts against
// max_attempts) or the system's (it does not; see SchedulerOptions::
// infra_horizon).
enum class Blame { kTask, kSystem };

// What Subscribe returns: the task as of the subscription, consistent with
// the events that follow. `id` is 0 (nothing registered) if the task is
// already terminal.
struct TaskSubscription {
  int64_t id = 0;
  crucible::v1::Task task;
};

// The task state machine: admission, worker sessions with credits, leases,
// retries with backoff, cancels and events, over a ReadyQueue. Every state
// change is checked against the transition table, submitted to the
// DurableOutbox, then announced (Delivery: listeners, worker sinks).
// Thread-safe. No gRPC.
//
// State changes are decided in memory under the scheduler's lock and
// submitted to the outbox in that order; the lock is never held while the
// store commits or reads. What an operation announces (events, output,
// assignments, cancels, the answer to CreateTask) leaves only once its
// writes are durable, in operation order.
class Scheduler {
 public:
  // Rebuilds the queue from `store`. Tasks found LEASED or RUNNING keep
  // their attempt for `restart_grace`, for their worker to take the lease
  // back (Heartbeat's `held`); then they count as lapsed leases (requeued,
  // or FAILED when out of attempts). Reads go to `store`, writes through
  // `outbox` (committing to the same store). `store`, `outbox` and `clock`
  // must outlive the scheduler.
  static absl::StatusOr<std::unique_ptr<Scheduler>> Create(
      const SchedulerOptions& options, TaskStore& store, DurableOutbox& outbox,
      const common::Clock& clock);

  // --- Client API ---
  // Validates, stores and queues a task; `done` runs once the task is
  // durable (on the outbox's callback thread, or at once for an invalid
  // spec); it must not block. With a request_id already used by the tenant,
  // answers the task created then (with its trace id).
  using CreateDone = std::function<void(absl::StatusOr<crucible::v1::Task>)>;
  // The task is created in `scope.tenant`, with `trace_id` as its trace id
  // if that is one (common::IsTraceId), else with a new random one.
  void CreateTaskAsync(const TenantScope& scope, crucible::v1::TaskSpec spec,
                       std::string request_id, CreateDone done,
                       std::string trace_id = "");
  // CreateTaskAsync, waiting for the answer.
  absl::StatusOr<crucible::v1::Task> CreateTask(const TenantScope& scope,
                                                crucible::v1::TaskSpec spec,
                                                std::string request_id,
                                                std::string trace_id = "");
  // One create of a batch.
  struct CreateRequest {
    crucible::v1::TaskSpec spec;
    std::string request_id;  // empty: none
  };
  using BatchCreateDone =
      std::function<void(std::vector<absl::StatusOr<crucible::v1::Task>>)>;
  // Creates each of `requests` exactly as CreateTaskAsync would (its own
  // validation, request_id and quota admission), in order, under one lock
  // and one group commit. Not atomic: `done` gets one answer per request,
  // in order, once the created tasks are durable. A request_id repeated in
  // the batch answers as a retry does. Every task gets `trace_id` if that
  // is one, else a new one of its own. Returns without calling `done`:
  // INVALID_ARGUMENT for more than kMaxBatchCreateRequests requests,
  // RESOURCE_EXHAUSTED while the disk is full.
  absl::Status CreateTasksAsync(const TenantScope& scope,
                                std::vector<CreateRequest> requests,
                                BatchCreateDone done,
                                std::string trace_id = "");
  // CreateTasksAsync, waiting for the answers.
  absl::StatusOr<std::vector<absl::StatusOr<crucible::v1::Task>>> CreateTasks(
      const TenantScope& scope, std::vector<CreateRequest> requests,
      std::string trace_id = "");
  // The task as last durably recorded. Every call below answers NOT_FOUND
  // for a task `scope` does not see.
  absl::StatusOr<crucible::v1::Task> GetTask(const TenantScope& scope,
                                             const std::string& task_id);
  // page_size 0 means 50; above 1000 means 1000. Lists the tasks of
  // scope.tenant, or of every tenant if scope.all_tenants (query.tenant is
  // ignored).
  absl::StatusOr<ListTasksPage> ListTasks(const TenantScope& scope,
                                          ListTasksQuery query);
  // QUEUED -> CANCELLED at once; LEASED/RUNNING: the holding worker is told
  // to cancel and the task ends when it reports (or its lease lapses).
  // FAILED_PRECONDITION for a terminal task. Returns once durable.
  absl::StatusOr<crucible::v1::Task> CancelTask(const TenantScope& scope,
                                                const std::string& task_id,
                                                const std::string& reason);
  // Registers `listener` for the task's events and output.
  absl::StatusOr<TaskSubscription> Subscribe(const TenantScope& scope,
                                             const std::string& task_id,
                                             TaskListener* listener);
  // After this returns, the listener is never called again.
  void Unsubscribe(int64_t subscription_id);
  // Stored output of one attempt (see TaskStore::ReadOutput).
  absl::StatusOr<std::vector<crucible::v1::OutputChunk>> ReadOutput(
      const TenantScope& scope, const std::string& task_id, int32_t attempt,
      int64_t offset, crucible::v1::OutputStream stream, int64_t max_bytes);

  // The collected artifact `path` of a task the scope sees (attempt 0: the
  // latest attempt that has one): NOT_FOUND if there is none, or the task is
  // not visible; INVALID_ARGUMENT for an empty path or a bad task id.
  absl::StatusOr<StoredArtifact> FindArtifact(const TenantScope& scope,
                                              const std::string& task_id,
                                              const std::string& path,
                                              int32_t attempt);
  // Stored bytes of an artifact FindArtifact found (TaskStore::ReadArtifact).
  absl::StatusOr<std::vector<crucible::v1::ArtifactChunk>> ReadArtifact(
      const std::string& task_id, int32_t attempt, const std::string& path,
      int64_t offset, int64_t max_bytes);

  // --- Worker API (QueueService) ---
  // Opens a session for a worker with `credits` free slots; assignments go
  // to `sink` (not owned; must stay valid until DisconnectWorker returns).
  // A new session of the same worker_id replaces the old one.
  absl::StatusOr<int64_t> ConnectWorker(const std::string& worker_id,
                                        int credits, WorkerSink* sink);
  // Ends the session; its leases stay until their deadlines. After this
  // returns the sink is never called again.
  void DisconnectWorker(int64_t session_id);
  // The stream of `worker_id` ended without a goodbye: unless the worker
  // has connected again meanwhile, its leases lapse `lost_worker_grace`
  // from now (or at their deadline, if sooner) unless it names them again.
  void WorkerLost(const std::string& worker_id);
  absl::Status AddCredits(int64_t session_id, int credits);
  // Extends the named live leases, and takes back for the session's worker
  // the `held` leases of tasks kept since the restart (same task and
  // attempt, within restart_grace); returns the ones that are not live.
  std::vector<std::string> Heartbeat(
      int64_t session_id, const std::vector<std::string>& lease_ids,
      const std::vector<crucible::v1::HeldLease>& held = {});
  // A clean shutdown: tells every connected worker (and any that connects
  // later) that the server is going away, so it reconnects at once, and
  // hands out nothing more. Leases stay as they are.
  void GoAway(const std::string& reason);
  // Every report: FAILED_PRECONDITION if the lease is not the task's live
  // lease (the report is ignored). start_time InfinitePast means "now".
  // `timeout` is the run's timeout as its executor reported it (nullopt
  // from older workers and executors).
  absl::Status ReportStarted(
      const std::string& lease_id, absl::Time start_time,
      std::optional<absl::Duration> timeout = std::nullopt);
  absl::Status ReportOutput(const std::string& lease_id,
                            crucible::v1::OutputChunk chunk);
  // A piece of an artifact of the attempt, after its process exited. Only
  // paths the spec's artifacts match (else INVALID_ARGUMENT); kept once the
  // completion lists the artifact COLLECTED with the same size and
  // SHA-256 as the bytes received (else it is reported INCOMPLETE).
  absl::Status ReportArtifact(const std::string& lease_id,
                              crucible::v1::ArtifactChunk chunk);
  absl::Status ReportCompletion(
      const crucible::v1::AttemptCompletion& completion);

  // --- Timer ---
  // Abandons attempts whose lease deadline passed (retry or fail), then hands
  // out tasks that became due (not_before, backoff). Also ends attempts that
  // outlived timeout + grace (TIMED_OUT). Returns the number of attempts
  // ended. Called periodically by the service.
  int ExpireLeases();
  // Deletes terminal tasks that ended more than `retention` ago (at most
  // `limit` per call). Returns how many were deleted. RESOURCE_EXHAUSTED at
  // once while the disk is full.
  absl::StatusOr<int> PurgeExpired(int limit = 1000);

  // --- Tenants ---
  // Replaces every tenant's quotas and weight (a reloaded tenants file),
  // from the next decision on. Counts stay: a raised running cap hands out
  // work at once, a lowered one stops nothing that runs.
  void SetTenants(std::shared_ptr<const TenantsConfig> tenants);

  // The outbox's health: OK, RESOURCE_EXHAUSTED while the disk is full (no
  // new work is taken on), or the error that broke it.
  absl::Status store_health() { return outbox_.health(); }
  // Waits until everything decided so far is announced (for tests).
  void SettleForTest() { outbox_.DrainCallbacks(); }

  // Waits for every announcement decided so far to be delivered.
  ~Scheduler();

 private:
  // An active task. While it waits QUEUED it is kept serialized, as
  // stored: a parsed Task costs about five times its bytes, and a deep
  // queue is mostly waiting tasks (a million must fit in a GiB). task()
  // parses it back on first use; EnqueueLocked packs it again.
  struct Entry {
    // The task, parsed (once) if it was packed.
    crucible::v1::Task& task();
    const crucible::v1::Task& task() const;
    // A copy of the task that leaves a packed one packed.
    crucible::v1::Task Copy() const;
    // Keeps the task serialized only, and drops its Lease; it must be
    // QUEUED.
    void Pack();

    // The id (the key in active_, which keeps it in place).
    const std::string* id = nullptr;
    // Unpacked copies of what the queue, the counts and the scope checks
    // ask of a waiting task.
    std::string tenant;
    int priority = 0;
    uint64_t order = 0;   // FIFO position among equal priorities
    absl::Time ready_at;  // not handed out before (not_before, backoff)
    int max_attempts = 0;
    // The state of the current attempt (lease, run, output, cancel);
    // made on first use, dropped when the task is queued again (a
    // waiting task has none).
    struct Lease {
      std::string lease_id;  // live lease; empty if none
      absl::Time lease_deadline;
      // Server-side end of the running attempt: start + timeout + grace.
      absl::Time run_deadline = absl::InfiniteFuture();
      std::string worker_id;  // holder of the live lease
      // Why the lease lapses at lease_deadline, if not for want of heartbeats.
      std::string lapse_why;
      // When the current attempt's container started; InfinitePast if not yet.
      // Kept here, not in task.result, which holds the last *ended* attempt.
      absl::Time start_time = absl::InfinitePast();
      // When the live lease was granted (this server's clock); InfinitePast
      // for a lease kept since a restart.
      absl::Time leased_at = absl::InfinitePast();
      bool output_truncated = false;
      int64_t output_bytes = 0;  // kept of the current attempt
      int64_t output_end = 0;    // end offset of the last chunk taken
      bool cancel_requested = false;
      std::string cancel_reason;
      // Artifact bytes received of the attempt, per path, in order.
      struct ArtifactReceipt {
        int64_t bytes = 0;
        common::Sha256 sha256;
        bool broken = false;  // a gap, or past the limit: not kept
      };
      std::map<std::string, ArtifactReceipt> artifacts;
      int64_t artifact_bytes = 0;  // received of all paths
    };
    Lease& lease();
    // A default Lease if there is none.
    const Lease& lease() const;

   private:
    // Exactly one is set: the parsed task, or its serialized bytes.
    mutable std::unique_ptr<crucible::v1::Task> parsed_;
    mutable std::string packed_;
    std::unique_ptr<Lease> lease_;
    friend class Scheduler;
  };
  struct Session {
    std::string worker_id;
    int64_t credits = 0;
  };
  using Outbox = Announcement;
  class Op;

  Scheduler(const SchedulerOptions& options, TaskStore& store,
            DurableOutbox& outbox, const common::Clock& clock);
  absl::Status Rebuild();
  // 128 random bits, in hex: lease ids (fencing tokens).
  std::string NewIdLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Task ids: 48 bits of milliseconds since the epoch, then 80 random bits,
  // in hex (as UUIDv7 does), so new ids sort last and each commit's inserts
  // touch the right edge of the store's id indexes instead of a random page
  // per task.
  std::string NewTaskIdLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static QueuePosition PositionOf(const Entry& e);
  // Adds an active task; `bytes` is `task` serialized (kept instead of it
  // while it is QUEUED).
  void AddEntryLocked(const crucible::v1::Task& task, std::string bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `e`'s task went from `from` to `to` (UNSPECIFIED: it appeared): its
  // tenant's counts and the metrics follow, and its tenant's dispatch is
  // held at its running cap.
  void CountLocked(const Entry& e, crucible::v1::TaskState from,
                   crucible::v1::TaskState to)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies a tenants config to the quota book and the queue's weights.
  void ApplyTenantsLocked(std::shared_ptr<const TenantsConfig> tenants)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EnqueueLocked(Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DequeueLocked(Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // What refuses a create before any lock: the spec, the request_id and
  // not_before.
  absl::Status CheckCreate(const crucible::v1::TaskSpec& spec,
                           const std::string& request_id) const;
  // Decides one create: returns what to answer once the op's writes are
  // durable (the new task, the task of a repeated request_id, or why not).
  // Hands nothing out: the caller dispatches. `stored`: the store's task of
  // `request_id` (or NOT_FOUND), read without the lock; nullopt if it was
  // not read (an active task has it).
  absl::StatusOr<crucible::v1::Task> CreateLocked(
      const std::string& tenant, crucible::v1::TaskSpec spec,
      std::string request_id, std::string trace_id,
      std::optional<absl::StatusOr<crucible::v1::Task>> stored, Outbox& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // NOT_FOUND if `task_id` is not active (ended, or unknown).
  absl::StatusOr<crucible::v1::Task> CancelLocked(const TenantScope& scope,
                                                  const std::string& task_id,
                                                  const std::string& reason,
                                                  Outbox& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends an attempt that outlived timeout + grace.
  absl::Status TimeOutLocked(Entry& e, Outbox& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Check the table (`e` unchanged on error), apply `change` and the new
  // state to e.task, queue the store write, add the event to `out`.
  absl::Status CommitLocked(Entry& e, crucible::v1::TaskState to,
                            absl::FunctionRef<void(crucible::v1::Task&)> change,
                            const std::string& message, bool ends_attempt,
                            Outbox& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DispatchLocked(Outbox& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status LeaseLocked(Entry& e, int64_t session_id, Outbox& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the task in a terminal state; erases `e`.
  absl::Status FinishLocked(Entry& e, crucible::v1::TaskState state,
                            crucible::v1::TaskResult result,
                            const std::string& message, Outbox& out,
                            crucible::v1::Task* ended = nullptr,
                            const std::string& last_error = "")
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the attempt with `result`; requeues with backoff while the budget
  // of `blame` allows, else FAILED. `infra_error` non-empty marks a failure
  // without a result (kept as last_error), the system's unless `blame`
  // says otherwise; an empty one is the task's (a non-zero exit retried).
  absl::Status RetryOrFailLocked(Entry& e, crucible::v1::TaskResult result,
                                 const std::string& infra_error, Outbox& out,
                                 Blame blame = Blame::kSystem)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration BackoffLocked(const Entry& e)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration InfraBackoffLocked(int failures)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseLeaseLocked(Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sets e.run_deadline to `from` + the run's timeout + timeout_grace: the
  // timeout its executor reported, else the spec's; none if neither.
  void SetRunDeadlineLocked(Entry& e, absl::Time from,
                            std::optional<absl::Duration> reported)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Gives the lease of a task kept since the restart to `worker_id`, if
  // `held` names its task and attempt in time. False if it does not.
  bool ClaimLocked(const crucible::v1::HeldLease& held,
                   const std::string& worker_id, Outbox& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Lapses the kept leases nobody claimed within restart_grace.
  int LapseUnclaimedLocked(absl::Time now, Outbox& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The entry whose live lease is `lease_id`, or FAILED_PRECONDITION. A
  // lease past its deadline is expired on the spot.
  absl::StatusOr<Entry*> LiveLeaseLocked(const std::string& lease_id,
                                         Outbox& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // LiveLeaseLocked for a worker's report: a refusal is counted.
  absl::StatusOr<Entry*> ReportedLeaseLocked(const std::string& lease_id,
                                             Outbox& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Checks each artifact `result` lists COLLECTED against the bytes the
  // attempt received: the same size and SHA-256 records it as kept (its
  // bytes become readable), anything else makes it INCOMPLETE.
  void KeepArtifactsLocked(Entry& e, crucible::v1::TaskResult& result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // NOT_FOUND ("task ... not found") unless the scope sees the task.
  absl::Status CheckVisible(const TenantScope& scope,
                            const std::string& task_id)
      ABSL_LOCKS_EXCLUDED(mu_);
  // A result for an attempt abandoned now (lease lapsed): INFRASTRUCTURE.
  crucible::v1::TaskResult AbandonedResult(const Entry& e,
                                           const std::string& why) const;
  void SendCancelLocked(const Entry& e, const std::string& reason, Outbox& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static std::string RequestKey(const std::string& tenant,
                                const std::string& request_id);
  // Counts ends of tasks with a request_id, by a hash of the key: a create
  // that read the store without the lock reads again if one of its bucket
  // ended meanwhile (it may have been created and ended in between).
  uint64_t& RequestEndsLocked(const std::string& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const SchedulerOptions options_;
  TaskStore& store_;
  DurableOutbox& outbox_;
  const common::Clock& clock_;
  SchedulerMetrics metrics_;
  Delivery delivery_;

  absl::Mutex mu_;
  absl::BitGen rng_ ABSL_GUARDED_BY(mu_);
  uint64_t next_order_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_session_ ABSL_GUARDED_BY(mu_) = 0;
  // Non-terminal tasks only; terminal ones live in the store alone.
  // Node-based: an Entry and its key stay in place (Entry::id).
  absl::node_hash_map<std::string, Entry> active_ ABSL_GUARDED_BY(mu_);
  ReadyQueue queue_ ABSL_GUARDED_BY(mu_);
  // Per-tenant quotas against per-tenant counts of the tasks in active_.
  QuotaBook quotas_ ABSL_GUARDED_BY(mu_);
  // Operations that announce something, numbered in lock order.
  uint64_t last_op_ ABSL_GUARDED_BY(mu_) = 0;
  // (tenant, request_id) -> id of active tasks (their key in active_).
  absl::flat_hash_map<std::string, const std::string*> requests_
      ABSL_GUARDED_BY(mu_);
  uint64_t request_ends_[64] ABSL_GUARDED_BY(mu_) = {};
  absl::flat_hash_map<std::string, std::string> leases_ ABSL_GUARDED_BY(mu_);
  // Ids of tasks found LEASED or RUNNING at start whose lease no worker has
  // claimed yet (their lease id is unknown: the store keeps none); each
  // lapses at its entry's lease_deadline.
  std::set<std::string> unclaimed_ ABSL_GUARDED_BY(mu_);
  bool going_away_ ABSL_GUARDED_BY(mu_) = false;
  std::string going_away_reason_ ABSL_GUARDED_BY(mu_);
  absl::btree_map<int64_t, Session> sessions_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int64_t> session_of_worker_
      ABSL_GUARDED_BY(mu_);
};

// One public operation: holds mu_ while the state changes. On destruction
// it numbers itself, asks the outbox to run the announcement of `out` and
// then `then` (with the outbox's status) once every write so far is
// durable, and releases mu_.
class ABSL_SCOPED_LOCKABLE Scheduler::Op {
 public:
  explicit Op(Scheduler* s) ABSL_EXCLUSIVE_LOCK_FUNCTION(s->mu_) : s_(s) {
    s_->mu_.Lock();
  }
  ~Op() ABSL_UNLOCK_FUNCTION();
  Op(const Op&) = delete;
  Op& operator=(const Op&) = delete;
  Outbox out;
  std::function<void(absl::Status)> then;

 private:
  Scheduler* const s_;
};

}  // namespace server

#endif  // CRUCIBLE_SERVER_SCHEDULER_SCHEDULER_H_
