#ifndef CRUCIBLE_SERVER_CALLBACK_CALLBACK_SIGNER_H_
#define CRUCIBLE_SERVER_CALLBACK_CALLBACK_SIGNER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace server {

// One signing key of completion callbacks.
struct CallbackKey {
  // Sent in X-Crucible-Key-Id, so a receiver knows which secret to check.
  std::string id;
  std::string secret;
};

// The keys of a --callback_signing_key_file: one `KEY_ID SECRET` a line
// (blank lines and lines starting with '#' skipped). The first key signs;
// the others are listed only while receivers move to the new one.
// INVALID_ARGUMENT for a malformed line or a secret under 16 bytes;
// NOT_FOUND if the file cannot be read.
absl::StatusOr<std::vector<CallbackKey>> ReadCallbackKeys(
    const std::string& path);
absl::StatusOr<std::vector<CallbackKey>> ParseCallbackKeys(
    absl::string_view text);

// Lower-case hex of HMAC-SHA256(secret, "<timestamp>.<body>"): the value of
// X-Crucible-Signature after "v1=".
std::string CallbackSignature(absl::string_view secret,
                              absl::string_view timestamp,
                              absl::string_view body);

}  // namespace server

#endif  // CRUCIBLE_SERVER_CALLBACK_CALLBACK_SIGNER_H_
