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
};

namespace {

// Credits, heartbeats and executor updates belong to one stream (the next
// hello replaces them); reports survive it.
bool PerStream(const ConnectRequest& msg) {
  return msg.has_credit() || msg.has_heartbeat() || msg.has_executors();
}

}  // namespace

Worker::Worker(WorkerOptions options)
    : options_(std::move(options)),
      stub_(crucible::v1::QueueService::NewStub(
          grpc::CreateChannel(options_.server_address, grpc::InsecureChannelCredentials()))),
      executors_(ExecutorClient::Options{options_.cancel_deadline}),
      fleet_(options_.fleet, [this] { OnCapacityChange(); }) {}

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

void Worker::Loop() {
  absl::BitGen gen;
  Backoff backoff(options_.reconnect_backoff, gen);
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stop_ || stopping_) return;
    }
    LOG(INFO) << "connecting to " << options_.server_address << " as " << options_.worker_id;
    const absl::Time start = absl::Now();
    const absl::Status status = Serve();
    ReapFinished();
    int running;
    {
      absl::MutexLock lock(&mu_);
      if (stop_ || stopping_) return;
      running = static_cast<int>(runs_.size());
    }
    if (absl::Now() - start >= options_.backoff_reset_after) backoff.Reset();
    const absl::Duration delay = backoff.Next();
    LOG(WARNING) << "server stream ended (" << status << "); " << running
                 << " tasks go on; reconnecting in " << delay;
    absl::MutexLock lock(&mu_);
    auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || stopping_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stop), delay)) return;
  }
}

absl::Status Worker::Serve() {
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
  }
  writer.join();
  return common::FromGrpcStatus(conn.stream->Finish());
}

void Worker::WriterLoop(Connection& conn) {
  if (!conn.stream->Write(conn.hello)) return;  // the reader sees the broken stream
  std::vector<std::string> leases;
  {
    absl::MutexLock lock(&mu_);
    leases = LiveLeasesLocked();
  }
  // Resuming: name at once the leases this worker still runs, so they are
  // extended (or refused as lapsed) before anything else.
  if (!leases.empty()) {
    LOG(INFO) << "resuming " << leases.size() << " running tasks on the new stream";
    if (!conn.stream->Write(MakeHeartbeat(leases))) return;
  }
  absl::Time next_heartbeat = absl::Now() + options_.heartbeat_interval;
  bool half_close = false;
  while (true) {
    ConnectRequest msg;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this, &conn]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !outbound_.empty() || conn.reader_done || stop_ || (stopping_ && runs_.empty());
      };
      mu_.AwaitWithDeadline(absl::Condition(&ready), next_heartbeat);
      if (conn.reader_done || stop_) break;
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
    if (!conn.stream->Write(msg)) {
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

std::vector<std::string> Worker::LiveLeasesLocked() const {
  std::vector<std::string> leases;
  for (const auto& [lease, run] : runs_) {
    if (!run->silenced && !run->completed) leases.push_back(lease);
  }
  return leases;
}

}  // namespace worker
