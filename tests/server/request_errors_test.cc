// Every user error of TaskService answers a user-error code with a short
// message; idempotency by request_id. A real in-process server (with the
// receive limit main.cc sets), real stubs, and raw bytes through a generic
// stub for what a generated stub cannot send (invalid UTF-8, bad wire data).
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/grpc_server.h"
#include "common/proto_time.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "gtest/gtest.h"
#include "server/blocking_pool.h"
#include "server/outbox/durable_outbox.h"
#include "server/scheduler/request_validation.h"
#include "server/scheduler/scheduler.h"
#include "server/store/sqlite_task_store.h"
#include "server/task_service.h"
#include "tests/server/test_util.h"

namespace server {
namespace {

namespace v1 = crucible::v1;

// Errors echo at most a short prefix of the input: 64 bytes plus the
// surrounding words.
constexpr size_t kMaxMessageBytes = 200;

std::chrono::system_clock::time_point Deadline(
    absl::Duration d = absl::Seconds(10)) {
  return absl::ToChronoTime(absl::Now() + d);
}

v1::TaskSpec ValidSpec() {
  v1::TaskSpec spec;
  spec.set_image("localhost/crucible/busybox:latest");
  spec.add_command("echo");
  return spec;
}

class RequestErrorsTest : public testing::Test {
 public:  // the table's calls use them
  void SetUp() override {
    dir_ = testing_util::FreshDir();
    Start();
  }
  void TearDown() override { Stop(); }

  void Start() {
    auto store = SqliteTaskStore::Open({.path = dir_ + "/tasks.db"});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    outbox_ = std::make_unique<DurableOutbox>(*store_, DurableOutboxOptions{});
    auto scheduler = Scheduler::Create({}, *store_, *outbox_, clock_);
    ASSERT_TRUE(scheduler.ok()) << scheduler.status();
    scheduler_ = *std::move(scheduler);
    service_ =
        std::make_unique<TaskService>(*scheduler_, pool_, authenticator_);
    auto server = common::GrpcServer::Start(
        {.listen_address = "127.0.0.1:0",
         .max_receive_message_bytes =
             static_cast<int>(kMaxReceiveMessageBytes)},
        {service_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(-1);
    channel_ =
        grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                  grpc::InsecureChannelCredentials(), args);
    stub_ = v1::TaskService::NewStub(channel_);
  }
  // Everything but the directory goes; Start() again is a server restart.
  void Stop() {
    if (server_) server_->Shutdown(absl::Seconds(1));
    server_.reset();
    service_.reset();
    scheduler_.reset();
    outbox_.reset();
    store_.reset();
  }

  grpc::Status Create(const v1::CreateTaskRequest& req,
                      v1::CreateTaskResponse* resp = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::CreateTaskResponse ignored;
    return stub_->CreateTask(&ctx, req, resp ? resp : &ignored);
  }
  grpc::Status CreateSpec(const v1::TaskSpec& spec) {
    v1::CreateTaskRequest req;
    *req.mutable_spec() = spec;
    return Create(req);
  }
  grpc::Status Get(const std::string& id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::GetTaskRequest req;
    req.set_task_id(id);
    v1::GetTaskResponse resp;
    return stub_->GetTask(&ctx, req, &resp);
  }
  grpc::Status List(const v1::ListTasksRequest& req,
                    v1::ListTasksResponse* resp = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::ListTasksResponse ignored;
    return stub_->ListTasks(&ctx, req, resp ? resp : &ignored);
  }
  grpc::Status Cancel(const std::string& id, const std::string& reason = "") {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::CancelTaskRequest req;
    req.set_task_id(id);
    req.set_reason(reason);
    v1::CancelTaskResponse resp;
    return stub_->CancelTask(&ctx, req, &resp);
  }
  grpc::Status Watch(const std::string& id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::WatchTaskRequest req;
    req.set_task_id(id);
    auto reader = stub_->WatchTask(&ctx, req);
    v1::WatchTaskResponse resp;
    while (reader->Read(&resp)) {
    }
    return reader->Finish();
  }
  grpc::Status Output(const v1::StreamTaskOutputRequest& req) {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    auto reader = stub_->StreamTaskOutput(&ctx, req);
    v1::StreamTaskOutputResponse resp;
    while (reader->Read(&resp)) {
    }
    return reader->Finish();
  }
  // Sends `bytes` as the request of `method` (unary or server-streaming)
  // and returns the call's status.
  grpc::Status Raw(const std::string& method, const std::string& bytes) {
    grpc::GenericStub generic(channel_);
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1);
    grpc::CompletionQueue cq;
    std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
        generic.PrepareCall(
            &ctx, absl::StrCat("/crucible.v1.TaskService/", method), &cq);
    void* tag;
    bool ok;
    auto step = [&](int n) {
      EXPECT_TRUE(cq.Next(&tag, &ok));
      EXPECT_EQ(tag, reinterpret_cast<void*>(n));
    };
    call->StartCall(reinterpret_cast<void*>(1));
    step(1);
    call->WriteLast(request, grpc::WriteOptions(), reinterpret_cast<void*>(2));
    step(2);
    grpc::ByteBuffer response;
    do {
      call->Read(&response, reinterpret_cast<void*>(3));
      step(3);
    } while (ok);
    grpc::Status status;
    call->Finish(&status, reinterpret_cast<void*>(4));
    step(4);
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
    return status;
  }

