#include "server/callback/callback_signer.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace server {

absl::StatusOr<std::vector<CallbackKey>> ParseCallbackKeys(
    absl::string_view text) {
  std::vector<CallbackKey> keys;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "line ", line_number, ": want 'KEY_ID SECRET' (two fields)"));
    }
    if (fields[1].size() < 16) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_number, ": key ", fields[0],
                       ": the secret must be at least 16 bytes (32 random "
                       "bytes, e.g. `openssl rand -hex 32`)"));
    }
    keys.push_back({std::string(fields[0]), std::string(fields[1])});
  }
  if (keys.empty()) return absl::InvalidArgumentError("no key in the file");
  return keys;
}

absl::StatusOr<std::vector<CallbackKey>> ReadCallbackKeys(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("--callback_signing_key_file ", path, ": cannot read it"));
  }
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<std::vector<CallbackKey>> keys = ParseCallbackKeys(text.str());
  if (!keys.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--callback_signing_key_file ", path, ": ", keys.status().message()));
  }
  return keys;
}

std::string CallbackSignature(absl::string_view secret,
                              absl::string_view timestamp,
                              absl::string_view body) {
  const std::string message = absl::StrCat(timestamp, ".", body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_size = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(),
       mac, &mac_size);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(mac), mac_size));
}

}  // namespace server
