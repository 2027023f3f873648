// Server reflection of common::GrpcServer over a real in-process server and a
// raw reflection stub: the descriptors it serves keep the comments written in
// proto/ (what `grpcurl describe` prints), and every registered service
// resolves, through grpc.reflection.v1 and v1alpha alike.
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/grpc_server.h"
#include "crucible/v1/executor_service.grpc.pb.h"
#include "crucible/v1/task_service.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"
#include "tests/testing/test_stack.h"

namespace common {
namespace {

namespace pb = google::protobuf;
using testing::HasSubstr;
using testing::IsSupersetOf;

// The comment lines right above the line of `proto_file` that starts with
// `declaration` (after indentation), as protoc records them in
// SourceCodeInfo.Location.leading_comments: each line without its "//",
// ending in "\n".
std::string LeadingCommentInSource(const std::string& proto_file,
                                   const std::string& declaration) {
  const std::string text =
      testing_util::ReadFile(testing_util::SourcePath("proto/" + proto_file));
  std::vector<std::string> comment;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    absl::string_view stripped = absl::StripLeadingAsciiWhitespace(line);
    if (absl::StartsWith(stripped, declaration)) {
      std::string joined;
      for (const std::string& c : comment) absl::StrAppend(&joined, c, "\n");
      return joined;
    }
    if (absl::ConsumePrefix(&stripped, "//")) {
      comment.emplace_back(stripped);
    } else {
      comment.clear();
    }
  }
  ADD_FAILURE() << declaration << " not found in " << proto_file;
  return "";
}

// The leading comment recorded for `path` in `file`, or "" if none.
std::string LeadingComment(const pb::FileDescriptorProto& file,
                           const std::vector<int>& path) {
  for (const pb::SourceCodeInfo::Location& location :
       file.source_code_info().location()) {
    if (std::vector<int>(location.path().begin(), location.path().end()) ==
        path) {
      return location.leading_comments();
    }
  }
  return "";
}

class ServerReflectionTest : public testing::Test {
 protected:
  void SetUp() override {
    GrpcServerOptions options;
    options.listen_address = "127.0.0.1:0";
    auto server =
        GrpcServer::Start(options, {&task_service_, &executor_service_});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
  }

  // Sends the requests in order on one reflection stream of `Stub`'s
  // version and returns the answers.
  template <typename Stub, typename Request, typename Response>
  std::vector<Response> Ask(const std::vector<Request>& requests) {
    auto stub = Stub::NewStub(channel_);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    auto stream = stub->ServerReflectionInfo(&ctx);
    std::vector<Response> responses;
    for (const Request& request : requests) {
      EXPECT_TRUE(stream->Write(request));
      Response response;
      EXPECT_TRUE(stream->Read(&response));
      responses.push_back(response);
    }
    stream->WritesDone();
    grpc::Status status = stream->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    return responses;
  }

  grpc::reflection::v1::ServerReflectionResponse AskV1(
      const grpc::reflection::v1::ServerReflectionRequest& request) {
    auto responses =
        Ask<grpc::reflection::v1::ServerReflection,
            grpc::reflection::v1::ServerReflectionRequest,
            grpc::reflection::v1::ServerReflectionResponse>({request});
    return responses.empty() ? grpc::reflection::v1::ServerReflectionResponse()
                             : responses[0];
  }

  grpc::reflection::v1::ServerReflectionResponse FileContaining(
      const std::string& symbol) {
    grpc::reflection::v1::ServerReflectionRequest request;
    request.set_file_containing_symbol(symbol);
    return AskV1(request);
  }

  // The files of a file_descriptor_response, by name.
  static std::map<std::string, pb::FileDescriptorProto> Files(
      const grpc::reflection::v1::ServerReflectionResponse& response) {
    std::map<std::string, pb::FileDescriptorProto> files;
    for (const std::string& bytes :
         response.file_descriptor_response().file_descriptor_proto()) {
      pb::FileDescriptorProto file;
      EXPECT_TRUE(file.ParseFromString(bytes));
      files[file.name()] = file;
    }
    return files;
  }

