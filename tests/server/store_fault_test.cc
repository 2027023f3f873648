// A store commit that fails for good (not a full disk), injected at the real
// store under a real crucible-server process: while the server runs, the
// test adds a trigger to the database that aborts every INSERT into `tasks`.
// The next CreateTask is refused with UNAVAILABLE (never acknowledged), the
// server logs why and exits 1 on its own (docs/operator-guide.md, "A full
// disk": any other failed commit stops the server); restarted on the same
// store with the trigger gone, every task acknowledged before the fault is
// there, and the refused one was not half-stored. Once on SQLite (WAL: the
// test's connection opens the file beside the server's), once on PostgreSQL.
#include <grpcpp/grpcpp.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include <csignal>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/postgres.h"
#include "tests/testing/process.h"
#include "tests/testing/process_flags.h"
#include "tests/testing/test_stack.h"

namespace {

namespace v1 = crucible::v1;

std::chrono::system_clock::time_point In(absl::Duration d) {
  return absl::ToChronoTime(absl::Now() + d);
}

// One run of crucible-server on the test's store. Confined to the test
// thread; the process is stopped when this is destroyed.
class ServerRun {
 public:
  // Starts the server (`store_args` name the store); for PostgreSQL, waits
  // until it holds the leader lease and serves.
  void Start(const std::string& dir, int run,
             const std::vector<std::string>& store_args, bool leader) {
    const std::string port_file = absl::StrCat(dir, "/port-", run);
    std::vector<std::string> argv = {
        testing_util::BinaryPath("crucible-server"), "--listen=127.0.0.1:0",
        "--port_file=" + port_file, "--sweep_interval=100ms",
        "--shutdown_grace=1s",
        // No executor here: take tasks without asking the fleet.
        "--fleet_admission=false"};
    argv.insert(argv.end(), store_args.begin(), store_args.end());
    auto p = testing_util::Process::Start(
        testing_util::WithTestFlags(argv),
        absl::StrCat(dir, "/server-", run, ".log"), {"GLOG_logtostderr=1"});
    ASSERT_TRUE(p.ok()) << p.status();
    process_ = std::make_unique<testing_util::Process>(*std::move(p));
    auto port =
        testing_util::WaitForPortFile(port_file, *process_, absl::Seconds(30));
    ASSERT_TRUE(port.ok()) << port.status() << "\n" << process_->Log();
    if (leader) {
      const absl::Time until = absl::Now() + absl::Seconds(30);
      while (!absl::StrContains(process_->Log(),
                                "crucible-server serving on port") &&
             absl::Now() < until) {
        absl::SleepFor(absl::Milliseconds(50));  // polling the log
      }
      ASSERT_TRUE(
          absl::StrContains(process_->Log(), "crucible-server serving on port"))
          << process_->Log();
    }
    stub_ = v1::TaskService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", *port), grpc::InsecureChannelCredentials()));
  }

  grpc::Status Create(const std::string& request_id, v1::Task* task) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(absl::Seconds(10)));
    v1::CreateTaskRequest req;
    req.mutable_spec()->set_image("localhost/crucible/busybox:latest");
    req.mutable_spec()->add_command("true");
    req.set_request_id(request_id);
    v1::CreateTaskResponse resp;
    grpc::Status s = stub_->CreateTask(&ctx, req, &resp);
    *task = resp.task();
    return s;
  }

  grpc::Status Get(const std::string& id, v1::Task* task) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(absl::Seconds(10)));
    v1::GetTaskRequest req;
    req.set_task_id(id);
    v1::GetTaskResponse resp;
    grpc::Status s = stub_->GetTask(&ctx, req, &resp);
    *task = resp.task();
    return s;
  }

  // Every task's id (one page is enough here).
  std::vector<std::string> List() {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(absl::Seconds(10)));
    v1::ListTasksRequest req;
    req.set_page_size(1000);
    v1::ListTasksResponse resp;
    grpc::Status s = stub_->ListTasks(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::vector<std::string> ids;
    for (const v1::Task& t : resp.tasks()) ids.push_back(t.id());
    return ids;
  }

  testing_util::Process& process() { return *process_; }

 private:
  std::unique_ptr<testing_util::Process> process_;
  std::unique_ptr<v1::TaskService::Stub> stub_;
};

