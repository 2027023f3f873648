#include "server/raw_messages.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/utf8.h"
#include "server/scheduler/request_validation.h"

namespace server {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::internal::WireFormatLite;

// Nesting followed when looking for the bad field; deeper is "malformed".
constexpr int kMaxDepth = 16;

// The path of the first string field of `in` (an encoded `type`, up to the
// stream's limit) that is not UTF-8, e.g. "spec.command" or
// "spec.env[key]"; nullopt if there is none or the bytes are malformed
// (the parse that follows reports those).
std::optional<std::string> FindBadUtf8(
    const Descriptor* type, google::protobuf::io::CodedInputStream& in,
    int depth) {
  while (uint32_t tag = in.ReadTag()) {
    const FieldDescriptor* field =
        type->FindFieldByNumber(WireFormatLite::GetTagFieldNumber(tag));
    const bool delimited = WireFormatLite::GetTagWireType(tag) ==
                           WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
    if (field == nullptr || !delimited ||
        (field->type() != FieldDescriptor::TYPE_STRING &&
         field->type() != FieldDescriptor::TYPE_MESSAGE)) {
      if (!WireFormatLite::SkipField(&in, tag)) return std::nullopt;
      continue;
    }
    uint32_t length;
    if (!in.ReadVarint32(&length)) return std::nullopt;
    if (field->type() == FieldDescriptor::TYPE_STRING) {
      // The input is one flat array, so the bytes are all direct.
      const void* data;
      int size;
      if (!in.GetDirectBufferPointer(&data, &size) ||
          static_cast<uint32_t>(size) < length) {
        return std::nullopt;
      }
      if (!common::IsValidUtf8(
              absl::string_view(static_cast<const char*>(data), length))) {
        return field->name();
      }
      if (!in.Skip(static_cast<int>(length))) return std::nullopt;
      continue;
    }
    if (depth >= kMaxDepth) return std::nullopt;
    google::protobuf::io::CodedInputStream::Limit limit =
        in.PushLimit(static_cast<int>(length));
    std::optional<std::string> inner =
        FindBadUtf8(field->message_type(), in, depth + 1);
    if (inner.has_value()) {
      if (field->is_map()) return absl::StrCat(field->name(), "[", *inner, "]");
      return absl::StrCat(field->name(), ".", *inner);
    }
    if (in.BytesUntilLimit() != 0) return std::nullopt;  // malformed
    in.PopLimit(limit);
  }
  return std::nullopt;
}

// Deletes itself once done.
class FailedStreamReactor final
    : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  explicit FailedStreamReactor(grpc::Status status) {
    Finish(std::move(status));
  }
  void OnDone() override { delete this; }
};

}  // namespace

absl::Status ParseRequest(const grpc::ByteBuffer& raw,
                          google::protobuf::Message& message) {
  std::vector<grpc::Slice> slices;
  if (!raw.Dump(&slices).ok()) {
    return absl::InvalidArgumentError("request could not be read");
  }
  std::string data;
  data.reserve(raw.Length());
  for (const grpc::Slice& s : slices) {
    data.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  // Checked before parsing, which would log every bad string.
  google::protobuf::io::CodedInputStream in(
      reinterpret_cast<const uint8_t*>(data.data()),
      static_cast<int>(data.size()));
  if (std::optional<std::string> field =
          FindBadUtf8(message.GetDescriptor(), in, 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(*field, ": not valid UTF-8 (string fields must be)"));
  }
  if (message.ParseFromString(data)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "request is not a valid ", message.GetDescriptor()->full_name()));
}

grpc::ByteBuffer SerializeMessage(const google::protobuf::Message& message) {
  std::string data = message.SerializeAsString();
  grpc::Slice slice(std::move(data));
  return grpc::ByteBuffer(&slice, 1);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* FailedStream(grpc::Status status) {
  return new FailedStreamReactor(std::move(status));
}

}  // namespace server
