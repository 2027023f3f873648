#include "common/server_reflection.h"

#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/impl/server_initializer.h>

#include <algorithm>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"

namespace common {

namespace pb = google::protobuf;

// Documented files come first: for a file in both databases (every file of
// the set is also compiled in), the one with comments is the one served.
DescriptorIndex::DescriptorIndex()
    : compiled_(*pb::DescriptorPool::generated_pool()),
      merged_(&documented_, &compiled_) {}

absl::StatusOr<std::unique_ptr<DescriptorIndex>> DescriptorIndex::Create(
    std::string_view descriptor_set) {
  pb::FileDescriptorSet set;
  if (!set.ParseFromArray(descriptor_set.data(),
                          static_cast<int>(descriptor_set.size()))) {
    return absl::InvalidArgumentError("not a serialized FileDescriptorSet");
  }
  auto index = std::unique_ptr<DescriptorIndex>(new DescriptorIndex());
  for (const pb::FileDescriptorProto& file : set.file()) {
    absl::MutexLock lock(&index->mu_);
    if (!index->documented_.Add(file)) {
      return absl::InvalidArgumentError(
          absl::StrCat("descriptor set: cannot add ", file.name()));
    }
  }
  return index;
}

std::vector<std::string> DescriptorIndex::WithDependencies(
    const pb::FileDescriptorProto& file) {
  std::vector<std::string> out;
  std::set<std::string> seen = {file.name()};
  std::vector<pb::FileDescriptorProto> pending = {file};
  while (!pending.empty()) {
    pb::FileDescriptorProto next = std::move(pending.back());
    pending.pop_back();
    for (const std::string& dependency : next.dependency()) {
      if (!seen.insert(dependency).second) continue;
      pb::FileDescriptorProto found;
      // A dependency missing from both databases cannot happen for compiled
      // files; the client reports what it lacks.
      if (merged_.FindFileByName(dependency, &found)) {
        pending.push_back(std::move(found));
      }
    }
    out.push_back(next.SerializeAsString());
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> DescriptorIndex::FileByName(
    const std::string& name) {
  absl::MutexLock lock(&mu_);
  pb::FileDescriptorProto file;
  if (!merged_.FindFileByName(name, &file)) {
    return absl::NotFoundError("file not found");
  }
  return WithDependencies(file);
}

absl::StatusOr<std::vector<std::string>> DescriptorIndex::FileContainingSymbol(
    const std::string& symbol) {
  absl::MutexLock lock(&mu_);
  pb::FileDescriptorProto file;
  if (!merged_.FindFileContainingSymbol(symbol, &file)) {
    return absl::NotFoundError("symbol not found");
  }
  return WithDependencies(file);
}

absl::StatusOr<std::vector<std::string>>
DescriptorIndex::FileContainingExtension(const std::string& containing_type,
                                         int number) {
  absl::MutexLock lock(&mu_);
  pb::FileDescriptorProto file;
  if (!merged_.FindFileContainingExtension(containing_type, number, &file)) {
    return absl::NotFoundError("extension not found");
  }
  return WithDependencies(file);
}

absl::StatusOr<std::vector<int>> DescriptorIndex::ExtensionNumbers(
    const std::string& type) {
  absl::MutexLock lock(&mu_);
  pb::FileDescriptorProto file;
  if (!merged_.FindFileContainingSymbol(type, &file)) {
    return absl::NotFoundError("type not found");
  }
  std::vector<int> numbers;
  // False only means "none known" once the type itself was found.
  merged_.FindAllExtensionNumbers(type, &numbers);
  std::sort(numbers.begin(), numbers.end());
  numbers.erase(std::unique(numbers.begin(), numbers.end()), numbers.end());
  return numbers;
}

namespace {

// One reflection request answered into `response`. Request and Response are
// the v1 or v1alpha messages, which have the same fields.
template <typename Request, typename Response>
void Answer(ServerReflection& reflection, const Request& request,
            Response& response) {
  response.Clear();
  response.set_valid_host(request.host());
  *response.mutable_original_request() = request;
  absl::StatusOr<std::vector<std::string>> files;
  switch (request.message_request_case()) {
    case Request::kFileByFilename:
      files = reflection.index().FileByName(request.file_by_filename());
      break;
    case Request::kFileContainingSymbol:
      files = reflection.index().FileContainingSymbol(
          request.file_containing_symbol());
      break;
    case Request::kFileContainingExtension:
      files = reflection.index().FileContainingExtension(
          request.file_containing_extension().containing_type(),
          request.file_containing_extension().extension_number());
      break;
    case Request::kAllExtensionNumbersOfType: {
      absl::StatusOr<std::vector<int>> numbers =
          reflection.index().ExtensionNumbers(
              request.all_extension_numbers_of_type());
      if (numbers.ok()) {
        auto* out = response.mutable_all_extension_numbers_response();
        out->set_base_type_name(request.all_extension_numbers_of_type());
        for (int n : *numbers) out->add_extension_number(n);
        return;
      }
      files = numbers.status();
      break;
    }
    case Request::kListServices: {
      auto* out = response.mutable_list_services_response();
      for (const std::string& name : reflection.ServiceNames()) {
        out->add_service()->set_name(name);
      }
      return;
    }
    default:
      files = absl::UnimplementedError("unknown reflection request");
  }
  if (!files.ok()) {
    response.mutable_error_response()->set_error_code(
        static_cast<int>(files.status().code()));
    response.mutable_error_response()->set_error_message(
        std::string(files.status().message()));
    return;
  }
  for (std::string& file : *files) {
    response.mutable_file_descriptor_response()->add_file_descriptor_proto(
        std::move(file));
  }
}

// One reflection stream: read a request, write its answer, repeat until the
// client half-closes. Only one read or one write is ever in flight, so
// Finish runs once, from whichever of them ends the stream.
template <typename Request, typename Response>
class Reactor : public grpc::ServerBidiReactor<Request, Response> {
 public:
  explicit Reactor(ServerReflection& reflection) : reflection_(reflection) {
    this->StartRead(&request_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      this->Finish(grpc::Status::OK);
      return;
    }
    Answer(reflection_, request_, response_);
    this->StartWrite(&response_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      this->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "stream broken"));
      return;
    }
    this->StartRead(&request_);
  }
  void OnDone() override { delete this; }

 private:
  ServerReflection& reflection_;
  Request request_;
  Response response_;
};

}  // namespace

class ServerReflection::V1Service
    : public grpc::reflection::v1::ServerReflection::CallbackService {
 public:
  explicit V1Service(common::ServerReflection& reflection)
      : reflection_(reflection) {}
  grpc::ServerBidiReactor<grpc::reflection::v1::ServerReflectionRequest,
                          grpc::reflection::v1::ServerReflectionResponse>*
  ServerReflectionInfo(grpc::CallbackServerContext*) override {
    return new Reactor<grpc::reflection::v1::ServerReflectionRequest,
                       grpc::reflection::v1::ServerReflectionResponse>(
        reflection_);
  }

 private:
  common::ServerReflection& reflection_;
};

class ServerReflection::V1AlphaService
    : public grpc::reflection::v1alpha::ServerReflection::CallbackService {
 public:
  explicit V1AlphaService(common::ServerReflection& reflection)
      : reflection_(reflection) {}
  grpc::ServerBidiReactor<grpc::reflection::v1alpha::ServerReflectionRequest,
                          grpc::reflection::v1alpha::ServerReflectionResponse>*
  ServerReflectionInfo(grpc::CallbackServerContext*) override {
    return new Reactor<grpc::reflection::v1alpha::ServerReflectionRequest,
                       grpc::reflection::v1alpha::ServerReflectionResponse>(
        reflection_);
  }

 private:
  common::ServerReflection& reflection_;
};

namespace {

// ServerBuilder's only public view of the registered services' names is a
// plugin's ServerInitializer; Finish runs after Start has also registered the
// default health service.
class ServiceListPlugin : public grpc::ServerBuilderPlugin {
 public:
  explicit ServiceListPlugin(ServerReflection& reflection)
      : reflection_(reflection) {}
  std::string name() override { return "crucible_reflection_service_list"; }
  void InitServer(grpc::ServerInitializer*) override {}
  void Finish(grpc::ServerInitializer* si) override {
    reflection_.SetServiceNames(*si->GetServiceList());
  }
  void ChangeArguments(const std::string&, void*) override {}

