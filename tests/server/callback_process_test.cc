// Completion callbacks from a real crucible-server process to a receiver in
// this test (cpp-httplib) that checks what the user guide tells receivers to
// check: the HMAC-SHA256 over "timestamp.body", a fresh timestamp, and a
// delivery id not accepted before.
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/http_get.h"
#include "tests/testing/postgres.h"
#include "tests/testing/process.h"
#include "tests/testing/process_flags.h"

namespace {

namespace v1 = crucible::v1;

constexpr char kKeyId[] = "k2";
constexpr char kSecret[] = "0123456789abcdef0123456789abcdef";

std::string HexHmac(const std::string& secret, const std::string& message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(),
       mac, &size);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(mac), size));
}

// What a receiver should do, as the user guide says. Thread-safe.
class Receiver {
 public:
  Receiver() {
    http_.Post("/hook", [this](const httplib::Request& req,
                               httplib::Response& res) { Hook(req, res); });
    http_.Post(
        "/redirect", [this](const httplib::Request&, httplib::Response& res) {
          absl::MutexLock lock(&mu_);
          ++redirects_;
          res.set_redirect(absl::StrCat("http://127.0.0.1:", port_, "/hook"));
        });
    port_ = http_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { http_.listen_after_bind(); });
    // Bound and listening: connections wait in the backlog until the
    // thread accepts them.
  }
  ~Receiver() {
    http_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  // The next `n` valid deliveries are answered 500.
  void FailNext(int n) {
    absl::MutexLock lock(&mu_);
    fail_next_ = n;
  }
  int posts() {
    absl::MutexLock lock(&mu_);
    return posts_;
  }
  int accepted() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(accepted_ids_.size());
  }
  int redirects() {
    absl::MutexLock lock(&mu_);
    return redirects_;
  }
  // The last request answered 200: its headers and body, to replay.
  httplib::Headers last_headers() {
    absl::MutexLock lock(&mu_);
    return last_headers_;
  }
  std::string last_body() {
    absl::MutexLock lock(&mu_);
    return last_body_;
  }

 private:
  void Hook(const httplib::Request& req, httplib::Response& res) {
    absl::MutexLock lock(&mu_);
    ++posts_;
    const std::string id = req.get_header_value("X-Crucible-Delivery");
    const std::string ts = req.get_header_value("X-Crucible-Timestamp");
    const std::string sig = req.get_header_value("X-Crucible-Signature");
    int64_t seconds = 0;
    if (req.get_header_value("X-Crucible-Key-Id") != kKeyId ||
        !absl::SimpleAtoi(ts, &seconds) ||
        sig != absl::StrCat("v1=", HexHmac(kSecret, ts + "." + req.body))) {
      res.status = 401;  // not signed by us
      return;
    }
    if (std::abs(absl::ToUnixSeconds(absl::Now()) - seconds) > 300) {
      res.status = 400;  // stale: a replay of an old delivery
      return;
    }
    if (accepted_ids_.count(id) > 0) {
      res.status = 409;  // this delivery was accepted already
      return;
    }
    if (fail_next_ > 0) {
      --fail_next_;
      res.status = 500;
      return;
    }
    accepted_ids_.insert(id);
    last_headers_ = req.headers;
    last_body_ = req.body;
    res.status = 200;
  }

  httplib::Server http_;
  int port_ = 0;
  std::thread thread_;
  absl::Mutex mu_;
  int fail_next_ ABSL_GUARDED_BY(mu_) = 0;
  int posts_ ABSL_GUARDED_BY(mu_) = 0;
  int redirects_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<std::string> accepted_ids_ ABSL_GUARDED_BY(mu_);
  httplib::Headers last_headers_ ABSL_GUARDED_BY(mu_);
  std::string last_body_ ABSL_GUARDED_BY(mu_);
};

