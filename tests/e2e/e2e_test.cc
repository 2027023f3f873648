// The first path end to end: real binaries talking gRPC over sockets, a real
// engine (Podman's Docker API) behind the real docker-proxy (HAProxy).
#include <grpcpp/grpcpp.h>
#include <sys/wait.h>

#include <csignal>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/task_state.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/local_stack.h"
#include "tests/testing/process.h"
#include "tests/testing/test_stack.h"

namespace {

using crucible::v1::CreateTaskRequest;
using crucible::v1::CreateTaskResponse;
using crucible::v1::OutputStream;
using crucible::v1::StreamTaskOutputRequest;
using crucible::v1::StreamTaskOutputResponse;
using crucible::v1::Task;
using crucible::v1::TaskState;
using crucible::v1::TerminationReason;
using crucible::v1::WatchTaskRequest;
using crucible::v1::WatchTaskResponse;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using testing_util::LocalStack;
using testing_util::RunCommand;

constexpr char kImage[] = "localhost/crucible/busybox:latest";

struct Output {
  std::string stdout_bytes, stderr_bytes;
};

class EndToEndTest : public testing_util::LocalStackSuite<> {
 protected:
  // Submits `argv` in busybox and waits (WatchTask) until it ends.
  Task RunTask(std::vector<std::string> argv) {
    CreateTaskRequest req;
    req.mutable_spec()->set_image(kImage);
    for (auto& a : argv) req.mutable_spec()->add_command(a);
    req.mutable_spec()->mutable_timeout()->set_seconds(60);
    CreateTaskResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    grpc::Status s = local_->tasks().CreateTask(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.task().state(), crucible::v1::TASK_STATE_QUEUED);
    return WaitForEnd(resp.task().id());
  }

  Task WaitForEnd(const std::string& id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(90));
    WatchTaskRequest req;
    req.set_task_id(id);
    auto reader = local_->tasks().WatchTask(&ctx, req);
    WatchTaskResponse event;
    TaskState last = crucible::v1::TASK_STATE_UNSPECIFIED;
    while (reader->Read(&event)) last = event.event().state();
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_TRUE(common::IsTerminal(last))
        << "watch ended in " << TaskState_Name(last);
    return testing_util::GetTaskOrFail(local_->tasks(), id);
  }

  Output ReadOutput(const std::string& id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(30));
    StreamTaskOutputRequest req;
    req.set_task_id(id);
    auto reader = local_->tasks().StreamTaskOutput(&ctx, req);
    StreamTaskOutputResponse chunk;
    Output out;
    while (reader->Read(&chunk)) {
      (chunk.chunk().stream() == crucible::v1::OUTPUT_STREAM_STDERR
           ? out.stderr_bytes
           : out.stdout_bytes) += chunk.chunk().data();
    }
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }
};

TEST_F(EndToEndTest, EchoHelloSucceedsWithItsOutput) {
  Task task = RunTask({"echo", "hello"});
  EXPECT_EQ(task.state(), crucible::v1::TASK_STATE_SUCCEEDED)
      << task.DebugString();
  EXPECT_EQ(task.result().exit_code(), 0);
  EXPECT_EQ(task.result().reason(), crucible::v1::TERMINATION_REASON_EXITED);
  EXPECT_EQ(ReadOutput(task.id()).stdout_bytes, "hello\n");
}

TEST_F(EndToEndTest, NonZeroExitFailsWithTheExitCode) {
  Task task = RunTask({"sh", "-c", "exit 3"});
  EXPECT_EQ(task.state(), crucible::v1::TASK_STATE_FAILED)
      << task.DebugString();
  EXPECT_EQ(task.result().exit_code(), 3);
  EXPECT_EQ(task.result().reason(), crucible::v1::TERMINATION_REASON_EXITED);
  EXPECT_EQ(task.attempt(), 1) << "a non-zero exit is a result, not retried";
}

TEST_F(EndToEndTest, StderrIsKeptApartFromStdout) {
  Task task = RunTask({"sh", "-c", "echo out; echo err >&2; echo out2"});
  ASSERT_EQ(task.state(), crucible::v1::TASK_STATE_SUCCEEDED)
      << task.DebugString();
  Output out = ReadOutput(task.id());
  EXPECT_EQ(out.stdout_bytes, "out\nout2\n");
  EXPECT_EQ(out.stderr_bytes, "err\n");
}

