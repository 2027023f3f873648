#include "server/task_service.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "common/status_macros.h"
#include "common/stream_write_queue.h"
#include "common/task_state.h"
#include "common/trace.h"
#include "glog/logging.h"
#include "server/artifact_stream.h"
#include "server/auth/audit.h"
#include "server/call_auth.h"
#include "server/raw_messages.h"
#include "server/task_output_stream.h"

namespace server {
namespace {

using crucible::v1::TaskEvent;
using crucible::v1::WatchTaskResponse;

// The trace id of the call's W3C `traceparent`, or "" (the scheduler then
// makes a new one) if there is none, more than one, or a malformed one:
// W3C Trace Context says to ignore a bad header, not to refuse the call.
std::string TraceIdOf(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  auto [first, last] = metadata.equal_range(common::kTraceparentKey);
  if (first == last || std::next(first) != last) return "";
  return common::TraceIdFromTraceparent(
             absl::string_view(first->second.data(), first->second.size()))
      .value_or("");
}

// Parses the request, runs `fn(request, response)` (which returns the
// call's status) on the pool, then serializes the response and finishes.
// `caller` is the call's authentication; on error the call finishes with it.
template <typename Request, typename Response, typename Fn>
grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx,
                                BlockingPool& pool, const char* method,
                                const absl::StatusOr<auth::Identity>& caller,
                                const grpc::ByteBuffer* raw_request,
                                grpc::ByteBuffer* raw_response, Fn fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (!caller.ok()) {
    VLOG(1) << method << ": " << caller.status();
    reactor->Finish(common::ToGrpcStatus(caller.status()));
    return reactor;
  }
  // std::function needs a copyable capture.
  auto request = std::make_shared<Request>();
  if (absl::Status parsed = ParseRequest(*raw_request, *request);
      !parsed.ok()) {
    VLOG(1) << method << ": " << parsed;
    reactor->Finish(common::ToGrpcStatus(parsed));
    return reactor;
  }
  pool.Schedule([reactor, method, request, raw_response, fn = std::move(fn)]() {
    Response response;
    absl::Status status = fn(*request, response);
    if (status.ok()) {
      *raw_response = SerializeMessage(response);
    } else {
      VLOG(1) << method << ": " << status;
    }
    reactor->Finish(common::ToGrpcStatus(status));
  });
  return reactor;
}

// Streams a task's current state, then each change, and finishes after the
// terminal one. Owns itself (see ReactorJobs).
class Watcher final : public grpc::ServerWriteReactor<grpc::ByteBuffer>,
                      public TaskListener {
 public:
  Watcher(Scheduler& scheduler, BlockingPool& pool, TenantScope scope,
          std::string task_id, size_t max_backlog)
      : scheduler_(scheduler),
        scope_(std::move(scope)),
        task_id_(std::move(task_id)),
        max_backlog_(max_backlog),
        jobs_(pool, [this] {
          int64_t sub;
          {
            absl::MutexLock lock(&mu_);
            sub = subscription_;
          }
          if (sub != 0) scheduler_.Unsubscribe(sub);
          delete this;
        }) {
    jobs_.Run([this] { Start(); });
  }

  void OnEvent(const TaskEvent& event) override { OnEvents({event}); }
  void OnEvents(const std::vector<TaskEvent>& events) override {
    absl::MutexLock lock(&mu_);
    for (const TaskEvent& event : events) {
      // Events can arrive between Subscribe() and the current state being
      // queued; they come after it.
      if (!started_) {
        early_.push_back(event);
      } else {
        PushLocked(event);
      }
    }
  }
  void OnOutput(const crucible::v1::OutputChunk&) override {}
  void OnGoingAway(const std::string& reason) override {
    absl::MutexLock lock(&mu_);
    out_.Finish(GoingAwayStatus(reason));
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    out_.OnWriteDone(ok);
  }
  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    out_.Finish(grpc::Status::CANCELLED);
  }
  void OnDone() override { jobs_.Done(); }