  crucible::v1::TaskService::CallbackService task_service_;
  crucible::v1::ExecutorService::CallbackService executor_service_;
  std::unique_ptr<GrpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(ServerReflectionTest, TaskServiceFileKeepsTheCommentsOfTheProto) {
  auto files = Files(FileContaining("crucible.v1.TaskService"));
  ASSERT_TRUE(files.count("crucible/v1/task_service.proto"));
  const pb::FileDescriptorProto& file = files["crucible/v1/task_service.proto"];
  ASSERT_TRUE(file.has_source_code_info());
  ASSERT_GT(file.service_size(), 0);
  int service = 0;
  while (service < file.service_size() &&
         file.service(service).name() != "TaskService") {
    ++service;
  }
  ASSERT_LT(service, file.service_size());
  int method = 0;
  while (method < file.service(service).method_size() &&
         file.service(service).method(method).name() != "CreateTask") {
    ++method;
  }
  ASSERT_LT(method, file.service(service).method_size());

  // FileDescriptorProto.service = 6, ServiceDescriptorProto.method = 2.
  const std::string service_comment = LeadingCommentInSource(
      "crucible/v1/task_service.proto", "service TaskService ");
  const std::string method_comment = LeadingCommentInSource(
      "crucible/v1/task_service.proto", "rpc CreateTask(");
  ASSERT_FALSE(service_comment.empty());
  ASSERT_FALSE(method_comment.empty());
  EXPECT_EQ(LeadingComment(file, {6, service}), service_comment);
  EXPECT_EQ(LeadingComment(file, {6, service, 2, method}), method_comment);
}

TEST_F(ServerReflectionTest, SendsEveryDependencyOnce) {
  grpc::reflection::v1::ServerReflectionResponse response =
      FileContaining("crucible.v1.TaskService.CreateTask");
  auto files = Files(response);
  EXPECT_EQ(static_cast<int>(files.size()),
            response.file_descriptor_response().file_descriptor_proto_size());
  for (const char* name :
       {"crucible/v1/task_service.proto", "crucible/v1/task.proto",
        "google/protobuf/duration.proto", "google/protobuf/timestamp.proto"}) {
    EXPECT_TRUE(files.count(name)) << name;
  }
  // The first file is the one asked for.
  pb::FileDescriptorProto first;
  ASSERT_TRUE(first.ParseFromString(
      response.file_descriptor_response().file_descriptor_proto(0)));
  EXPECT_EQ(first.name(), "crucible/v1/task_service.proto");
  // Messages keep their comments too.
  EXPECT_TRUE(files["crucible/v1/task.proto"].has_source_code_info());
}

TEST_F(ServerReflectionTest, ListsAndResolvesEveryRegisteredService) {
  grpc::reflection::v1::ServerReflectionRequest list;
  list.set_list_services("");
  const grpc::reflection::v1::ServerReflectionResponse listed = AskV1(list);
  std::vector<std::string> names;
  for (const auto& service : listed.list_services_response().service()) {
    names.push_back(service.name());
  }
  EXPECT_THAT(
      names,
      IsSupersetOf({"crucible.v1.TaskService", "crucible.v1.ExecutorService",
                    "grpc.health.v1.Health",
                    "grpc.reflection.v1.ServerReflection",
                    "grpc.reflection.v1alpha.ServerReflection"}));
  for (const std::string& name : names) {
    grpc::reflection::v1::ServerReflectionResponse response =
        FileContaining(name);
    EXPECT_FALSE(response.has_error_response())
        << name << ": " << response.error_response().error_message();
    EXPECT_GT(response.file_descriptor_response().file_descriptor_proto_size(),
              0)
        << name;
  }
}

TEST_F(ServerReflectionTest, UnknownSymbolAndFileAreNotFound) {
  grpc::reflection::v1::ServerReflectionResponse response =
      FileContaining("crucible.v1.NoSuchService");
  EXPECT_EQ(response.error_response().error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(response.original_request().file_containing_symbol(),
            "crucible.v1.NoSuchService");

  grpc::reflection::v1::ServerReflectionRequest by_name;
  by_name.set_file_by_filename("no/such.proto");
  EXPECT_EQ(AskV1(by_name).error_response().error_code(),
            grpc::StatusCode::NOT_FOUND);

  grpc::reflection::v1::ServerReflectionRequest extensions;
  extensions.set_all_extension_numbers_of_type("crucible.v1.Task");
  grpc::reflection::v1::ServerReflectionResponse numbers = AskV1(extensions);
  EXPECT_FALSE(numbers.has_error_response());
  EXPECT_EQ(numbers.all_extension_numbers_response().base_type_name(),
            "crucible.v1.Task");
}

TEST_F(ServerReflectionTest, V1AlphaAnswersTheSameOnOneStream) {
  grpc::reflection::v1alpha::ServerReflectionRequest by_symbol;
  by_symbol.set_file_containing_symbol("crucible.v1.TaskService");
  grpc::reflection::v1alpha::ServerReflectionRequest by_name;
  by_name.set_file_by_filename("grpc/health/v1/health.proto");
  auto responses = Ask<grpc::reflection::v1alpha::ServerReflection,
                       grpc::reflection::v1alpha::ServerReflectionRequest,
                       grpc::reflection::v1alpha::ServerReflectionResponse>(
      {by_symbol, by_name});
  ASSERT_EQ(responses.size(), 2u);
  pb::FileDescriptorProto task_service;
  ASSERT_TRUE(task_service.ParseFromString(
      responses[0].file_descriptor_response().file_descriptor_proto(0)));
  EXPECT_EQ(task_service.name(), "crucible/v1/task_service.proto");
  EXPECT_TRUE(task_service.has_source_code_info());
  pb::FileDescriptorProto health;
  ASSERT_TRUE(health.ParseFromString(
      responses[1].file_descriptor_response().file_descriptor_proto(0)));
  EXPECT_EQ(health.name(), "grpc/health/v1/health.proto");
}

// buf curl (what the docs use) asks grpc.reflection.v1 first; grpcurl too.
TEST_F(ServerReflectionTest, BufCurlListsMethodsAndCallsThroughReflection) {
  const std::string buf = testing_util::SourcePath("node_modules/.bin/buf");
  const std::string url = absl::StrCat("http://127.0.0.1:", server_->port());
  absl::StatusOr<testing_util::CommandResult> r = testing_util::RunCommand(
      {buf, "curl", "--protocol", "grpc", "--http2-prior-knowledge",
       "--list-methods", url},
      absl::Seconds(60));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->exit_code, 0) << r->err;
  EXPECT_THAT(r->out, HasSubstr("crucible.v1.TaskService/CreateTask"));
  EXPECT_THAT(r->out, HasSubstr("crucible.v1.ExecutorService/"));
  EXPECT_THAT(r->out, HasSubstr("grpc.health.v1.Health/Check"));

  r = testing_util::RunCommand(
      {buf, "curl", "--protocol", "grpc", "--http2-prior-knowledge",
       url + "/grpc.health.v1.Health/Check"},
      absl::Seconds(60));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->exit_code, 0) << r->err;
  EXPECT_THAT(r->out, HasSubstr("SERVING"));
}

}  // namespace
}  // namespace common
