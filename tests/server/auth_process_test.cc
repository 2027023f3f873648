// Authentication and tenants against a real crucible-server process, with
// tokens made by the real CLI: no or bad credentials are UNAUTHENTICATED on
// every method; revoked and expired tokens stop working; a tenant cannot
// get, list, watch, stream or cancel another tenant's task; roles limit
// what a valid identity may do; every mutating call leaves one audit line.
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "crucible/v1/token_service.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"
#include "tests/testing/test_stack.h"

namespace {

namespace v1 = crucible::v1;

constexpr char kAdminToken[] = "admin-0123456789abcdef0123456789";

class AuthProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing_util::MakeTempDir("auth");
    const std::string token_file = dir_ + "/admin-token";
    std::ofstream(token_file) << kAdminToken << "\n";
    chmod(token_file.c_str(), 0600);
    const std::string port_file = dir_ + "/port";
    // No --allow_anonymous: every call must authenticate.
    auto p = testing_util::Process::Start(
        {testing_util::BinaryPath("crucible-server"), "--insecure",
         "--listen=127.0.0.1:0", absl::StrCat("--port_file=", port_file),
         absl::StrCat("--db=", dir_, "/tasks.db"), "--fleet_admission=false",
         absl::StrCat("--admin_token_file=", token_file), "--admin_tenant=ops"},
        dir_ + "/server.log");
    ASSERT_TRUE(p.ok()) << p.status();
    server_ = std::make_unique<testing_util::Process>(*std::move(p));
    auto port =
        testing_util::WaitForPortFile(port_file, *server_, absl::Seconds(20));
    ASSERT_TRUE(port.ok()) << port.status() << "\n" << server_->Log();
    address_ = absl::StrCat("127.0.0.1:", *port);
    auto channel =
        grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
    tasks_ = v1::TaskService::NewStub(channel);
    tokens_ = v1::TokenService::NewStub(channel);
  }

  // The CLI as an admin (or with `token`), returning what it printed.
  testing_util::CommandResult Cli(std::vector<std::string> args,
                                  const std::string& token = kAdminToken) {
    args.insert(args.begin(), {testing_util::BinaryPath("crucible"), "--server",
                               address_, "--token", token});
    auto r = testing_util::RunCommand(args, absl::Seconds(30));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : testing_util::CommandResult{};
  }
  // A token made with `crucible token create`.
  std::string NewToken(const std::string& tenant, const std::string& role,
                       const std::string& ttl = "") {
    std::vector<std::string> args = {"token",    "create", "--name", "test",
                                     "--tenant", tenant,   "--role", role};
    if (!ttl.empty()) args.insert(args.end(), {"--ttl", ttl});
    testing_util::CommandResult r = Cli(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return std::string(absl::StripAsciiWhitespace(r.out));
  }

  static std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(10));
    if (!token.empty()) {
      ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token));
    }
    return ctx;
  }

  grpc::Status Create(const std::string& token, v1::Task* task,
                      const std::string& request_id = "") {
    v1::CreateTaskRequest req;
    req.mutable_spec()->set_image("localhost/crucible/busybox:latest");
    req.mutable_spec()->add_command("true");
    req.set_request_id(request_id);
    v1::CreateTaskResponse resp;
    grpc::Status s = tasks_->CreateTask(Ctx(token).get(), req, &resp);
    if (task != nullptr) *task = resp.task();
    return s;
  }
  grpc::Status Get(const std::string& token, const std::string& id) {
    v1::GetTaskRequest req;
    req.set_task_id(id);
    v1::GetTaskResponse resp;
    return tasks_->GetTask(Ctx(token).get(), req, &resp);
  }
  grpc::Status Cancel(const std::string& token, const std::string& id) {
    v1::CancelTaskRequest req;
    req.set_task_id(id);
    v1::CancelTaskResponse resp;
    return tasks_->CancelTask(Ctx(token).get(), req, &resp);
  }
  grpc::Status List(const std::string& token, std::vector<std::string>* ids,
                    bool all_tenants = false) {
    v1::ListTasksRequest req;
    req.set_all_tenants(all_tenants);
    v1::ListTasksResponse resp;
    grpc::Status s = tasks_->ListTasks(Ctx(token).get(), req, &resp);
    if (ids != nullptr) {
      for (const v1::Task& t : resp.tasks()) ids->push_back(t.id());
    }
    return s;
  }
  grpc::Status Watch(const std::string& token, const std::string& id) {
    v1::WatchTaskRequest req;
    req.set_task_id(id);
    auto ctx = Ctx(token);
    auto reader = tasks_->WatchTask(ctx.get(), req);
    v1::WatchTaskResponse resp;
    if (reader->Read(&resp)) {
      ctx->TryCancel();  // it would follow the task; one event is enough
      reader->Finish().IgnoreError();
      return grpc::Status::OK;
    }
    return reader->Finish();
  }
  grpc::Status Stream(const std::string& token, const std::string& id) {
    v1::StreamTaskOutputRequest req;
    req.set_task_id(id);
    auto ctx = Ctx(token);
    auto reader = tasks_->StreamTaskOutput(ctx.get(), req);
    v1::StreamTaskOutputResponse resp;
    while (reader->Read(&resp)) {
    }
    return reader->Finish();
  }

  std::string dir_;
  std::string address_;
  std::unique_ptr<testing_util::Process> server_;
  std::unique_ptr<v1::TaskService::Stub> tasks_;
  std::unique_ptr<v1::TokenService::Stub> tokens_;
};