 private:
  void Start() {
    absl::StatusOr<TaskSubscription> sub =
        scheduler_.Subscribe(scope_, task_id_, this);
    absl::MutexLock lock(&mu_);
    if (!sub.ok()) return out_.Finish(common::ToGrpcStatus(sub.status()));
    subscription_ = sub->id;
    TaskEvent current;
    current.set_task_id(sub->task.id());
    current.set_state(sub->task.state());
    current.set_attempt(sub->task.attempt());
    *current.mutable_event_time() = sub->task.update_time();
    current.set_message("current state");
    if (sub->task.has_result()) *current.mutable_result() = sub->task.result();
    started_ = true;
    PushLocked(std::move(current));
    for (TaskEvent& e : early_) PushLocked(std::move(e));
    early_.clear();
  }
  void PushLocked(TaskEvent event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (out_.finishing()) return;  // after the terminal event, or an error
    if (out_.backlog() >= max_backlog_) {
      // A slow reader must not hold events without bound (nor slow anyone
      // else): it gets an error and resumes with a new WatchTask, which
      // starts from the current state.
      return out_.Finish(grpc::Status(
          grpc::RESOURCE_EXHAUSTED,
          absl::StrCat("watcher fell more than ", max_backlog_,
                       " events behind; call WatchTask again to resume from "
                       "the current state")));
    }
    const bool terminal = common::IsTerminal(event.state());
    WatchTaskResponse response;
    *response.mutable_event() = std::move(event);
    out_.Push(SerializeMessage(response));
    if (terminal) {
      out_.FinishAfterQueued(grpc::Status::OK);
    } else {
      out_.Write();
    }
  }

  Scheduler& scheduler_;
  const TenantScope scope_;
  const std::string task_id_;
  const size_t max_backlog_;
  absl::Mutex mu_;
  int64_t subscription_ ABSL_GUARDED_BY(mu_) = 0;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<TaskEvent> early_ ABSL_GUARDED_BY(mu_);
  common::StreamWriteQueue<Watcher, grpc::ByteBuffer> out_ ABSL_GUARDED_BY(mu_){
      this};
  ReactorJobs jobs_;  // last: its cleanup reads the fields above
};

}  // namespace

grpc::ServerUnaryReactor* TaskService::CreateTask(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* raw_request,
    grpc::ByteBuffer* raw_response) {
  // Answered from the outbox's callback thread once the task is durable;
  // nothing waits for the commit. Without a request_id the scheduler only
  // decides in memory, so that runs right in the reaction; with one it may
  // read the store, so on the pool.
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto request = std::make_shared<crucible::v1::CreateTaskRequest>();
  if (absl::Status parsed = ParseRequest(*raw_request, *request);
      !parsed.ok()) {
    VLOG(1) << "CreateTask: " << parsed;
    reactor->Finish(common::ToGrpcStatus(parsed));
    return reactor;
  }
  absl::StatusOr<auth::Identity> caller =
      AuthenticateCall(authenticator_, ctx, auth::Right::kWrite);
  if (!caller.ok()) {
    auth::Audit({.method = "CreateTask", .outcome = caller.status()});
    reactor->Finish(common::ToGrpcStatus(caller.status()));
    return reactor;
  }
  if (absl::Status s = CheckCallbacks(*request, options_.callback_hosts);
      !s.ok()) {
    auth::Audit({.method = "CreateTask",
                 .subject = caller->subject,
                 .tenant = caller->tenant,
                 .outcome = s});
    reactor->Finish(common::ToGrpcStatus(s));
    return reactor;
  }
  // Just after start, before any worker has said what its executors
  // accept: wait for one on the pool rather than refuse (bounded by
  // admission_wait_until and the call's deadline).
  const bool await_fleet = options_.fleet != nullptr &&
                           !options_.fleet->Known() &&
                           absl::Now() < options_.admission_wait_until;
  const bool inline_create = request->request_id().empty() && !await_fleet;
  auto create = [this, ctx, caller = *std::move(caller), await_fleet, reactor,
                 request, raw_response,
                 trace_id = TraceIdOf(ctx->client_metadata())]() mutable {
    if (await_fleet) {
      const absl::Time until = std::min(options_.admission_wait_until,
                                        absl::FromChrono(ctx->deadline()));
      while (!options_.fleet->Known() && absl::Now() < until) {
        absl::SleepFor(absl::Milliseconds(50));
      }
    }
    scheduler_.CreateTaskAsync(
        ScopeOf(caller), std::move(*request->mutable_spec()),
        std::move(*request->mutable_request_id()),
        [reactor, raw_response,
         caller](absl::StatusOr<crucible::v1::Task> task) {
          auth::Audit({.method = "CreateTask",
                       .subject = caller.subject,
                       .tenant = caller.tenant,
                       .object = task.ok() ? task->id() : "",
                       .outcome = task.status()});
          if (task.ok()) {
            crucible::v1::CreateTaskResponse response;
            *response.mutable_task() = *std::move(task);
            *raw_response = SerializeMessage(response);
          } else {
            VLOG(1) << "CreateTask: " << task.status();
          }
          reactor->Finish(common::ToGrpcStatus(task.status()));
        },
        std::move(trace_id));
  };
  if (inline_create) {
    create();
  } else {
    pool_.Schedule(std::move(create));
  }
  return reactor;
}

