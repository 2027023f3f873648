#ifndef CRUCIBLE_BENCH_BENCH_WORKER_H_
#define CRUCIBLE_BENCH_BENCH_WORKER_H_

// The QueueService worker of the benchmarks: it completes every assignment
// at once, so what they measure is the server's queue path alone.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/strings/str_cat.h"
#include "crucible/v1/queue_service.grpc.pb.h"

namespace bench {

// A worker that completes each assignment at once (exit 0) and hands the
// credit back, in batches of a sixteenth of its credits. It takes
// assignments in batches and answers each batch with one CompletionBatch,
// as a busy worker may. Returns when `stop` is set and the next message
// arrives, or when the stream ends (`ctx`->TryCancel() ends it at once).
inline void Worker(std::shared_ptr<grpc::Channel> channel, int id, int credits,
                   grpc::ClientContext* ctx, std::atomic<bool>& stop,
                   std::atomic<int64_t>& completed,
                   std::atomic<int64_t>& messages) {
  namespace v1 = crucible::v1;
  auto stub = v1::QueueService::NewStub(channel);
  auto stream = stub->Connect(ctx);
  v1::ConnectRequest hello;
  hello.mutable_hello()->set_worker_id(absl::StrCat("bench-worker-", id));
  hello.mutable_hello()->set_credits(credits);
  hello.mutable_hello()->set_accepts_assignment_batches(true);
  if (!stream->Write(hello)) return;
  const int batch = std::max(1, credits / 16);
  int owed = 0;
  v1::ConnectResponse msg;
  while (!stop.load() && stream->Read(&msg)) {
    v1::ConnectRequest done;
    auto complete = [&done](const v1::Assignment& a) {
      v1::AttemptCompletion* c = done.mutable_completions()->add_completions();
      c->set_lease_id(a.lease_id());
      c->mutable_result()->set_reason(v1::TERMINATION_REASON_EXITED);
      c->mutable_result()->set_exit_code(0);
    };
    if (msg.has_assignment()) complete(msg.assignment());
    for (const v1::Assignment& a : msg.assignments().assignments()) complete(a);
    const int n = done.completions().completions_size();
    if (n == 0) continue;
    messages.fetch_add(1);
    if (!stream->Write(done)) break;
    completed.fetch_add(n);
    owed += n;
    if (owed >= batch) {
      v1::ConnectRequest credit;
      credit.mutable_credit()->set_credits(owed);
      owed = 0;
      if (!stream->Write(credit)) break;
    }
  }
  ctx->TryCancel();
  stream->Finish().IgnoreError();
}

}  // namespace bench

#endif  // CRUCIBLE_BENCH_BENCH_WORKER_H_
