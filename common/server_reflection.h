#ifndef CRUCIBLE_COMMON_SERVER_REFLECTION_H_
#define CRUCIBLE_COMMON_SERVER_REFLECTION_H_

#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/descriptor_database.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/server_builder_option.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace common {

// The descriptors server reflection answers with: the files of a
// FileDescriptorSet first (built with comments, protoc --include_source_info),
// then every file compiled into the binary, so that any registered service
// resolves even if the set lacks it. Thread-safe.
class DescriptorIndex {
 public:
  // INVALID_ARGUMENT if `descriptor_set` is not a serialized
  // FileDescriptorSet of distinct files.
  static absl::StatusOr<std::unique_ptr<DescriptorIndex>> Create(
      std::string_view descriptor_set);

  // Each returns the serialized FileDescriptorProto of the file asked for,
  // first, then those of its transitive dependencies, each once.
  // NOT_FOUND if no file matches.
  absl::StatusOr<std::vector<std::string>> FileByName(const std::string& name);
  // `symbol` is fully qualified: package.Service, package.Service.Method,
  // package.Message, package.Message.field, ...
  absl::StatusOr<std::vector<std::string>> FileContainingSymbol(
      const std::string& symbol);
  absl::StatusOr<std::vector<std::string>> FileContainingExtension(
      const std::string& containing_type, int number);
  // The field numbers of the known extensions of a message type.
  // NOT_FOUND if the type is unknown.
  absl::StatusOr<std::vector<int>> ExtensionNumbers(const std::string& type);

 private:
  DescriptorIndex();
  std::vector<std::string> WithDependencies(
      const google::protobuf::FileDescriptorProto& file)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  google::protobuf::SimpleDescriptorDatabase documented_ ABSL_GUARDED_BY(mu_);
  google::protobuf::DescriptorPoolDatabase compiled_ ABSL_GUARDED_BY(mu_);
  google::protobuf::MergedDescriptorDatabase merged_ ABSL_GUARDED_BY(mu_);
};

// gRPC server reflection, both grpc.reflection.v1 and v1alpha, answering
// from a DescriptorIndex, so clients (grpcurl describe) see the comments
// of the protos. Register services() with the server and pass
// ServiceListOption() to the same builder, which tells it the names of the
// registered services once the server starts. Thread-safe.
class ServerReflection {
 public:
  explicit ServerReflection(std::unique_ptr<DescriptorIndex> index);
  ~ServerReflection();
  ServerReflection(const ServerReflection&) = delete;
  ServerReflection& operator=(const ServerReflection&) = delete;

  // The reflection services (v1, v1alpha), owned by this object.
  std::vector<grpc::Service*> services();
  // A ServerBuilder option that records the server's service names (in
  // this object, which must outlive the server) when it starts.
  std::unique_ptr<grpc::ServerBuilderOption> ServiceListOption();

  // The names ListServices answers with, sorted.
  void SetServiceNames(std::vector<std::string> names);
  std::vector<std::string> ServiceNames() const;

  DescriptorIndex& index() { return *index_; }

 private:
  class V1Service;
  class V1AlphaService;

  const std::unique_ptr<DescriptorIndex> index_;
  mutable absl::Mutex mu_;
  std::vector<std::string> service_names_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<V1Service> v1_;
  std::unique_ptr<V1AlphaService> v1alpha_;
};

}  // namespace common

#endif  // CRUCIBLE_COMMON_SERVER_REFLECTION_H_