grpc::ServerUnaryReactor* TaskService::BatchCreateTasks(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* raw_request,
    grpc::ByteBuffer* raw_response) {
  // As CreateTask, for many: one scheduler call decides every item under
  // one lock and answers once their writes are durable (one group commit),
  // on the outbox's callback thread. Always on the pool: items with a
  // request_id may read the store, and a thousand specs are worth a hop.
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto request = std::make_shared<crucible::v1::BatchCreateTasksRequest>();
  if (absl::Status parsed = ParseRequest(*raw_request, *request);
      !parsed.ok()) {
    VLOG(1) << "BatchCreateTasks: " << parsed;
    reactor->Finish(common::ToGrpcStatus(parsed));
    return reactor;
  }
  absl::StatusOr<auth::Identity> caller =
      AuthenticateCall(authenticator_, ctx, auth::Right::kWrite);
  if (!caller.ok()) {
    auth::Audit({.method = "BatchCreateTasks", .outcome = caller.status()});
    reactor->Finish(common::ToGrpcStatus(caller.status()));
    return reactor;
  }
  if (absl::Status s = CheckCallbacks(*request, options_.callback_hosts);
      !s.ok()) {
    auth::Audit({.method = "BatchCreateTasks",
                 .subject = caller->subject,
                 .tenant = caller->tenant,
                 .outcome = s});
    reactor->Finish(common::ToGrpcStatus(s));
    return reactor;
  }
  const bool await_fleet = options_.fleet != nullptr &&
                           !options_.fleet->Known() &&
                           absl::Now() < options_.admission_wait_until;
  pool_.Schedule([this, ctx, caller = *std::move(caller), await_fleet, reactor,
                  request, raw_response,
                  trace_id = TraceIdOf(ctx->client_metadata())]() mutable {
    if (await_fleet) {
      const absl::Time until = std::min(options_.admission_wait_until,
                                        absl::FromChrono(ctx->deadline()));
      while (!options_.fleet->Known() && absl::Now() < until) {
        absl::SleepFor(absl::Milliseconds(50));
      }
    }
    std::vector<Scheduler::CreateRequest> items;
    items.reserve(request->requests_size());
    for (crucible::v1::CreateTaskRequest& r : *request->mutable_requests()) {
      items.push_back({.spec = std::move(*r.mutable_spec()),
                       .request_id = std::move(*r.mutable_request_id())});
    }
    absl::Status accepted = scheduler_.CreateTasksAsync(
        ScopeOf(caller), std::move(items),
        [reactor, raw_response,
         caller](std::vector<absl::StatusOr<crucible::v1::Task>> tasks) {
          crucible::v1::BatchCreateTasksResponse response;
          int created = 0;
          std::string lowest, highest;  // of the ids answered
          for (absl::StatusOr<crucible::v1::Task>& task : tasks) {
            crucible::v1::BatchCreateTaskResult* result =
                response.add_results();
            if (task.ok()) {
              if (created++ == 0 || task->id() < lowest) lowest = task->id();
              highest = std::max(highest, task->id());
              *result->mutable_task() = *std::move(task);
            } else {
              result->mutable_error()->set_code(
                  static_cast<int32_t>(task.status().code()));
              result->mutable_error()->set_message(
                  std::string(task.status().message()));
            }
          }
          // One audit line per call, as for every method: a line per task
          // would cost more than the rest of a batch. Task ids sort by
          // creation time: the range holds every task of the batch.
          auth::Audit(
              {.method = "BatchCreateTasks",
               .subject = caller.subject,
               .tenant = caller.tenant,
               .object = absl::StrCat(created, " of ", tasks.size(), " tasks ",
                                      lowest, "..", highest)});
          *raw_response = SerializeMessage(response);
          reactor->Finish(grpc::Status::OK);
        },
        std::move(trace_id));
    if (!accepted.ok()) {
      auth::Audit({.method = "BatchCreateTasks",
                   .subject = caller.subject,
                   .tenant = caller.tenant,
                   .outcome = accepted});
      VLOG(1) << "BatchCreateTasks: " << accepted;
      reactor->Finish(common::ToGrpcStatus(accepted));
    }
  });
  return reactor;
}

grpc::ServerUnaryReactor* TaskService::GetTask(grpc::CallbackServerContext* ctx,
                                               const grpc::ByteBuffer* request,
                                               grpc::ByteBuffer* response) {
  absl::StatusOr<auth::Identity> caller =
      AuthenticateCall(authenticator_, ctx, auth::Right::kRead);
  return Unary<crucible::v1::GetTaskRequest, crucible::v1::GetTaskResponse>(
      ctx, pool_, "GetTask", caller, request, response,
      [this, caller](const crucible::v1::GetTaskRequest& request,
                     crucible::v1::GetTaskResponse& response) {
        absl::StatusOr<crucible::v1::Task> task =
            scheduler_.GetTask(ScopeOf(*caller), request.task_id());
        if (task.ok()) *response.mutable_task() = *std::move(task);
        return task.status();
      });
}

