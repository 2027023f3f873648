#include "common/trace.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace common {
namespace {

bool IsLowerHex(absl::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

bool AllZeros(absl::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == '0'; });
}

}  // namespace

bool IsTraceId(absl::string_view id) {
  return id.size() == 32 && IsLowerHex(id) && !AllZeros(id);
}

std::optional<std::string> TraceIdFromTraceparent(absl::string_view value) {
  // version(2) '-' trace-id(32) '-' parent-id(16) '-' flags(2): 55 bytes.
  constexpr size_t kLength = 55;
  if (value.size() < kLength) return std::nullopt;
  const absl::string_view version = value.substr(0, 2);
  const absl::string_view trace_id = value.substr(3, 32);
  const absl::string_view parent_id = value.substr(36, 16);
  const absl::string_view flags = value.substr(53, 2);
  if (value[2] != '-' || value[35] != '-' || value[52] != '-') {
    return std::nullopt;
  }
  if (!IsLowerHex(version) || version == "ff") return std::nullopt;
  // Version 00 has exactly these fields; a later one may append its own.
  if (value.size() > kLength && (version == "00" || value[kLength] != '-')) {
    return std::nullopt;
  }
  if (!IsTraceId(trace_id)) return std::nullopt;
  if (!IsLowerHex(parent_id) || AllZeros(parent_id)) return std::nullopt;
  if (!IsLowerHex(flags)) return std::nullopt;
  return std::string(trace_id);
}

std::string TaskTag(absl::string_view task_id, absl::string_view trace_id) {
  if (trace_id.empty()) return absl::StrCat("task ", task_id);
  return absl::StrCat("task ", task_id, " trace=", trace_id);
}

}  // namespace common
