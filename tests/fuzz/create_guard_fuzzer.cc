// libFuzzer target of guard::CreateGuard, the engine guard's decision on a
// container create: its input is whatever a subverted executor sends.
// Input: the query, a newline, then the body.
//
// Checks, for any input: no crash or sanitizer report; a refusal is
// PERMISSION_DENIED; an admitted body is a fixed point (checked again it
// is admitted unchanged, under the same name) and carries the hardening
// that every plan has.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "executor/guard/create_guard.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const guard::CreateGuard* guard =
      new guard::CreateGuard(policy::ContainerPolicyOptions{}, "");
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nl = input.find('\n');
  if (nl == absl::string_view::npos) return 0;
  const absl::string_view query = input.substr(0, nl);
  const absl::string_view body = input.substr(nl + 1);
  absl::StatusOr<guard::AdmittedCreate> admitted = guard->Check(query, body);
  if (!admitted.ok()) {
    if (admitted.status().code() != absl::StatusCode::kPermissionDenied)
      abort();
    return 0;
  }
  absl::StatusOr<guard::AdmittedCreate> again =
      guard->Check(absl::StrCat("name=", admitted->name), admitted->body);
  if (!again.ok() || again->body != admitted->body ||
      again->name != admitted->name) {
    abort();
  }
  for (absl::string_view must :
       {"\"CapDrop\":[\"ALL\"]", "\"ReadonlyRootfs\":true",
        "\"Privileged\":false", "\"SecurityOpt\":[\"no-new-privileges\"]",
        "\"User\":\"65534:65534\""}) {
    if (!absl::StrContains(admitted->body, must)) abort();
  }
  return 0;
}