TEST_F(EndToEndTest, TaskRunsAsNonRootInALockedDownContainer) {
  Task task = RunTask({"sh", "-c",
                       "id -u; id -g; grep CapEff /proc/self/status; "
                       "touch /probe 2>/dev/null && echo rootfs-writable; "
                       "ls /sys/class/net"});
  ASSERT_EQ(task.state(), crucible::v1::TASK_STATE_SUCCEEDED)
      << task.DebugString();
  std::vector<std::string> lines = absl::StrSplit(
      ReadOutput(task.id()).stdout_bytes, '\n', absl::SkipEmpty());
  ASSERT_GE(lines.size(), 4u);
  EXPECT_NE(lines[0], "0") << "uid";
  EXPECT_NE(lines[1], "0") << "gid";
  EXPECT_EQ(lines[2], "CapEff:\t0000000000000000");
  EXPECT_EQ(lines[3], "lo") << "network none: loopback only";
  EXPECT_EQ(lines.size(), 4u) << "root filesystem must be read-only";
}

TEST_F(EndToEndTest, ContainerIsGoneAfterTheTask) {
  Task task = RunTask({"true"});
  ASSERT_EQ(task.state(), crucible::v1::TASK_STATE_SUCCEEDED)
      << task.DebugString();
  // Ask the engine itself (behind the proxy) for every container, running or
  // not.
  absl::StatusOr<testing_util::CommandResult> list = RunCommand(
      {"/usr/bin/curl", "-fsS", "--unix-socket", stack_.engine_socket,
       "http://engine/v1.41/containers/json?all=1"},
      absl::Seconds(10));
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->exit_code, 0) << list->err;
  EXPECT_THAT(list->out, Not(HasSubstr(task.id())));
}

TEST_F(EndToEndTest, ProxyAnswers403OutsideTheAllowlist) {
  const std::string proxy =
      absl::StrCat("http://", absl::StripPrefix(stack_.docker_host, "tcp://"));
  struct Case {
    const char* method;
    const char* path;
    int want;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"GET", "/_ping", 200},
           {"GET", "/v1.41/version", 200},
           // Only the executor's own containers may be listed (label filter).
           {"GET", "/v1.41/containers/json", 403},
           {"POST", "/v1.41/containers/anything/exec", 403},
           {"GET", "/v1.41/info", 403},
           {"POST", "/v1.41/build", 403},
           {"GET", "/v1.41/volumes", 403},
           {"DELETE", "/v1.41/images/localhost/crucible/busybox:latest", 403},
           {"GET", "/v1.41/containers/../info", 403},
       }) {
    absl::StatusOr<testing_util::CommandResult> r =
        RunCommand({"/usr/bin/curl", "-sS", "--path-as-is", "-o", "/dev/null",
                    "-w", "%{http_code}", "-X", c.method, proxy + c.path},
                   absl::Seconds(10));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->out, std::to_string(c.want)) << c.method << " " << c.path;
  }
}

