// The worker's life and its server stream; the runs' threads are in
// worker_runs.cc, the decisions in worker/core/.
#include "worker/worker.h"

#include <utility>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "common/grpc_status.h"
#include "glog/logging.h"

namespace worker {

using crucible::v1::ConnectRequest;
using crucible::v1::ConnectResponse;

// One Connect stream.
struct Worker::Connection {
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReaderWriter<ConnectRequest, ConnectResponse>>
      stream;
  ConnectRequest hello;
  uint64_t id = 0;  // the core's id of this stream
};

namespace {

// `channel` for peers whose certificates carry `tls_name`.
ChannelOptions NamedPeer(ChannelOptions channel, const std::string& tls_name) {
  channel.tls_name = tls_name;
  return channel;
}

}  // namespace

Worker::Worker(WorkerOptions options, ReadinessCallback on_readiness)
    : options_(std::move(options)),
      stub_(crucible::v1::QueueService::NewStub(MakeWorkerChannel(
          options_.server_address,
          NamedPeer(options_.channel, options_.server_tls_name)))),
      executors_(ExecutorClient::Options{
          options_.cancel_deadline,
          NamedPeer(options_.channel, options_.executor_tls_name)}),
      launcher_(executors_),
      fleet_(
          options_.fleet,
          NamedPeer(options_.channel, options_.executor_tls_name),
          [this] { core_.OnCapacityChange(fleet_.Accepts()); },
          [this](const std::set<std::string>& known) {
            executors_.Retain(known);
          }),
      core_(options_.core, common::Clock::Real(), fleet_.pool(), launcher_,
            std::move(on_readiness)) {
  launcher_.Bind(core_);
}

Worker::~Worker() { Stop(); }

void Worker::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_) return;
    started_ = true;
  }
  fleet_.Start();
  loop_ = std::thread([this] { Loop(); });
  ticker_ = std::thread([this] { TickerLoop(); });
}

void Worker::Drain(absl::Duration grace) {
  core_.StartDrain();
  LOG(INFO) << "drain: the running tasks get up to " << grace << " to finish";
  if (!core_.AwaitNoRuns(grace)) {
    LOG(WARNING) << "drain grace over; cancelling " << core_.runs() << " tasks";
  }
  Stop();
}

void Worker::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stop_) return;
    stop_ = true;
  }
  core_.BeginStop();
  core_.AwaitReported(options_.stop_grace, absl::Seconds(2));
  core_.Stopped();
  {
    absl::MutexLock lock(&mu_);
    cut_ = true;
    if (conn_ != nullptr) conn_->ctx.TryCancel();  // does not block
  }
  if (loop_.joinable()) loop_.join();
  if (ticker_.joinable()) ticker_.join();
  // Cancelled runs end quickly; what they report now is dropped.
  core_.AwaitNoRuns(absl::InfiniteDuration());
  launcher_.JoinAll();
  fleet_.Stop();
}

void Worker::TickerLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&cut_), options_.fleet.tick);
      if (cut_) return;
    }
    core_.Tick();
    launcher_.ReapFinished();
  }
}

void Worker::Loop() {
  absl::BitGen gen;
  Backoff backoff(options_.reconnect_backoff, gen);
  bool went_away_before = false;
  while (!core_.stopping()) {
    LOG(INFO) << "connecting to " << options_.server_address << " as "
              << options_.core.worker_id;
    const absl::Time start = absl::Now();
    bool going_away = false;
    const absl::Status status = Serve(going_away);
    launcher_.ReapFinished();
    if (core_.stopping()) return;
    core_.StreamFailed(status);
    if (absl::Now() - start >= options_.backoff_reset_after) backoff.Reset();
    if (going_away) backoff.Reset();
    // The first time at once (another server may be there already); if the
    // next server says so too, with backoff.
    const absl::Duration delay =
        going_away && !went_away_before ? absl::ZeroDuration() : backoff.Next();
    went_away_before = going_away;
    LOG(WARNING) << "server stream ended (" << status
                 << (going_away ? ", the server went away" : "") << "); "
                 << core_.runs() << " tasks go on; reconnecting in " << delay;
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&stop_), delay)) return;
  }
}

absl::Status Worker::Serve(bool& going_away) {
  Connection conn;
  conn.hello = core_.BeginStream(fleet_.Accepts(), conn.id);
  // Several servers of one PostgreSQL store: wait for the one that leads
  // (health SERVING) instead of failing at once while none does; the call
  // keeps the channel polled, so a new leader is found within moments.
  if (absl::StartsWith(options_.server_address, "ipv4:")) {
    conn.ctx.set_wait_for_ready(true);
  }
  conn.stream = stub_->Connect(&conn.ctx);
  {
    absl::MutexLock lock(&mu_);
    conn_ = &conn;  // from here Stop() can cancel it
    if (cut_) conn.ctx.TryCancel();
  }
  core_.StreamConnected(conn.id);  // credits go on it from here
  std::thread writer([this, &conn] { WriterLoop(conn); });
  ConnectResponse msg;
  while (conn.stream->Read(&msg)) {
    Handle(msg);
    launcher_.ReapFinished();
  }
  {
    absl::MutexLock lock(&mu_);
    conn_ = nullptr;
  }
  going_away = core_.EndStream(conn.id);
  writer.join();
  return common::FromGrpcStatus(conn.stream->Finish());
}

void Worker::WriterLoop(Connection& conn) {
  if (!conn.stream->Write(conn.hello))
    return;  // the reader sees the broken stream
  if (std::optional<ConnectRequest> resume = core_.HelloWritten(conn.id);
      resume.has_value()) {
    if (!conn.stream->Write(*resume)) return;
  }
  while (true) {
    WriteStep step = core_.NextWrite(conn.id, absl::InfiniteDuration());
    if (step.kind == WriteStep::Kind::kIdle) continue;
    if (step.kind == WriteStep::Kind::kEnd) return;
    if (step.kind == WriteStep::Kind::kHalfClose) {
      conn.stream->WritesDone();
      return;
    }
    const bool written = conn.stream->Write(step.msg);
    core_.Written(std::move(step.msg), written);
    if (!written) {
      conn.ctx.TryCancel();  // the stream is broken; make sure the reader wakes
      return;
    }
  }
}

void Worker::Handle(const ConnectResponse& msg) {
  switch (msg.kind_case()) {
    case ConnectResponse::kAssignment:
      core_.OnAssignment(msg.assignment());
      break;
    case ConnectResponse::kAssignments:
      for (const crucible::v1::Assignment& a :
           msg.assignments().assignments()) {
        core_.OnAssignment(a);
      }
      break;
    case ConnectResponse::kCancel:
      core_.OnServerCancel(msg.cancel());
      break;
    case ConnectResponse::kRejected:
      core_.OnRejected(msg.rejected());
      break;
    case ConnectResponse::kGoingAway:
      LOG(INFO) << "the server is going away (" << msg.going_away().reason()
                << "); reconnecting at once";
      core_.GoingAway();
      break;
    default:
      LOG(WARNING) << "ignoring an empty message from the server";
  }
}

}  // namespace worker