class CallbackProcessTest : public testing::Test {
 protected:
  void SetUp() override {
    setenv("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "0", 1);
    dir_ = testing_util::MakeTempDir("crucible-callback");
    std::ofstream(dir_ + "/keys") << "# new key first\n"
                                  << kKeyId << " " << kSecret << "\n"
                                  << "k1 an-older-key-0123456789\n";
  }
  void StartServer(std::vector<std::string> extra = {}) {
    ++run_;
    const std::string port_file = absl::StrCat(dir_, "/port-", run_);
    std::vector<std::string> argv = {
        absl::StrCat(getenv("CRUCIBLE_BIN_DIR"), "/crucible-server"),
        "--listen=127.0.0.1:0",
        absl::StrCat("--port_file=", port_file),
        absl::StrCat("--db=", dir_, "/tasks.db"),
        "--fleet_admission=false",
        absl::StrCat("--callback_allowed_hosts=127.0.0.1:", receiver_.port()),
        absl::StrCat("--callback_signing_key_file=", dir_, "/keys"),
        "--callback_initial_backoff=100ms",
        "--callback_max_backoff=200ms",
        "--callback_timeout=5s",
        "--metrics_listen=127.0.0.1:0",
        absl::StrCat("--metrics_port_file=", dir_, "/metrics-", run_)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    server_.reset();
    auto p = testing_util::Process::Start(
        testing_util::WithTestFlags(argv),
        absl::StrCat(dir_, "/server-", run_, ".log"));
    ASSERT_TRUE(p.ok()) << p.status();
    server_ = std::make_unique<testing_util::Process>(*std::move(p));
    auto port =
        testing_util::WaitForPortFile(port_file, *server_, absl::Seconds(20));
    ASSERT_TRUE(port.ok()) << port.status() << server_->Log();
    auto metrics_port = testing_util::WaitForPortFile(
        absl::StrCat(dir_, "/metrics-", run_), *server_, absl::Seconds(20));
    ASSERT_TRUE(metrics_port.ok()) << metrics_port.status();
    metrics_port_ = *metrics_port;
    stub_ = v1::TaskService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", *port), grpc::InsecureChannelCredentials()));
    // Until it serves TaskService (a PostgreSQL server stands by first,
    // answering UNAVAILABLE, and reopens its port as it takes the lead).
    const absl::Time until = absl::Now() + absl::Seconds(20);
    grpc::StatusCode code = grpc::StatusCode::UNAVAILABLE;
    while (code != grpc::StatusCode::NOT_FOUND && absl::Now() < until) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(2));
      ctx.set_wait_for_ready(true);
      v1::GetTaskRequest req;
      req.set_task_id("no-such-task");
      v1::GetTaskResponse resp;
      code = stub_->GetTask(&ctx, req, &resp).error_code();
      if (code != grpc::StatusCode::NOT_FOUND) {
        absl::SleepFor(absl::Milliseconds(100));
      }
    }
    ASSERT_EQ(code, grpc::StatusCode::NOT_FOUND) << server_->Log();
  }
  std::string Url(const std::string& path) {
    return absl::StrCat("http://127.0.0.1:", receiver_.port(), path);
  }
  grpc::Status Create(const std::string& callback_url, v1::Task* task) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(20));
    // A PostgreSQL server reopens its port as it takes the lead.
    ctx.set_wait_for_ready(true);
    v1::CreateTaskRequest req;
    req.mutable_spec()->set_image("alpine");
    req.mutable_spec()->add_command("true");
    req.mutable_spec()->set_callback_url(callback_url);
    v1::CreateTaskResponse resp;
    grpc::Status s = stub_->CreateTask(&ctx, req, &resp);
    if (task != nullptr) *task = resp.task();
    return s;
  }
  // Creates a task calling back `url` and ends it (CANCELLED).
  std::string CreateAndEnd(const std::string& url) {
    v1::Task task;
    grpc::Status s = Create(url, &task);
    EXPECT_TRUE(s.ok()) << s.error_message();
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(20));
    // A PostgreSQL server reopens its port as it takes the lead.
    ctx.set_wait_for_ready(true);
    v1::CancelTaskRequest req;
    req.set_task_id(task.id());
    v1::CancelTaskResponse resp;
    s = stub_->CancelTask(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return task.id();
  }
  v1::Task Get(const std::string& id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    // A PostgreSQL server reopens its port as it takes the lead.
    ctx.set_wait_for_ready(true);
    v1::GetTaskRequest req;
    req.set_task_id(id);
    v1::GetTaskResponse resp;
    grpc::Status s = stub_->GetTask(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.task();
  }
  // GetTask until `done` holds of the task's callback (30 s at most).
  v1::Task AwaitCallback(
      const std::string& id,
      std::function<bool(const v1::CallbackDelivery&)> done) {
    const absl::Time until = absl::Now() + absl::Seconds(30);
    v1::Task task;
    while (absl::Now() < until) {
      task = Get(id);
      if (done(task.callback())) return task;
      absl::SleepFor(absl::Milliseconds(100));
    }
    ADD_FAILURE() << "callback of " << id << " stuck at "
                  << task.callback().DebugString() << server_->Log();
    return task;
  }

  Receiver receiver_;
  std::string dir_;
  int run_ = 0;
  std::unique_ptr<testing_util::Process> server_;
  int metrics_port_ = 0;
  std::unique_ptr<v1::TaskService::Stub> stub_;
};