TEST_F(AuthProcessTest, NoOrBadCredentialsAreUnauthenticatedOnEveryMethod) {
  v1::Task task;
  ASSERT_TRUE(Create(NewToken("team-a", "user"), &task).ok());
  for (const std::string& token :
       {std::string(), std::string("cru_0123456789ab_nope"),
        std::string("not-a-token"), std::string("a.b.c")}) {
    SCOPED_TRACE(token);
    const auto kUnauth = grpc::StatusCode::UNAUTHENTICATED;
    EXPECT_EQ(Create(token, nullptr).error_code(), kUnauth);
    EXPECT_EQ(Get(token, task.id()).error_code(), kUnauth);
    EXPECT_EQ(List(token, nullptr).error_code(), kUnauth);
    EXPECT_EQ(Cancel(token, task.id()).error_code(), kUnauth);
    EXPECT_EQ(Watch(token, task.id()).error_code(), kUnauth);
    EXPECT_EQ(Stream(token, task.id()).error_code(), kUnauth);
    v1::ListTokensResponse resp;
    EXPECT_EQ(tokens_->ListTokens(Ctx(token).get(), {}, &resp).error_code(),
              kUnauth);
  }
  // Nothing was created by the refused calls, nor cancelled.
  std::vector<std::string> ids;
  ASSERT_TRUE(List(kAdminToken, &ids, /*all_tenants=*/true).ok());
  EXPECT_EQ(ids, std::vector<std::string>{task.id()});
  testing_util::CommandResult r = Cli({"get", task.id()});
  EXPECT_TRUE(absl::StrContains(r.out, "QUEUED")) << r.out << r.err;
  // The CLI says what is wrong.
  r = Cli({"list"}, "");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "UNAUTHENTICATED")) << r.err;
}

