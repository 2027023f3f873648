#include "server/scheduler/request_validation.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/utf8.h"

namespace server {
namespace {

using common::IsValidUtf8;
using common::Utf8SequenceLength;

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

absl::Status AtMostBytes(absl::string_view field, absl::string_view value,
                         size_t max) {
  if (value.size() > max) {
    return Invalid(field, absl::StrCat("at most ", max, " bytes (got ",
                                       value.size(), ")"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string Abbreviate(absl::string_view input) {
  std::string out;
  size_t used = 0;  // bytes of input shown
  while (used < input.size()) {
    absl::string_view rest = input.substr(used);
    size_t n = Utf8SequenceLength(rest);
    const uint8_t b = static_cast<uint8_t>(rest[0]);
    if (used + std::max<size_t>(n, 1) > kMaxEchoBytes) break;
    if (n == 0 || (n == 1 && (b < 0x20 || b == 0x7F))) {
      absl::StrAppend(&out, absl::StrFormat("\\x%02x", b));
      n = 1;
    } else {
      out.append(rest.data(), n);
    }
    used += n;
  }
  if (used < input.size()) out += "…";
  return out;
}

absl::Status ValidateTaskId(absl::string_view task_id) {
  if (task_id.empty()) return absl::InvalidArgumentError("task_id is required");
  return AtMostBytes("task_id", task_id, kMaxTaskIdBytes);
}

absl::Status ValidateListFilter(
    const std::vector<crucible::v1::TaskState>& states,
    absl::string_view page_token,
    const std::map<std::string, std::string>& labels) {
  for (size_t i = 0; i < states.size(); ++i) {
    if (!crucible::v1::TaskState_IsValid(states[i])) {
      return Invalid(absl::StrCat("states[", i, "]"),
                     absl::StrCat("unknown TaskState ", int{states[i]}));
    }
  }
  if (absl::Status s =
          AtMostBytes("page_token", page_token, kMaxPageTokenBytes);
      !s.ok()) {
    return s;
  }
  if (labels.size() > static_cast<size_t>(kMaxLabels)) {
    return Invalid("labels",
                   absl::StrCat("at most ", kMaxLabels, " filters (got ",
                                labels.size(), ")"));
  }
  for (const auto& [key, value] : labels) {
    if (absl::Status s = ValidateLabel("labels", key, value); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ValidateLabel(absl::string_view field, absl::string_view key,
                           absl::string_view value) {
  if (key.empty()) return Invalid(field, "empty key");
  if (key.size() > kMaxLabelKeyBytes) {
    return Invalid(
        absl::StrCat(field, "[", Abbreviate(key), "]"),
        absl::StrCat("key longer than ", kMaxLabelKeyBytes, " bytes"));
  }
  if (value.size() > kMaxLabelValueBytes) {
    return Invalid(
        absl::StrCat(field, "[", Abbreviate(key), "]"),
        absl::StrCat("value longer than ", kMaxLabelValueBytes, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status ValidateCancelReason(absl::string_view reason) {
  if (!IsValidUtf8(reason)) return Invalid("reason", "not valid UTF-8");
  return AtMostBytes("reason", reason, kMaxCancelReasonBytes);
}

absl::Status ValidateOutputRequest(crucible::v1::OutputStream stream,
                                   int64_t offset, int32_t attempt) {
  if (!crucible::v1::OutputStream_IsValid(stream)) {
    return Invalid("stream",
                   absl::StrCat("unknown OutputStream ", int{stream}));
  }
  if (offset < 0) {
    return Invalid("offset",
                   absl::StrCat("must not be negative (got ", offset, ")"));
  }
  if (attempt < 0) {
    return Invalid("attempt",
                   absl::StrCat("must not be negative (got ", attempt, ")"));
  }
  return absl::OkStatus();
}

}  // namespace server