TEST_F(EndToEndTest, BadSpecIsInvalidArgumentNamingTheField) {
  struct Case {
    std::function<void(crucible::v1::TaskSpec&)> mutate;
    const char* field;
  };
  for (const Case& c : std::initializer_list<Case>{
           {[](crucible::v1::TaskSpec& s) { s.clear_image(); }, "image"},
           {[](crucible::v1::TaskSpec& s) {
              s.mutable_resources()->set_memory_bytes(-1);
            },
            "memory_bytes"},
       }) {
    CreateTaskRequest req;
    req.mutable_spec()->set_image(kImage);
    req.mutable_spec()->add_command("true");
    c.mutate(*req.mutable_spec());
    CreateTaskResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    grpc::Status s = local_->tasks().CreateTask(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field;
    EXPECT_THAT(s.error_message(), HasSubstr(c.field));
  }
}

// What the executor's policy refuses is refused at CreateTask, by what the
// worker passed on from it, before any task is stored.
TEST_F(EndToEndTest, WhatNoExecutorWouldRunIsRefusedAtCreateTask) {
  struct Case {
    std::function<void(crucible::v1::TaskSpec&)> mutate;
    const char* field;
    const char* limit;  // the executor's limit the message names
  };
  for (const Case& c : std::initializer_list<Case>{
           {[](crucible::v1::TaskSpec& s) {
              s.mutable_resources()->set_memory_bytes(int64_t{1} << 50);
            },
            "spec.resources.memory_bytes", "4294967296"},
           {[](crucible::v1::TaskSpec& s) {
              s.mutable_timeout()->set_seconds(int64_t{100} * 365 * 24 * 3600);
            },
            "spec.timeout", ""},
           {[](crucible::v1::TaskSpec& s) {
              s.mutable_timeout()->set_seconds(25 * 3600);
            },
            "spec.timeout", "24h"},
           {[](crucible::v1::TaskSpec& s) {
              s.set_image("docker.io/library/alpine:3");
            },
            "spec.image", "localhost/crucible/"},
           {[](crucible::v1::TaskSpec& s) { s.set_image("not a valid ref!!"); },
            "spec.image", "not a valid image reference"},
           {[](crucible::v1::TaskSpec& s) {
              s.clear_command();
              s.add_command("");
            },
            "spec.command[0]", ""},
           {[](crucible::v1::TaskSpec& s) {
              s.set_working_dir("relative/dir");
            },
            "spec.working_dir", ""},
       }) {
    CreateTaskRequest req;
    req.mutable_spec()->set_image(kImage);
    req.mutable_spec()->add_command("true");
    req.mutable_spec()->mutable_labels()->insert({"case", "refused-at-create"});
    c.mutate(*req.mutable_spec());
    CreateTaskResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(20));
    grpc::Status s = local_->tasks().CreateTask(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.field << ": " << s.error_message();
    EXPECT_THAT(s.error_message(), StartsWith(c.field));
    EXPECT_THAT(s.error_message(), HasSubstr(c.limit));
  }
  crucible::v1::ListTasksRequest list;
  list.mutable_labels()->insert({"case", "refused-at-create"});
  crucible::v1::ListTasksResponse listed;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  ASSERT_TRUE(local_->tasks().ListTasks(&ctx, list, &listed).ok());
  EXPECT_EQ(listed.tasks_size(), 0) << "a refused task was stored";
}

TEST_F(EndToEndTest, ReflectionListsServicesForBufCurl) {
  const std::string url = absl::StrCat("http://", local_->server_address());
  absl::StatusOr<testing_util::CommandResult> r = RunCommand(
      {testing_util::SourcePath("node_modules/.bin/buf"), "curl", "--protocol",
       "grpc", "--http2-prior-knowledge", "--list-services", url},
      absl::Seconds(60));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->exit_code, 0) << r->err;
  EXPECT_THAT(r->out, HasSubstr("crucible.v1.TaskService"));
  EXPECT_THAT(r->out, HasSubstr("grpc.health.v1.Health"));

  // And a real call through reflection: the health check says SERVING.
  r = RunCommand({testing_util::SourcePath("node_modules/.bin/buf"), "curl",
                  "--protocol", "grpc", "--http2-prior-knowledge", "-d",
                  R"({"service":"crucible.v1.TaskService"})",
                  url + "/grpc.health.v1.Health/Check"},
                 absl::Seconds(60));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->exit_code, 0) << r->err;
  EXPECT_THAT(r->out, HasSubstr("SERVING"));
}

TEST_F(EndToEndTest, CliSubmitPrintsOutputAndExitsWithTheTaskExitCode) {
  absl::StatusOr<testing_util::CommandResult> r =
      RunCommand({testing_util::BinaryPath("crucible"), "--server",
                  local_->server_address(), "submit", "--image", kImage, "--",
                  "sh", "-c", "echo hi; echo oops >&2; exit 3"},
                 absl::Seconds(90));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 3) << r->err;
  EXPECT_EQ(r->out, "hi\n");
  EXPECT_THAT(r->err, HasSubstr("oops\n"));
}

// Its own stack: every process stops cleanly, exit status 0, on SIGTERM.
TEST(EndToEndStopTest, EveryProcessStopsCleanlyOnSigterm) {
  testing_util::TestStack stack = testing_util::TestStackFromEnv();
  REQUIRE_TEST_STACK(stack);
  LocalStack local;
  absl::Status started = local.Start(stack.docker_host);
  ASSERT_TRUE(started.ok()) << started << "\n" << local.Logs();
  absl::Status stopped = local.Stop();
  EXPECT_TRUE(stopped.ok()) << stopped << "\n" << local.Logs();
}

}  // namespace