bool Delivered(const v1::CallbackDelivery& cb) {
  return cb.state() == v1::CALLBACK_STATE_DELIVERED;
}

TEST_F(CallbackProcessTest, SignedRetriedAfter500AndReplayRejected) {
  StartServer();
  if (HasFatalFailure()) return;
  receiver_.FailNext(1);
  const std::string id = CreateAndEnd(Url("/hook"));
  v1::Task task = AwaitCallback(id, Delivered);
  EXPECT_EQ(task.callback().attempts(), 2);
  EXPECT_TRUE(task.callback().last_error().empty());
  EXPECT_TRUE(task.callback().has_end_time());
  EXPECT_EQ(receiver_.posts(), 2);
  EXPECT_EQ(receiver_.accepted(), 1);
  // Each POST counted by its outcome.
  auto metrics = testing_util::ScrapeMetrics(metrics_port_);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(
      testing_util::ExposedValue(
          *metrics,
          R"(crucible_server_callback_deliveries_total{outcome="failed"})"),
      1);
  EXPECT_EQ(
      testing_util::ExposedValue(
          *metrics,
          R"(crucible_server_callback_deliveries_total{outcome="delivered"})"),
      1);
  // The body is the final task, as protobuf JSON.
  const std::string body = receiver_.last_body();
  EXPECT_TRUE(absl::StrContains(body, id)) << body;
  EXPECT_TRUE(absl::StrContains(body, "TASK_STATE_CANCELLED")) << body;

  // The same delivery sent again (by anyone who saw it) is refused.
  httplib::Client client("127.0.0.1", receiver_.port());
  httplib::Headers headers;
  for (const auto& [name, value] : receiver_.last_headers()) {
    if (absl::StartsWith(name, "X-Crucible-")) headers.emplace(name, value);
  }
  auto replay = client.Post("/hook", headers, body, "application/json");
  ASSERT_TRUE(replay);
  EXPECT_EQ(replay->status, 409);
  // A validly signed delivery with an old timestamp is refused as stale
  // (what keeps a receiver from having to remember ids forever).
  const std::string old_ts =
      absl::StrCat(absl::ToUnixSeconds(absl::Now()) - 3600);
  headers.erase("X-Crucible-Timestamp");
  headers.erase("X-Crucible-Signature");
  headers.erase("X-Crucible-Delivery");
  headers.emplace("X-Crucible-Delivery", "another");
  headers.emplace("X-Crucible-Timestamp", old_ts);
  headers.emplace("X-Crucible-Signature",
                  absl::StrCat("v1=", HexHmac(kSecret, old_ts + "." + body)));
  auto stale = client.Post("/hook", headers, body, "application/json");
  ASSERT_TRUE(stale);
  EXPECT_EQ(stale->status, 400);
  EXPECT_EQ(receiver_.accepted(), 1);
}

