// The worker's life and its server stream; runs are in worker_runs.cc.
#include "worker/worker.h"

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "common/grpc_status.h"
#include "glog/logging.h"

namespace worker {

using crucible::v1::ConnectRequest;
using crucible::v1::ConnectResponse;

// One Connect stream. The flags are guarded by the worker's mu_.
struct Worker::Connection {
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReaderWriter<ConnectRequest, ConnectResponse>> stream;
  ConnectRequest hello;
  bool reader_done = false;
  bool going_away = false;  // the server said so: half-close, reconnect at once
};

namespace {

// Credits, heartbeats and executor updates belong to one stream (the next
// hello replaces them); reports survive it.
bool PerStream(const ConnectRequest& msg) {
  return msg.has_credit() || msg.has_heartbeat() || msg.has_executors();
}

}  // namespace

Worker::Worker(WorkerOptions options, ReadinessCallback on_readiness)
    : options_(std::move(options)),
      on_readiness_(std::move(on_readiness)),
      stub_(crucible::v1::QueueService::NewStub(
          MakeWorkerChannel(options_.server_address, options_.channel))),
      executors_(ExecutorClient::Options{options_.cancel_deadline, options_.channel}),
      fleet_(options_.fleet, options_.channel, [this] { OnCapacityChange(); }) {}

Worker::~Worker() { Stop(); }

void Worker::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_) return;
    started_ = true;
  }
  fleet_.Start();
  loop_ = std::thread([this] { Loop(); });
}

void Worker::Drain(absl::Duration grace) {
  int running;
  {
    absl::MutexLock lock(&mu_);
    draining_ = true;
    running = static_cast<int>(runs_.size());
  }
  LOG(INFO) << "draining: no more credits; " << running << " running tasks get up to " << grace
            << " to finish";
  {
    absl::MutexLock lock(&mu_);
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return runs_.empty(); };
    if (!mu_.AwaitWithTimeout(absl::Condition(&idle), grace)) {
      LOG(WARNING) << "drain grace over; cancelling " << runs_.size() << " tasks";
    }
  }
  Stop();
}

void Worker::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    draining_ = true;
  }
  CancelAllRuns();
  {
    // The writer half-closes once the runs are gone and their reports are
    // written; the server then ends the stream and the loop returns.
    absl::MutexLock lock(&mu_);
    auto reported = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return runs_.empty() && (outbound_.empty() || conn_ == nullptr);
    };
    mu_.AwaitWithTimeout(absl::Condition(&reported), options_.stop_grace);
    auto closed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return conn_ == nullptr; };
    mu_.AwaitWithTimeout(absl::Condition(&closed), absl::Seconds(2));
    stop_ = true;
    if (conn_ != nullptr) conn_->ctx.TryCancel();  // does not block
  }
  if (loop_.joinable()) loop_.join();
  {
    // Cancelled runs end quickly; what they report now is dropped.
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](std::map<std::string, std::shared_ptr<ActiveRun>>* runs) { return runs->empty(); },
        &runs_));
  }
  ReapFinished();
  fleet_.Stop();
}

int Worker::RunsForTest() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(runs_.size());
}

bool Worker::DrainingForTest() const {
  absl::MutexLock lock(&mu_);
  return draining_;
}

bool Worker::ReadyForTest(std::string* reason) const {
  absl::MutexLock lock(&mu_);
  if (reason != nullptr) *reason = readiness_.Reason();
  return readiness_.ready();
}

void Worker::SetStreamUp(bool up) {
  {
    absl::MutexLock lock(&mu_);
    readiness_.SetStreamUp(up);
  }
  UpdateReadiness();
}