// The scenario, for either store: `inject` adds the failing trigger,
// `repair` drops it.
void CommitFailureStopsTheServer(const std::vector<std::string>& store_args,
                                 bool leader,
                                 const std::function<absl::Status()>& inject,
                                 const std::function<absl::Status()>& repair) {
  const std::string dir = testing_util::MakeTempDir("crucible-store-fault");
  std::map<std::string, std::string> acked;  // request_id -> task id
  {
    ServerRun first;
    first.Start(dir, 1, store_args, leader);
    if (::testing::Test::HasFatalFailure()) return;
    for (int i = 0; i < 3; ++i) {
      v1::Task task;
      const std::string request_id = absl::StrCat("before-", i);
      grpc::Status s = first.Create(request_id, &task);
      ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << first.process().Log();
      acked[request_id] = task.id();
    }

    ASSERT_TRUE(inject().ok());
    v1::Task task;
    grpc::Status refused = first.Create("during", &task);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE)
        << refused.error_message();
    std::cerr << "CreateTask during the fault: " << refused.error_code() << " "
              << refused.error_message() << "\n";

    // The server stops by itself (no signal from the test), exit status 1.
    absl::StatusOr<int> status = first.process().Wait(absl::Seconds(20));
    ASSERT_TRUE(status.ok()) << "still running after a failed commit\n"
                             << first.process().Log();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1)
        << "wait status " << *status << "\n"
        << first.process().Log();
    const std::string log = first.process().Log();
    EXPECT_TRUE(absl::StrContains(log, "store failed, stopping"))
        << "the log does not say why it stopped:\n"
        << log;
    EXPECT_TRUE(absl::StrContains(log, "injected by the test")) << log;
  }

  ASSERT_TRUE(repair().ok());
  ServerRun second;
  second.Start(dir, 2, store_args, leader);
  if (::testing::Test::HasFatalFailure()) return;
  for (const auto& [request_id, id] : acked) {
    v1::Task task;
    grpc::Status s = second.Get(id, &task);
    ASSERT_TRUE(s.ok()) << "acknowledged task " << id
                        << " lost: " << s.error_message();
    EXPECT_EQ(task.request_id(), request_id);
  }
  EXPECT_EQ(second.List().size(), acked.size())
      << "the refused CreateTask left a task behind";
  // The refused call, retried with its request_id, is taken now.
  v1::Task retried;
  grpc::Status s = second.Create("during", &retried);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(second.List().size(), acked.size() + 1);
  absl::StatusOr<int> stopped =
      second.process().Stop(SIGTERM, absl::Seconds(20));
  ASSERT_TRUE(stopped.ok()) << second.process().Log();
  EXPECT_TRUE(WIFEXITED(*stopped) && WEXITSTATUS(*stopped) == 0) << *stopped;
}

absl::Status ExecSqlite(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_busy_timeout(db, 10000);
  char* err = nullptr;
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  absl::Status s = absl::OkStatus();
  if (rc != SQLITE_OK) {
    s = absl::InternalError(
        absl::StrCat(path, ": ", err ? err : sqlite3_errmsg(db)));
    ADD_FAILURE() << s;
  }
  sqlite3_free(err);
  sqlite3_close(db);
  return s;
}

TEST(StoreFaultTest, FailedSqliteCommitStopsTheServerWithExitOne) {
  const std::string db =
      testing_util::MakeTempDir("crucible-store-fault-db") + "/crucible.db";
  CommitFailureStopsTheServer(
      {"--db=" + db}, /*leader=*/false,
      [&] {
        return ExecSqlite(db,
                          "CREATE TRIGGER crucible_test_fault BEFORE INSERT "
                          "ON tasks BEGIN SELECT RAISE(ABORT, 'injected by "
                          "the test'); END;");
      },
      [&] { return ExecSqlite(db, "DROP TRIGGER crucible_test_fault"); });
}

TEST(StoreFaultTest, FailedPostgresCommitStopsTheServerWithExitOne) {
  CRUCIBLE_REQUIRE_POSTGRES(uri);
  auto exec = [&](const std::string& sql) {
    absl::Status s = testing_util::ExecPostgres(uri, sql);
    EXPECT_TRUE(s.ok()) << s;
    return s;
  };
  CommitFailureStopsTheServer(
      // The restarted server has the same id: it takes its own lease back.
      {"--store=" + uri, "--server_id=store-fault", "--leader_lease=2s"},
      /*leader=*/true,
      [&] {
        return exec(
            "CREATE FUNCTION crucible_test_fault() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected by the "
            "test'; END $$; "
            "CREATE TRIGGER crucible_test_fault BEFORE INSERT ON tasks "
            "FOR EACH ROW EXECUTE FUNCTION crucible_test_fault();");
      },
      [&] { return exec("DROP TRIGGER crucible_test_fault ON tasks"); });
}

}  // namespace