TEST_F(CallbackProcessTest, UrlOutsideTheAllowedHostsIsInvalidArgument) {
  StartServer();
  if (HasFatalFailure()) return;
  for (const std::string& url :
       {std::string("http://example.com/hook"),
        absl::StrCat("http://127.0.0.1:", receiver_.port() + 1, "/hook"),
        absl::StrCat("ftp://127.0.0.1:", receiver_.port(), "/hook"),
        absl::StrCat("http://user:pw@127.0.0.1:", receiver_.port(), "/hook"),
        std::string("127.0.0.1/hook"), std::string("http://[::1")}) {
    grpc::Status s = Create(url, nullptr);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << url;
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::BatchCreateTasksRequest batch;
  for (const std::string& url :
       {Url("/hook"), std::string("https://example.com/")}) {
    v1::TaskSpec* spec = batch.add_requests()->mutable_spec();
    spec->set_image("alpine");
    spec->add_command("true");
    spec->set_callback_url(url);
  }
  v1::BatchCreateTasksResponse resp;
  EXPECT_EQ(stub_->BatchCreateTasks(&ctx, batch, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // An allowed one is taken.
  EXPECT_TRUE(Create(Url("/hook"), nullptr).ok());
}

TEST_F(CallbackProcessTest, WithoutAllowedHostsCallbacksAreRefused) {
  StartServer({"--callback_allowed_hosts="});
  if (HasFatalFailure()) return;
  grpc::Status s = Create(Url("/hook"), nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "--callback_allowed_hosts"))
      << s.error_message();
}

TEST_F(CallbackProcessTest, RedirectIsNotFollowedAndGivesUpAtTheHorizon) {
  StartServer({"--callback_horizon=2s"});
  if (HasFatalFailure()) return;
  const std::string id = CreateAndEnd(Url("/redirect"));
  v1::Task task = AwaitCallback(id, [](const v1::CallbackDelivery& cb) {
    return cb.state() == v1::CALLBACK_STATE_GAVE_UP;
  });
  EXPECT_GE(task.callback().attempts(), 1);
  EXPECT_GE(receiver_.redirects(), 1);
  EXPECT_TRUE(absl::StrContains(task.callback().last_error(), "302"))
      << task.callback().last_error();
  EXPECT_TRUE(task.callback().has_end_time());
  EXPECT_EQ(receiver_.posts(), 0);  // /hook never reached
}

TEST_F(CallbackProcessTest, PendingAtSigkillIsDeliveredAfterRestart) {
  StartServer();
  if (HasFatalFailure()) return;
  receiver_.FailNext(1000000);
  const std::string id = CreateAndEnd(Url("/hook"));
  v1::Task pending = AwaitCallback(id, [](const v1::CallbackDelivery& cb) {
    return cb.state() == v1::CALLBACK_STATE_PENDING && cb.attempts() >= 1;
  });
  EXPECT_FALSE(pending.callback().last_error().empty());
  auto killed = server_->Stop(SIGKILL, absl::Seconds(10));
  ASSERT_TRUE(killed.ok()) << killed.status();
  receiver_.FailNext(0);
  EXPECT_EQ(receiver_.accepted(), 0);
  StartServer();
  if (HasFatalFailure()) return;
  v1::Task task = AwaitCallback(id, Delivered);
  EXPECT_GE(task.callback().attempts(), 2);
  EXPECT_EQ(receiver_.accepted(), 1);
}

// The same on the PostgreSQL store: the next leader (after the killed one's
// lease lapses) delivers what was owed.
TEST_F(CallbackProcessTest,
       PendingAtSigkillIsDeliveredByTheNextLeaderOnPostgres) {
  CRUCIBLE_REQUIRE_POSTGRES(uri);
  const std::vector<std::string> pg = {absl::StrCat("--store=", uri),
                                       "--leader_lease=1s"};
  StartServer(pg);
  if (HasFatalFailure()) return;
  receiver_.FailNext(1000000);
  const std::string id = CreateAndEnd(Url("/hook"));
  AwaitCallback(id, [](const v1::CallbackDelivery& cb) {
    return cb.state() == v1::CALLBACK_STATE_PENDING && cb.attempts() >= 1;
  });
  auto killed = server_->Stop(SIGKILL, absl::Seconds(10));
  ASSERT_TRUE(killed.ok()) << killed.status();
  receiver_.FailNext(0);
  StartServer(pg);
  if (HasFatalFailure()) return;
  v1::Task task = AwaitCallback(id, Delivered);
  EXPECT_GE(task.callback().attempts(), 2);
  EXPECT_EQ(receiver_.accepted(), 1);
}

}  // namespace