void Worker::UpdateReadiness() {
  bool ready;
  std::string reason;
  {
    absl::MutexLock lock(&mu_);
    readiness_.SetExecutorsInRotation(fleet_.pool().InRotationCount());
    if (!readiness_.StartPublishing()) return;
    ready = readiness_.ready();
    reason = readiness_.Reason();
  }
  // Published without the lock; a change meanwhile is published next, by
  // this thread, so the health service ends with the current state.
  while (true) {
    LOG(INFO) << (ready ? "ready (SERVING): " : "not ready (NOT_SERVING): ") << reason;
    if (on_readiness_) on_readiness_(ready);
    absl::MutexLock lock(&mu_);
    if (!readiness_.PublishedOne()) return;
    ready = readiness_.ready();
    reason = readiness_.Reason();
  }
}

void Worker::Loop() {
  absl::BitGen gen;
  Backoff backoff(options_.reconnect_backoff, gen);
  bool went_away_before = false;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stop_ || stopping_) return;
    }
    LOG(INFO) << "connecting to " << options_.server_address << " as " << options_.worker_id;
    const absl::Time start = absl::Now();
    bool going_away = false;
    const absl::Status status = Serve(going_away);
    ReapFinished();
    int running;
    {
      absl::MutexLock lock(&mu_);
      if (stop_ || stopping_) return;
      running = static_cast<int>(runs_.size());
    }
    if (absl::Now() - start >= options_.backoff_reset_after) backoff.Reset();
    if (going_away) backoff.Reset();
    // The first time at once (another server may be there already); if the
    // next server says so too, with backoff.
    const absl::Duration delay =
        going_away && !went_away_before ? absl::ZeroDuration() : backoff.Next();
    went_away_before = going_away;
    LOG(WARNING) << "server stream ended (" << status
                 << (going_away ? ", the server went away" : "") << "); " << running
                 << " tasks go on; reconnecting in " << delay;
    absl::MutexLock lock(&mu_);
    auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || stopping_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stop), delay)) return;
  }
}

absl::Status Worker::Serve(bool& going_away) {
  Connection conn;
  {
    absl::MutexLock lock(&mu_);
    // A new stream: the server knows only what the hello says, so drop the
    // old stream's credits and heartbeats and offer the free slots afresh.
    for (auto it = outbound_.begin(); it != outbound_.end();) {
      if (!PerStream(*it)) {
        ++it;
        continue;
      }
      outbound_bytes_ -= std::min(outbound_bytes_, it->ByteSizeLong());
      it = outbound_.erase(it);
    }
    outstanding_credits_ = DesiredCreditsLocked();
    published_executors_ = fleet_.Accepts();
    conn.hello = MakeHello(options_.worker_id, outstanding_credits_, published_executors_);
  }
  conn.stream = stub_->Connect(&conn.ctx);
  {
    absl::MutexLock lock(&mu_);
    conn_ = &conn;  // from here Stop() can cancel it and credits go on it
    if (stop_) conn.ctx.TryCancel();
    RegrantLocked();  // slots that freed up since the hello was made
  }
  std::thread writer([this, &conn] { WriterLoop(conn); });
  ConnectResponse msg;
  while (conn.stream->Read(&msg)) {
    Handle(msg);
    ReapFinished();
  }
  {
    absl::MutexLock lock(&mu_);
    conn.reader_done = true;
    conn_ = nullptr;
    outstanding_credits_ = 0;
    going_away = conn.going_away;
  }
  writer.join();
  SetStreamUp(false);
  return common::FromGrpcStatus(conn.stream->Finish());
}