 private:
  ServerReflection& reflection_;
};

class ServiceListOptionImpl : public grpc::ServerBuilderOption {
 public:
  explicit ServiceListOptionImpl(ServerReflection& reflection)
      : reflection_(reflection) {}
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>*
                         plugins) override {
    plugins->push_back(std::make_unique<ServiceListPlugin>(reflection_));
  }

 private:
  ServerReflection& reflection_;
};

}  // namespace

ServerReflection::ServerReflection(std::unique_ptr<DescriptorIndex> index)
    : index_(std::move(index)),
      v1_(std::make_unique<V1Service>(*this)),
      v1alpha_(std::make_unique<V1AlphaService>(*this)) {}

ServerReflection::~ServerReflection() = default;

std::vector<grpc::Service*> ServerReflection::services() {
  return {v1_.get(), v1alpha_.get()};
}

std::unique_ptr<grpc::ServerBuilderOption>
ServerReflection::ServiceListOption() {
  return std::make_unique<ServiceListOptionImpl>(*this);
}

void ServerReflection::SetServiceNames(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  absl::MutexLock lock(&mu_);
  service_names_ = std::move(names);
}

std::vector<std::string> ServerReflection::ServiceNames() const {
  absl::MutexLock lock(&mu_);
  return service_names_;
}

}  // namespace common