TEST_F(AuthProcessTest, RevokedAndExpiredTokensStopWorking) {
  const std::string token = NewToken("team-a", "user");
  const std::string short_lived = NewToken("team-a", "user", "2s");
  ASSERT_TRUE(Create(token, nullptr).ok());
  ASSERT_TRUE(Create(short_lived, nullptr).ok());
  // The token's id is the part between "cru_" and the secret.
  const std::string id = std::vector<std::string>(
      absl::StrSplit(absl::StripPrefix(token, "cru_"), '_'))[0];
  testing_util::CommandResult r = Cli({"token", "revoke", id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(List(token, nullptr).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  r = Cli({"token", "list"});
  EXPECT_TRUE(absl::StrContains(r.out, id)) << r.out;
  absl::SleepFor(absl::Seconds(2.5));
  EXPECT_EQ(Create(short_lived, nullptr).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(AuthProcessTest, ATenantCannotReachAnotherTenantsTask) {
  const std::string a = NewToken("team-a", "user");
  const std::string b = NewToken("team-b", "user");
  v1::Task task;
  ASSERT_TRUE(Create(a, &task, "nightly").ok());
  EXPECT_EQ(task.tenant(), "team-a");
  const auto kNotFound = grpc::StatusCode::NOT_FOUND;
  EXPECT_EQ(Get(b, task.id()).error_code(), kNotFound);
  EXPECT_EQ(Watch(b, task.id()).error_code(), kNotFound);
  EXPECT_EQ(Stream(b, task.id()).error_code(), kNotFound);
  EXPECT_EQ(Cancel(b, task.id()).error_code(), kNotFound);
  // The same answer as for an id that does not exist.
  EXPECT_EQ(Get(b, "t-does-not-exist").error_code(), kNotFound);
  std::vector<std::string> seen_by_b;
  ASSERT_TRUE(List(b, &seen_by_b).ok());
  EXPECT_TRUE(seen_by_b.empty());
  // request_ids are per tenant: B's "nightly" is a task of its own.
  v1::Task other;
  ASSERT_TRUE(Create(b, &other, "nightly").ok());
  EXPECT_NE(other.id(), task.id());
  EXPECT_EQ(other.tenant(), "team-b");
  // A's task is untouched and A still reaches it.
  EXPECT_TRUE(Get(a, task.id()).ok());
  std::vector<std::string> seen_by_a;
  ASSERT_TRUE(List(a, &seen_by_a).ok());
  EXPECT_EQ(seen_by_a, std::vector<std::string>{task.id()});
  EXPECT_TRUE(Cancel(a, task.id()).ok());
}

TEST_F(AuthProcessTest, RolesLimitWhatAValidIdentityMayDo) {
  const std::string user = NewToken("team-a", "user");
  const std::string reader = NewToken("team-a", "reader");
  v1::Task task;
  ASSERT_TRUE(Create(user, &task).ok());
  const auto kDenied = grpc::StatusCode::PERMISSION_DENIED;
  // A reader reads its tenant's tasks, and changes nothing.
  EXPECT_TRUE(Get(reader, task.id()).ok());
  EXPECT_EQ(Create(reader, nullptr).error_code(), kDenied);
  EXPECT_EQ(Cancel(reader, task.id()).error_code(), kDenied);
  // Only admins span tenants and manage tokens.
  EXPECT_EQ(List(user, nullptr, /*all_tenants=*/true).error_code(), kDenied);
  testing_util::CommandResult r =
      Cli({"token", "create", "--name", "x", "--tenant", "team-a"}, user);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "PERMISSION_DENIED")) << r.err;
  // The admin sees and lists every tenant's tasks.
  ASSERT_TRUE(Create(NewToken("team-b", "user"), nullptr).ok());
  r = Cli({"list", "--all-tenants", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "\"team-a\"")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "\"team-b\"")) << r.out;
  EXPECT_TRUE(Get(kAdminToken, task.id()).ok());
  EXPECT_EQ(Cli({"list", "--all-tenants"}, user).exit_code, 1);
}

// `crucible token create` prints the token alone on stdout (so
// `TOKEN=$(crucible token create ...)` captures it) and its id on stderr;
// `token list`, as a table or JSON, names it by id and never shows its
// secret (user guide, "Tokens (admins)").
TEST_F(AuthProcessTest, TokenCreatePrintsTheTokenAloneAndListNeverItsSecret) {
  testing_util::CommandResult created =
      Cli({"token", "create", "--name", "shown-once", "--tenant", "team-a"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  ASSERT_TRUE(absl::EndsWith(created.out, "\n")) << created.out;
  const std::string token = created.out.substr(0, created.out.size() - 1);
  ASSERT_TRUE(absl::StartsWith(token, "cru_")) << created.out;
  EXPECT_EQ(token.find_first_of(" \t\n"), std::string::npos) << created.out;
  const std::string id = std::vector<std::string>(
      absl::StrSplit(absl::StripPrefix(token, "cru_"), '_'))[0];
  const std::string secret = token.substr(token.find('_', 4) + 1);
  ASSERT_GE(secret.size(), 40u) << token;
  EXPECT_TRUE(absl::StrContains(created.err, id)) << created.err;
  EXPECT_FALSE(absl::StrContains(created.err, secret)) << created.err;
  // The printed token is the credential: it acts for team-a as a user.
  EXPECT_TRUE(Create(token, nullptr).ok());
  for (const std::vector<std::string>& list :
       {std::vector<std::string>{"token", "list"},
        std::vector<std::string>{"-o", "json", "token", "list"}}) {
    testing_util::CommandResult r = Cli(list);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(absl::StrContains(r.out, id)) << r.out;
    EXPECT_TRUE(absl::StrContains(r.out, "shown-once")) << r.out;
    EXPECT_FALSE(absl::StrContains(r.out, secret)) << r.out;
    EXPECT_FALSE(absl::StrContains(r.err, secret)) << r.err;
  }
}

TEST_F(AuthProcessTest, EveryMutatingCallLeavesOneAuditLine) {
  const std::string user = NewToken("team-a", "user");
  v1::Task task;
  ASSERT_TRUE(Create(user, &task).ok());
  ASSERT_TRUE(Cancel(user, task.id()).ok());
  EXPECT_EQ(Create("", nullptr).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  const std::string log = server_->Log();
  std::vector<std::string> audit;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    const size_t at = line.find("AUDIT {");
    if (at != absl::string_view::npos) audit.emplace_back(line.substr(at + 6));
  }
  auto count = [&](const std::string& needle) {
    int n = 0;
    for (const std::string& line : audit) n += absl::StrContains(line, needle);
    return n;
  };
  EXPECT_EQ(count("\"audit\":\"CreateToken\""), 1) << log;
  EXPECT_EQ(
      count(absl::StrCat("\"audit\":\"CreateTask\",\"subject\":\"token:")), 1)
      << log;
  EXPECT_EQ(count(absl::StrCat("\"audit\":\"CancelTask\"")), 1) << log;
  EXPECT_EQ(count(absl::StrCat("\"object\":\"", task.id(), "\"")), 2) << log;
  EXPECT_EQ(count("\"code\":\"UNAUTHENTICATED\""), 1) << log;
  EXPECT_EQ(count("\"tenant\":\"team-a\""), 3) << log;  // token, create, cancel
  // No secret in the log: all of cru_<hex id>_<secret> after the id (the
  // secret is web-safe base64 and may hold '_' itself).
  const std::string secret = user.substr(user.find('_', 4) + 1);
  ASSERT_GE(secret.size(), 40u) << user;
  EXPECT_FALSE(absl::StrContains(log, secret));
  EXPECT_FALSE(absl::StrContains(log, kAdminToken));
}

}  // namespace

// Settings that cannot work stop the server at start (exit 2), saying which
// flag is wrong, rather than serving without the authentication asked for.
TEST(AuthSettingsTest, BadSettingsStopTheServerAtStart) {
  const std::string dir = testing_util::MakeTempDir("auth-settings");
  std::ofstream(dir + "/short") << "abc\n";
  std::ofstream(dir + "/jwks.json") << R"({"keys": []})";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--admin_token_file=" + dir + "/missing"}, "--admin_token_file"},
      {{"--admin_token_file=" + dir + "/short"}, "--admin_token_file"},
      {{"--jwks_file=" + dir + "/jwks.json", "--jwt_issuer=i",
        "--jwt_audience=a"},
       "--jwks_file"},
      {{"--jwks_file=" + dir + "/jwks.json"}, "issuer"},
      {{"--allow_anonymous", "--anonymous_tenant=no spaces"}, "tenant"},
  };
  for (const auto& [flags, says] : cases) {
    std::vector<std::string> argv = {
        testing_util::BinaryPath("crucible-server"), "--insecure",
        "--listen=127.0.0.1:0", absl::StrCat("--db=", dir, "/tasks.db")};
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto r = testing_util::RunCommand(argv, absl::Seconds(20));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->exit_code, 2) << flags.back() << "\n" << r->err;
    EXPECT_TRUE(absl::StrContains(r->err, says)) << r->err;
  }
}