grpc::ServerUnaryReactor* TaskService::ListTasks(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  absl::StatusOr<auth::Identity> caller =
      AuthenticateCall(authenticator_, ctx, auth::Right::kRead);
  return Unary<crucible::v1::ListTasksRequest, crucible::v1::ListTasksResponse>(
      ctx, pool_, "ListTasks", caller, request, response,
      [this, caller](const crucible::v1::ListTasksRequest& request,
                     crucible::v1::ListTasksResponse& response) {
        // Only an admin's list spans tenants, and only when asked.
        if (request.all_tenants()) {
          RETURN_IF_ERROR(auth::Authorize(*caller, auth::Right::kAdmin));
        }
        const TenantScope scope{.tenant = caller->tenant,
                                .all_tenants = request.all_tenants()};
        ListTasksQuery query;
        query.page_size = request.page_size();
        query.page_token = request.page_token();
        for (int s : request.states()) {
          query.states.push_back(static_cast<crucible::v1::TaskState>(s));
        }
        query.labels.insert(request.labels().begin(), request.labels().end());
        absl::StatusOr<ListTasksPage> page =
            scheduler_.ListTasks(scope, std::move(query));
        if (!page.ok()) return page.status();
        for (crucible::v1::Task& t : page->tasks) {
          *response.add_tasks() = std::move(t);
        }
        response.set_next_page_token(page->next_page_token);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* TaskService::CancelTask(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  absl::StatusOr<auth::Identity> caller =
      AuthenticateCall(authenticator_, ctx, auth::Right::kWrite);
  if (!caller.ok()) {
    auth::Audit({.method = "CancelTask", .outcome = caller.status()});
  }
  return Unary<crucible::v1::CancelTaskRequest,
               crucible::v1::CancelTaskResponse>(
      ctx, pool_, "CancelTask", caller, request, response,
      [this, caller](const crucible::v1::CancelTaskRequest& request,
                     crucible::v1::CancelTaskResponse& response) {
        absl::StatusOr<crucible::v1::Task> task = scheduler_.CancelTask(
            ScopeOf(*caller), request.task_id(), request.reason());
        auth::Audit({.method = "CancelTask",
                     .subject = caller->subject,
                     .tenant = caller->tenant,
                     .object = request.task_id(),
                     .outcome = task.status()});
        if (task.ok()) *response.mutable_task() = *std::move(task);
        return task.status();
      });
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* TaskService::WatchTask(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* raw_request) {
  crucible::v1::WatchTaskRequest request;
  if (absl::Status parsed = ParseRequest(*raw_request, request); !parsed.ok()) {
    return FailedStream(common::ToGrpcStatus(parsed));
  }
  absl::StatusOr<auth::Identity> caller =
      AuthenticateCall(authenticator_, ctx, auth::Right::kRead);
  if (!caller.ok()) return FailedStream(common::ToGrpcStatus(caller.status()));
  return new Watcher(scheduler_, pool_, ScopeOf(*caller), request.task_id(),
                     options_.max_watch_backlog);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* TaskService::StreamTaskOutput(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* raw_request) {
  crucible::v1::StreamTaskOutputRequest request;
  if (absl::Status parsed = ParseRequest(*raw_request, request); !parsed.ok()) {
    return FailedStream(common::ToGrpcStatus(parsed));
  }
  absl::StatusOr<auth::Identity> caller =
      AuthenticateCall(authenticator_, ctx, auth::Right::kRead);
  if (!caller.ok()) return FailedStream(common::ToGrpcStatus(caller.status()));
  return new TaskOutputStream(scheduler_, pool_, ScopeOf(*caller), request,
                              options_.max_follow_live_bytes);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* TaskService::GetArtifact(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* raw_request) {
  crucible::v1::GetArtifactRequest request;
  if (absl::Status parsed = ParseRequest(*raw_request, request); !parsed.ok()) {
    return FailedStream(common::ToGrpcStatus(parsed));
  }
  absl::StatusOr<auth::Identity> caller =
      AuthenticateCall(authenticator_, ctx, auth::Right::kRead);
  if (!caller.ok()) return FailedStream(common::ToGrpcStatus(caller.status()));
  return new ArtifactStream(scheduler_, pool_, ScopeOf(*caller), request);
}

}  // namespace server