  std::string dir_;
  common::FakeClock clock_{absl::FromUnixSeconds(1'800'000'000)};
  BlockingPool pool_{4};
  // Calls without credentials act as tenant "default".
  const auth::Authenticator authenticator_{
      {.allow_anonymous = true}, nullptr, nullptr};
  std::unique_ptr<SqliteTaskStore> store_;
  std::unique_ptr<DurableOutbox> outbox_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<TaskService> service_;
  std::unique_ptr<common::GrpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TaskService::Stub> stub_;
};

struct Case {
  std::string name;
  std::function<grpc::Status(RequestErrorsTest&)> call;
  grpc::StatusCode code;
};

// A string field (number `field`) holding `value`, encoded by hand.
std::string StringField(int field, const std::string& value) {
  std::string out(1, static_cast<char>((field << 3) | 2));
  size_t n = value.size();
  do {
    uint8_t b = n & 0x7F;
    n >>= 7;
    out += static_cast<char>(n ? (b | 0x80) : b);
  } while (n);
  return out + value;
}

const std::string kBadUtf8 = "ok\xff\xfe";
const std::string kHuge(100 << 10, 'x');

TEST_F(RequestErrorsTest, EveryUserErrorHasAUserCodeAndAShortMessage) {
  using grpc::StatusCode;
  using T = RequestErrorsTest;
  auto spec_with = [](std::function<void(v1::TaskSpec&)> change) {
    return [change](T& t) {
      v1::TaskSpec spec = ValidSpec();
      change(spec);
      return t.CreateSpec(spec);
    };
  };
  const std::vector<Case> cases = {
      // Invalid UTF-8 in every kind of string field, for every method.
      {"CreateTask request_id utf8",
       [](T& t) { return t.Raw("CreateTask", StringField(2, kBadUtf8)); },
       StatusCode::INVALID_ARGUMENT},
      {"CreateTask spec.image utf8",
       [](T& t) {
         return t.Raw("CreateTask", StringField(1, StringField(1, kBadUtf8)));
       },
       StatusCode::INVALID_ARGUMENT},
      {"CreateTask spec.command utf8",
       [](T& t) {
         return t.Raw(
             "CreateTask",
             StringField(1, StringField(1, "img") + StringField(2, kBadUtf8)));
       },
       StatusCode::INVALID_ARGUMENT},
      {"CreateTask spec.env value utf8",
       [](T& t) {
         return t.Raw(
             "CreateTask",
             StringField(1, StringField(3, StringField(1, "K") +
                                               StringField(2, kBadUtf8))));
       },
       StatusCode::INVALID_ARGUMENT},
      {"CreateTask spec.labels key utf8",
       [](T& t) {
         return t.Raw(
             "CreateTask",
             StringField(1, StringField(11, StringField(1, kBadUtf8))));
       },
       StatusCode::INVALID_ARGUMENT},
      {"GetTask task_id utf8",
       [](T& t) { return t.Raw("GetTask", StringField(1, kBadUtf8)); },
       StatusCode::INVALID_ARGUMENT},
      {"ListTasks page_token utf8",
       [](T& t) { return t.Raw("ListTasks", StringField(2, kBadUtf8)); },
       StatusCode::INVALID_ARGUMENT},
      {"ListTasks labels utf8",
       [](T& t) {
         return t.Raw(
             "ListTasks",
             StringField(4, StringField(1, "k") + StringField(2, kBadUtf8)));
       },
       StatusCode::INVALID_ARGUMENT},
      {"CancelTask reason utf8",
       [](T& t) {
         return t.Raw("CancelTask",
                      StringField(1, "id") + StringField(2, kBadUtf8));
       },
       StatusCode::INVALID_ARGUMENT},
      {"WatchTask task_id utf8",
       [](T& t) { return t.Raw("WatchTask", StringField(1, kBadUtf8)); },
       StatusCode::INVALID_ARGUMENT},
      {"StreamTaskOutput task_id utf8",
       [](T& t) { return t.Raw("StreamTaskOutput", StringField(1, kBadUtf8)); },
       StatusCode::INVALID_ARGUMENT},
      // Bytes that are no protobuf at all, and a truncated one.
      {"CreateTask garbage",
       [](T& t) { return t.Raw("CreateTask", "\xff\xff\xff"); },
       StatusCode::INVALID_ARGUMENT},
      {"GetTask truncated",
       [](T& t) { return t.Raw("GetTask", "\x0a\x10short"); },
       StatusCode::INVALID_ARGUMENT},
      {"WatchTask garbage",
       [](T& t) { return t.Raw("WatchTask", "\xff\xff\xff"); },
       StatusCode::INVALID_ARGUMENT},
      // Empty, huge and unknown ids.
      {"GetTask empty id", [](T& t) { return t.Get(""); },
       StatusCode::INVALID_ARGUMENT},
      {"CancelTask empty id", [](T& t) { return t.Cancel(""); },
       StatusCode::INVALID_ARGUMENT},
      {"WatchTask empty id", [](T& t) { return t.Watch(""); },
       StatusCode::INVALID_ARGUMENT},
      {"StreamTaskOutput empty id",
       [](T& t) { return t.Output(v1::StreamTaskOutputRequest()); },
       StatusCode::INVALID_ARGUMENT},
      {"GetTask 100 KB id", [](T& t) { return t.Get(kHuge); },
       StatusCode::INVALID_ARGUMENT},
      {"CancelTask 100 KB id", [](T& t) { return t.Cancel(kHuge); },
       StatusCode::INVALID_ARGUMENT},
      {"WatchTask 100 KB id", [](T& t) { return t.Watch(kHuge); },
       StatusCode::INVALID_ARGUMENT},
      {"GetTask unknown 128-byte id",
       [](T& t) { return t.Get(std::string(kMaxTaskIdBytes, 'a')); },
       StatusCode::NOT_FOUND},
      {"CancelTask unknown 128-byte id",
       [](T& t) { return t.Cancel(std::string(kMaxTaskIdBytes, 'a')); },
       StatusCode::NOT_FOUND},
      {"WatchTask unknown 128-byte id",
       [](T& t) { return t.Watch(std::string(kMaxTaskIdBytes, 'a')); },
       StatusCode::NOT_FOUND},
      {"CancelTask huge reason",
       [](T& t) {
         return t.Cancel("x", std::string(kMaxCancelReasonBytes + 1, 'r'));
       },
       StatusCode::INVALID_ARGUMENT},
      // Enum values outside the enum.
      {"ListTasks unknown state",
       [](T& t) {
         v1::ListTasksRequest req;
         req.add_states(static_cast<v1::TaskState>(99));
         return t.List(req);
       },
       StatusCode::INVALID_ARGUMENT},
      {"ListTasks negative state",
       [](T& t) {
         v1::ListTasksRequest req;
         req.add_states(v1::TASK_STATE_QUEUED);
         req.add_states(static_cast<v1::TaskState>(-1));
         return t.List(req);
       },
       StatusCode::INVALID_ARGUMENT},
      {"StreamTaskOutput unknown stream",
       [](T& t) {
         v1::StreamTaskOutputRequest req;
         req.set_task_id("x");
         req.set_stream(static_cast<v1::OutputStream>(7));
         return t.Output(req);
       },
       StatusCode::INVALID_ARGUMENT},
      {"StreamTaskOutput negative offset",
       [](T& t) {
         v1::StreamTaskOutputRequest req;
         req.set_task_id("x");
         req.set_offset(-1);
         return t.Output(req);
       },
       StatusCode::INVALID_ARGUMENT},
      // ListTasks filters and paging.
      {"ListTasks negative page_size",
       [](T& t) {
         v1::ListTasksRequest req;
         req.set_page_size(-1);
         return t.List(req);
       },
       StatusCode::INVALID_ARGUMENT},
      {"ListTasks malformed page_token",
       [](T& t) {
         v1::ListTasksRequest req;
         req.set_page_token("not a token");
         return t.List(req);
       },
       StatusCode::INVALID_ARGUMENT},
      {"ListTasks 100 KB page_token",
       [](T& t) {
         v1::ListTasksRequest req;
         req.set_page_token(kHuge);
         return t.List(req);
       },
       StatusCode::INVALID_ARGUMENT},
      {"ListTasks 100 KB label key",
       [](T& t) {
         v1::ListTasksRequest req;
         (*req.mutable_labels())[kHuge] = "v";
         return t.List(req);
       },
       StatusCode::INVALID_ARGUMENT},
      // The spec.
      {"initial_backoff above max_backoff", spec_with([](v1::TaskSpec& s) {
         s.mutable_retry_policy()->mutable_initial_backoff()->set_seconds(10);
         s.mutable_retry_policy()->mutable_max_backoff()->set_seconds(5);
       }),
       StatusCode::INVALID_ARGUMENT},
      {"timeout of int64-max seconds", spec_with([](v1::TaskSpec& s) {
         s.mutable_timeout()->set_seconds(std::numeric_limits<int64_t>::max());
       }),
       StatusCode::INVALID_ARGUMENT},
      {"timeout above the sane maximum", spec_with([](v1::TaskSpec& s) {
         *s.mutable_timeout() =
             common::ToProtoDuration(kMaxSpecDuration + absl::Seconds(1));
       }),
       StatusCode::INVALID_ARGUMENT},
      {"max_backoff of int64-min seconds", spec_with([](v1::TaskSpec& s) {
         s.mutable_retry_policy()->mutable_max_backoff()->set_seconds(
             std::numeric_limits<int64_t>::min());
       }),
       StatusCode::INVALID_ARGUMENT},
      {"not_before outside the Timestamp range", spec_with([](v1::TaskSpec& s) {
         s.mutable_not_before()->set_seconds(
             std::numeric_limits<int64_t>::max());
       }),
       StatusCode::INVALID_ARGUMENT},
      {"not_before with negative nanos", spec_with([](v1::TaskSpec& s) {
         s.mutable_not_before()->set_seconds(1'800'000'000);
         s.mutable_not_before()->set_nanos(-1);
       }),
       StatusCode::INVALID_ARGUMENT},
      {"not_before two years ahead", spec_with([](v1::TaskSpec& s) {
         *s.mutable_not_before() = common::ToProtoTime(
             absl::FromUnixSeconds(1'800'000'000) + absl::Hours(24 * 730));
       }),
       StatusCode::INVALID_ARGUMENT},
      {"100 KB label key",
       spec_with([](v1::TaskSpec& s) { (*s.mutable_labels())[kHuge] = "v"; }),
       StatusCode::INVALID_ARGUMENT},
      {"100 KB label value",
       spec_with([](v1::TaskSpec& s) { (*s.mutable_labels())["k"] = kHuge; }),
       StatusCode::INVALID_ARGUMENT},
      {"100 KB env name with '='", spec_with([](v1::TaskSpec& s) {
         (*s.mutable_env())[kHuge + "="] = "v";
       }),
       StatusCode::INVALID_ARGUMENT},
      {"NUL in working_dir", spec_with([](v1::TaskSpec& s) {
         s.set_working_dir(std::string("/tmp\0x", 6));
       }),
       StatusCode::INVALID_ARGUMENT},
      {"NUL in a label value", spec_with([](v1::TaskSpec& s) {
         (*s.mutable_labels())["k"] = std::string("a\0b", 3);
       }),
       StatusCode::INVALID_ARGUMENT},
      {"100 KB image", spec_with([](v1::TaskSpec& s) { s.set_image(kHuge); }),
       StatusCode::INVALID_ARGUMENT},
      {"empty image", spec_with([](v1::TaskSpec& s) { s.clear_image(); }),
       StatusCode::INVALID_ARGUMENT},
      {"negative memory", spec_with([](v1::TaskSpec& s) {
         s.mutable_resources()->set_memory_bytes(-1);
       }),
       StatusCode::INVALID_ARGUMENT},
      {"100 KB request_id",
       [](T& t) {
         v1::CreateTaskRequest req;
         *req.mutable_spec() = ValidSpec();
         req.set_request_id(kHuge);
         return t.Create(req);
       },
       StatusCode::INVALID_ARGUMENT},
      // Past the receive limit.
      {"CreateTask above the receive limit",
       [](T& t) {
         v1::CreateTaskRequest req;
         *req.mutable_spec() = ValidSpec();
         req.mutable_spec()->set_stdin(
             std::string(kMaxReceiveMessageBytes, 's'));
         return t.Create(req);
       },
       StatusCode::RESOURCE_EXHAUSTED},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    grpc::Status s = c.call(*this);
    EXPECT_EQ(s.error_code(), c.code) << s.error_message();
    EXPECT_LE(s.error_message().size(), kMaxMessageBytes) << s.error_message();
  }
}

TEST_F(RequestErrorsTest, TheLargestValidRequestFitsUnderTheReceiveLimit) {
  v1::CreateTaskRequest req;
  v1::TaskSpec& spec = *req.mutable_spec();
  // The longest reference the grammar allows within kMaxImageBytes: a name
  // of 255 bytes, a tag of 128, and a digest that fills the rest.
  std::string image =
      std::string(255, 'i') + ":" + std::string(128, 't') + "@sha256:";
  image += std::string(kMaxImageBytes - image.size(), 'f');
  spec.set_image(image);
  const size_t word = kMaxCommandBytes / kMaxCommandEntries;
  for (int i = 0; i < kMaxCommandEntries; ++i)
    spec.add_command(std::string(word, 'c'));
  const size_t env_value = kMaxEnvBytes / kMaxEnvEntries - 8;
  for (int i = 0; i < kMaxEnvEntries; ++i) {
    (*spec.mutable_env())[absl::StrFormat("E%06d", i)] =
        std::string(env_value, 'v');
  }
  spec.set_stdin(std::string(kMaxStdinBytes, 's'));
  spec.set_working_dir("/" + std::string(kMaxWorkingDirBytes - 1, 'w'));
  for (int i = 0; i < kMaxLabels; ++i) {
    (*spec.mutable_labels())[absl::StrFormat(
        "%0*d", static_cast<int>(kMaxLabelKeyBytes), i)] =
        std::string(kMaxLabelValueBytes, 'l');
  }
  spec.mutable_resources()->set_memory_bytes(
      std::numeric_limits<int64_t>::max());
  spec.mutable_resources()->set_cpu_millis(std::numeric_limits<int64_t>::max());
  spec.mutable_resources()->set_pids_limit(std::numeric_limits<int64_t>::max());
  spec.mutable_resources()->set_tmpfs_bytes(
      std::numeric_limits<int64_t>::max());
  *spec.mutable_timeout() =
      common::ToProtoDuration(kMaxSpecDuration - absl::Nanoseconds(1));
  spec.set_max_output_bytes(std::numeric_limits<int64_t>::max());
  spec.set_priority(std::numeric_limits<int32_t>::min());
  spec.mutable_retry_policy()->set_max_attempts(kMaxAttemptsLimit);
  spec.mutable_retry_policy()->set_retry_on_nonzero_exit(true);
  *spec.mutable_retry_policy()->mutable_initial_backoff() =
      common::ToProtoDuration(kMaxSpecDuration - absl::Nanoseconds(1));
  *spec.mutable_retry_policy()->mutable_max_backoff() =
      common::ToProtoDuration(kMaxSpecDuration - absl::Nanoseconds(1));
  *spec.mutable_not_before() = common::ToProtoTime(
      absl::FromUnixSeconds(1'800'000'000) + absl::Hours(24 * 300) +
      absl::Nanoseconds(999'999'999));
  req.set_request_id(std::string(kMaxRequestIdBytes, 'r'));
  ASSERT_TRUE(ValidateTaskSpec(spec).ok()) << ValidateTaskSpec(spec);
  EXPECT_LE(req.ByteSizeLong(), kMaxValidRequestBytes);
  // Whatever admission thinks of it, its size is not the problem.
  grpc::Status s = Create(req);
  EXPECT_NE(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << s.error_message();
}

TEST_F(RequestErrorsTest, SameRequestIdSameSpecIsTheSameTaskEvenAfterARestart) {
  v1::CreateTaskRequest req;
  *req.mutable_spec() = ValidSpec();
  (*req.mutable_spec()->mutable_labels())["a"] = "1";
  (*req.mutable_spec()->mutable_labels())["b"] = "2";
  req.set_request_id("same-spec");
  v1::CreateTaskResponse first, again, after_restart;
  ASSERT_TRUE(Create(req, &first).ok());
  ASSERT_TRUE(Create(req, &again).ok());
  EXPECT_EQ(again.task().id(), first.task().id());
  // An empty sub-message equals an unset one.
  req.mutable_spec()->mutable_resources();
  Stop();
  Start();
  ASSERT_TRUE(Create(req, &after_restart).ok());
  EXPECT_EQ(after_restart.task().id(), first.task().id());
}

TEST_F(RequestErrorsTest, SameRequestIdDifferentSpecIsAlreadyExists) {
  v1::CreateTaskRequest req;
  *req.mutable_spec() = ValidSpec();
  req.set_request_id("reused");
  v1::CreateTaskResponse first;
  ASSERT_TRUE(Create(req, &first).ok());
  req.mutable_spec()->add_command("different");
  grpc::Status active = Create(req);
  EXPECT_EQ(active.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_NE(active.error_message().find(first.task().id()), std::string::npos)
      << active.error_message();
  // Ended, then after a restart: the store's copy decides.
  ASSERT_TRUE(Cancel(first.task().id()).ok());
  Stop();
  Start();
  grpc::Status stored = Create(req);
  EXPECT_EQ(stored.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_NE(stored.error_message().find(first.task().id()), std::string::npos)
      << stored.error_message();
}

// gRPC may report DEADLINE_EXCEEDED for a create that was stored; retrying
// with the same request_id until one answer arrives makes one task each.
TEST_F(RequestErrorsTest, RetriesWithTinyDeadlinesMakeOneTaskPerRequestId) {
  constexpr int kRequests = 40;
  int deadline_exceeded = 0;
  std::vector<std::string> ids;
  for (int i = 0; i < kRequests; ++i) {
    v1::CreateTaskRequest req;
    *req.mutable_spec() = ValidSpec();
    req.set_request_id(absl::StrCat("tiny-deadline-", i));
    for (int attempt = 0;; ++attempt) {
      ASSERT_LT(attempt, 1000);
      grpc::ClientContext ctx;
      // 1 ms at first, growing: every request gets an answer eventually.
      ctx.set_deadline(Deadline(absl::Milliseconds(1 + attempt)));
      v1::CreateTaskResponse resp;
      grpc::Status s = stub_->CreateTask(&ctx, req, &resp);
      if (s.ok()) {
        ids.push_back(resp.task().id());
        break;
      }
      ASSERT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
          << s.error_message();
      ++deadline_exceeded;
    }
  }
  RecordProperty("deadline_exceeded", deadline_exceeded);
  v1::ListTasksRequest list;
  list.set_page_size(1000);
  v1::ListTasksResponse page;
  ASSERT_TRUE(List(list, &page).ok());
  EXPECT_EQ(page.tasks_size(), kRequests)
      << deadline_exceeded << " calls exceeded their deadline";
}

}  // namespace
}  // namespace server