void Worker::WriterLoop(Connection& conn) {
  if (!conn.stream->Write(conn.hello)) return;  // the reader sees the broken stream
  SetStreamUp(true);
  std::vector<crucible::v1::HeldLease> held;
  {
    absl::MutexLock lock(&mu_);
    held = HeldLeasesLocked();
  }
  // Resuming: name at once the leases this worker still holds, with their
  // task and attempt, so they are extended, taken back by a restarted
  // server, or refused as lapsed, before any report under them.
  if (!held.empty()) {
    LOG(INFO) << "resuming " << held.size() << " running tasks on the new stream";
    if (!conn.stream->Write(MakeResumeHeartbeat(held))) return;
  }
  std::vector<std::string> leases;
  absl::Time next_heartbeat = absl::Now() + options_.heartbeat_interval;
  bool half_close = false;
  while (true) {
    ConnectRequest msg;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this, &conn]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !outbound_.empty() || conn.reader_done || stop_ || conn.going_away ||
               (stopping_ && runs_.empty());
      };
      mu_.AwaitWithDeadline(absl::Condition(&ready), next_heartbeat);
      if (conn.reader_done || stop_) break;
      if (conn.going_away) {
        // Nothing more for this server: what is queued goes to the next.
        half_close = true;
        break;
      }
      if (outbound_.empty() && stopping_ && runs_.empty()) {
        half_close = true;
        break;
      }
      if (absl::Now() >= next_heartbeat) {
        next_heartbeat = absl::Now() + options_.heartbeat_interval;
        leases = LiveLeasesLocked();
        // Ahead of queued output: heartbeats keep the leases alive.
        if (!leases.empty()) outbound_.push_front(MakeHeartbeat(leases));
      }
      if (outbound_.empty()) continue;
      msg = std::move(outbound_.front());
      outbound_.pop_front();
      outbound_bytes_ -= std::min(outbound_bytes_, msg.ByteSizeLong());
    }
    const bool written = conn.stream->Write(msg);
    if (written && msg.has_completion()) {
      absl::MutexLock lock(&mu_);
      ended_unsent_.erase(msg.completion().lease_id());
    }
    if (!written) {
      absl::MutexLock lock(&mu_);
      // Not sent: a report goes out again on the next stream.
      if (!PerStream(msg)) {
        outbound_bytes_ += msg.ByteSizeLong();
        outbound_.push_front(std::move(msg));
      }
      conn.ctx.TryCancel();  // the stream is broken; make sure the reader wakes
      break;
    }
  }
  if (half_close) conn.stream->WritesDone();
}

void Worker::Handle(const ConnectResponse& msg) {
  switch (msg.kind_case()) {
    case ConnectResponse::kAssignment:
      StartRun(msg.assignment());
      break;
    case ConnectResponse::kAssignments:
      for (const crucible::v1::Assignment& a : msg.assignments().assignments()) StartRun(a);
      break;
    case ConnectResponse::kCancel:
      CancelFromServer(msg.cancel());
      break;
    case ConnectResponse::kRejected:
      OnRejected(msg.rejected());
      break;
    case ConnectResponse::kGoingAway: {
      LOG(INFO) << "the server is going away (" << msg.going_away().reason()
                << "); reconnecting at once";
      absl::MutexLock lock(&mu_);
      if (conn_ != nullptr) conn_->going_away = true;
      break;
    }
    default:
      LOG(WARNING) << "ignoring an empty message from the server";
  }
}

void Worker::ReapFinished() {
  std::vector<std::thread> finished;
  {
    absl::MutexLock lock(&mu_);
    finished.swap(finished_);
  }
  for (std::thread& t : finished) t.join();
}

void Worker::Enqueue(ConnectRequest msg, bool may_block) {
  absl::MutexLock lock(&mu_);
  if (may_block) {
    auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stop_ || outbound_bytes_ < options_.max_outbound_bytes;
    };
    mu_.Await(absl::Condition(&room));
  }
  PushLocked(std::move(msg));
}

void Worker::PushLocked(ConnectRequest msg) {
  if (stop_) return;
  outbound_bytes_ += msg.ByteSizeLong();
  outbound_.push_back(std::move(msg));
}

std::vector<crucible::v1::HeldLease> Worker::HeldLeasesLocked() const {
  std::vector<crucible::v1::HeldLease> held;
  for (const auto& [lease, run] : runs_) {
    if (!run->silenced && !run->completed) held.push_back(HeldLeaseOf(run->assignment));
  }
  for (const auto& [lease, h] : ended_unsent_) held.push_back(h);
  return held;
}

std::vector<std::string> Worker::LiveLeasesLocked() const {
  std::vector<std::string> leases;
  for (const auto& [lease, run] : runs_) {
    if (!run->silenced && !run->completed) leases.push_back(lease);
  }
  return leases;
}

}  // namespace worker
